import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer, TOKENS } from './support/server.js';
import { type RawResponse, rawRequest } from './support/untyped.js';

/**
 * Fields whose values can be large count their weight in the query cost (src/schema/connections.ts
 * `costWeight`): a catalogue entry 1,000, its long description 400, release notes 25, a version
 * history 20 releases. Without them a signed-in user's 1.9 KB query of fifteen `catalog(first: 100)`
 * pages of entries cost 12,015 and ran: 61 MB of answer for 1.3 s of CPU (21.5 KB entries).
 */

const DEFAULT_MAX_COST = 50_000;
const MANIFEST = new URL('./gql/persisted-documents.json', import.meta.url).pathname;

/** The reviewer's document: fifteen aliases (the most allowed) of a page of 100 entries with their texts. */
const ENTRY_PAGES = `{ ${Array.from(
  { length: 15 },
  (_, i) =>
    `a${i}: catalog(first: 100) { edges { node { entry fullDescription description versionHistory { version upgradeDescription } } } }`,
).join(' ')} }`;

/** The catalogue page of an answer (none when refused). */
function edgesOf(response: RawResponse) {
  type Page = { edges: { node: { id: string; name: string; entry?: { name?: string } } }[] };
  return (response.body?.data?.catalog as Page | undefined)?.edges ?? [];
}

describe('fields whose values can be large weigh in the query cost', () => {
  let server: TestServer;
  let costs: TestServer;
  beforeAll(async () => {
    // The default MAX_QUERY_COST; and a server refusing everything, which says what each operation costs.
    [server, costs] = await Promise.all([
      startTestServer('sqlite', { env: { AUTH_TOKENS: `alice:user:${TOKENS.alice}` } }),
      startTestServer('sqlite', { env: { MAX_QUERY_COST: '1', DEMO_DATA: '0' } }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([server?.stop(), costs?.stop()]);
  });

  const ask = (query: string, variables?: Record<string, unknown>) =>
    rawRequest(server, { query, variables }, { token: TOKENS.alice });

  test("a user's fifteen pages of 100 entries are refused before they run, a page of 20 entries runs", async () => {
    const refused = await ask(ENTRY_PAGES);
    expect(refused.status, refused.text.slice(0, 300)).toBe(400);
    expect(refused.body?.data ?? null).toBeNull();
    // Per app: edges, node, entry 1,000, fullDescription 400, description, versionHistory and 20 × (version + 25).
    const perApp = 2 + 1000 + 400 + 1 + 1 + 20 * 26;
    expect(refused.body?.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/^Query cost 2886015 exceeds the limit of 50000 \(MAX_QUERY_COST\).*entry/),
        extensions: { code: 'LIMIT_EXCEEDED', cost: 15 * (1 + 100 * perApp), maxCost: DEFAULT_MAX_COST },
      }),
    ]);
    // One page of 100 entries is over the limit too; a page of 20 (cost 20,301) answers every entry.
    const hundred = await ask('{ catalog(first: 100) { edges { node { entry } } } }');
    expect(hundred.body?.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', cost: 1 + 100 * 1002 });
    const page = await ask(`{ catalog(first: 20) { totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id name title description icon version paid categories entry } } } }`);
    expect(page.body?.errors, page.text).toBeUndefined();
    const edges = edgesOf(page);
    expect(edges).toHaveLength(20);
    for (const { node } of edges) expect(node.entry).toMatchObject({ name: node.name });
  });

  test('a detail page of one app reads everything through node', async () => {
    const first = await ask('{ catalog(first: 1) { edges { node { id name } } } }');
    const { id, name } = edgesOf(first)[0]!.node;
    const detail = await ask(
      `query ($id: ID!) { node(id: $id) { ... on CatalogApp { name entry fullDescription upgradeDescription
        versionHistory { version versionName mergedAt upgradeDescription } } } }`,
      { id },
    );
    expect(detail.body?.errors, detail.text).toBeUndefined();
    expect(detail.body?.data?.node).toMatchObject({ name, entry: { name } });
  });

  test('every document of the persisted-documents manifest is within the default limit, with pages of 20 and of 100', async () => {
    const documents = Object.values(JSON.parse(readFileSync(MANIFEST, 'utf8')) as Record<string, string>);
    const over: string[] = [];
    let checked = 0;
    for (const query of documents) {
      const name = /^\s*\w+\s+(\w+)/.exec(query)?.[1] ?? query.slice(0, 40);
      const ints = [...query.matchAll(/\$(\w+)\s*:\s*Int\b/g)].map((match) => match[1] as string);
      for (const size of [20, 100]) {
        // The server refusing everything answers with the cost before anything runs, subscriptions too (SSE).
        const response = await fetch(`${costs.url}/graphql/stream`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query, variables: Object.fromEntries(ints.map((variable) => [variable, size])) }),
        });
        // A query's refusal is the JSON answer, a subscription's its one event.
        const text = await response.text();
        const json = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? text);
        const body = JSON.parse(json) as { errors: { extensions: { code: string; cost: number } }[] };
        expect(body.errors[0]?.extensions.code, name).toBe('LIMIT_EXCEEDED');
        checked++;
        if (body.errors[0]!.extensions.cost > DEFAULT_MAX_COST) over.push(`${name} at ${size}`);
      }
    }
    expect(checked).toBe(2 * documents.length);
    // test/catalog-entries.test.ts's page of entries, at 100: the one page the weights put over. And the
    // list of webhooks at 100: MAX_WEBHOOKS (100) webhooks × 100 deliveries of 10 fields, 101,001
    // (deliveries refuses a `last` over 50 anyway).
    expect(over).toEqual(['CatalogIcons at 100', 'WebhooksList at 100']);
  });
});
