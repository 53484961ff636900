import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generate, loadCodegenConfig } from '@graphql-codegen/cli';
import { type DocumentNode, Kind, parse, visit } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS } from './support/server.js';

// A frontend's documents, as a team that copies codegen.yml writes them: no __typename anywhere.
const FRONTEND_DOCUMENTS = `
query FrontendViewer { viewer { userId isAdmin } }
mutation FrontendCancel($input: CancelTaskInput!) {
  cancelTask(input: $input) {
    ... on CancelTaskSuccess { task { id status app { id stage } } }
    ... on Error { code message }
  }
}
subscription FrontendRuntime { runtimeEvents { kind removedApp { id appName } } }
`;

/** The selection sets of `document` that do not select __typename (a subscription's root may not). */
function withoutTypename(document: DocumentNode): string[] {
  const missing: string[] = [];
  visit(document, {
    SelectionSet(node, _key, parent) {
      const root = parent && 'kind' in parent && parent.kind === Kind.OPERATION_DEFINITION;
      if (root && parent.operation === 'subscription') return;
      const has = node.selections.some((each) => each.kind === Kind.FIELD && each.name.value === '__typename');
      const owner = parent && 'kind' in parent && 'name' in parent ? parent.name?.value : undefined;
      if (!has) missing.push(owner ?? '(root)');
    },
  });
  return missing;
}

describe('codegen.yml as a frontend copies it: the persisted-documents manifest selects __typename', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'codegen-typename-'));
  const manifestPath = path.join(scratch, 'gql', 'persisted-documents.json');
  let manifest: Record<string, string> = {};
  let server: TestServer;

  beforeAll(async () => {
    writeFileSync(path.join(scratch, 'frontend.graphql'), FRONTEND_DOCUMENTS);
    const { config } = await loadCodegenConfig({ configFilePath: 'codegen.yml' });
    const output = config.generates['test/gql/'];
    if (!output) throw new Error('codegen.yml has no test/gql/ output');
    await generate(
      { ...config, documents: [path.join(scratch, 'frontend.graphql')], generates: { [`${scratch}/gql/`]: output } },
      true,
    );
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    server = await startTestServer('sqlite', { env: { ...AUTH_ENV, PERSISTED_DOCUMENTS: manifestPath } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const run = async (operationName: string, variables: Record<string, unknown> = {}) => {
    const id = Object.entries(manifest).find(([, text]) => text.includes(` ${operationName}`))?.[0];
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify({ documentId: id, variables }),
    });
    return (await response.json()) as { data?: Record<string, unknown>; errors?: unknown };
  };

  test('every selection set of every manifest document selects __typename, but a subscription root', () => {
    expect(Object.keys(manifest)).toHaveLength(3);
    for (const text of Object.values(manifest)) expect(withoutTypename(parse(text)), text).toEqual([]);
  });

  test('the answers to the manifest documents name the type of each object, a union member included', async () => {
    expect(await run('FrontendViewer')).toEqual({
      data: { __typename: 'Query', viewer: { __typename: 'Viewer', userId: 'alice', isAdmin: false } },
    });
    const canceled = await run('FrontendCancel', { input: { taskId: 'no-such-task' } });
    expect(canceled.data?.cancelTask).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
  });
});
