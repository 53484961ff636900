import { NoSchemaIntrospectionCustomRule, validate } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../platform/config.js';
import { PersistedDocuments, usePersistedDocuments } from './persisted-documents.js';

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
 * INTROSPECTION off also hides graphql-js's suggestions ("Did you mean "webhooks"?", "… the enum
 * value "RUNNING"?"): validation runs before authentication, so they spelt out the schema's field,
 * argument, input field and enum value names to anyone. graphql-js's own `hideSuggestions`, in
 * validation and in the coercion of variables (at execution, compiled or not).
 */
export const useHiddenSuggestions: Plugin = {
  onValidate({ setValidationFn }) {
    setValidationFn((schema, documentAST, rules) => validate(schema, documentAST, rules, { hideSuggestions: true }));
  },
  onExecute({ args }) {
    (args as { hideSuggestions?: boolean }).hideSuggestions = true;
  },
  onSubscribe({ args }) {
    (args as { hideSuggestions?: boolean }).hideSuggestions = true;
  },
};

/**
 * The manifest of PERSISTED_DOCUMENTS, or null when it is not set. Read while the server is built,
 * so a missing or invalid one stops it from being built.
 */
export function persistedDocumentsOf(config: Config): PersistedDocuments | null {
  return config.persistedDocuments ? PersistedDocuments.load(config.persistedDocuments) : null;
}

/**
 * The Yoga plugins of the production switches, for the settings that are on: PERSISTED_DOCUMENTS
 * (`manifest`; its plugin is there without one too, to refuse ids with PERSISTED_QUERY_NOT_SUPPORTED),
 * INTROSPECTION off (with suggestions hidden). GRAPHIQL is Yoga's own `graphiql` option; the
 * mutation rate limit acts after the input bounds and the query cost (src/app/graphql.ts). Every one of them hooks the envelop pipeline (parse, validate, execute), which
 * HTTP, graphql-ws and SSE all run.
 */
export function productionSwitches(config: Config, manifest: PersistedDocuments | null): Plugin[] {
  return [usePersistedDocuments(manifest), ...(config.introspection ? [] : [useNoIntrospection, useHiddenSuggestions])];
}
