import { NoSchemaIntrospectionCustomRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../platform/config.js';
import { PersistedDocuments, usePersistedDocuments } from './persisted-documents.js';
import { useMutationRateLimit } from './rate-limit.js';

/**
 * INTROSPECTION off: `__schema` and `__type` fail validation (graphql-js's own rule: "GraphQL
 * introspection has been disabled, but the requested query contained the field …"). Validation
 * runs in Yoga's envelop pipeline, so this holds on HTTP, graphql-ws and SSE alike; `__typename`
 * is not introspection of the schema and stays allowed.
 */
export const useNoIntrospection: Plugin = {
  onValidate({ addValidationRule }) {
    addValidationRule(NoSchemaIntrospectionCustomRule);
  },
};

/**
 * The Yoga plugins of the production switches, for the settings that are on: PERSISTED_DOCUMENTS
 * (the manifest is read here, so a missing or invalid one stops the server from being built),
 * INTROSPECTION off and the mutation rate limit. GRAPHIQL is Yoga's own `graphiql` option.
 * Every one of them hooks the envelop pipeline (parse, validate, execute), which HTTP, graphql-ws
 * and SSE all run.
 */
export function productionSwitches(config: Config): Plugin[] {
  return [
    ...(config.persistedDocuments ? [usePersistedDocuments(PersistedDocuments.load(config.persistedDocuments))] : []),
    ...(config.introspection ? [] : [useNoIntrospection]),
    ...(config.mutationRateLimit ? [useMutationRateLimit(config.mutationRateLimit)] : []),
  ];
}
