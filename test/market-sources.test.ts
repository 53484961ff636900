import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isUniqueViolation } from '../src/db/hot-path-sql.js';
import { availableDatabases } from './support/databases.js';
import { type Seeder, startSeededServer } from './support/seed.js';
import { AUTH_ENV, installThroughApi, type TestServer, TOKENS, waitFor } from './support/server.js';
import { subscribe } from './support/subscriptions.js';
import { rawRequest } from './support/untyped.js';

/**
 * Market-source management through the API (market-domain.md §6.1): admins add remote sources
 * (inactive), select the single active one with its nsfw flag, remove inactive ones with their
 * catalogue (installed apps stay) and ask for a sync; everyone else is FORBIDDEN. Each test names
 * sources of its own; the tests run in order because "the active remote" is one for the server.
 *
 * Untyped documents: the printed schema.graphql (and so test/gql) is regenerated when this issue
 * lands; these operations then can move to test/support/operations.ts.
 */

const SOURCE_FIELDS = `id sourceId title type baseUrl description priority nsfw isActive
  sync { lastSyncAt lastAttemptAt lastError consecutiveFailures durationMs nextSyncAt appCount }`;
const RESULT = `__typename ... on Error { code message } ... on ValidationError { issues { path message } }`;

const ADD = `mutation ($input: AddMarketSourceInput!) {
  addMarketSource(input: $input) { ${RESULT} ... on AddMarketSourceSuccess { marketSource { ${SOURCE_FIELDS} } } }
}`;
const SELECT = `mutation ($input: SelectMarketSourceInput!) {
  selectMarketSource(input: $input) { ${RESULT} ... on SelectMarketSourceSuccess { marketSource { ${SOURCE_FIELDS} } } }
}`;
const REMOVE = `mutation ($input: RemoveMarketSourceInput!) {
  removeMarketSource(input: $input) { ${RESULT} ... on RemoveMarketSourceSuccess { removal { sourceId catalogAppsRemoved } } }
}`;
const SYNC = `mutation ($input: SyncMarketSourceInput!) {
  syncMarketSource(input: $input) { ${RESULT} ... on SyncMarketSourceSuccess { marketSource { ${SOURCE_FIELDS} } } }
}`;
const INSTALL = `mutation ($input: InstallAppInput!) { installApp(input: $input) { ${RESULT} } }`;
const PURCHASE = `mutation ($input: PurchaseAppInput!) { purchaseApp(input: $input) { ${RESULT} } }`;
const SOURCES = `query ($includeInactive: Boolean) { marketSources(includeInactive: $includeInactive) { ${SOURCE_FIELDS} } }`;

interface Source {
  sourceId: string;
  type: string;
  baseUrl: string | null;
  isActive: boolean;
  nsfw: boolean;
  priority: number;
  sync: { appCount: number };
}
interface Result {
  __typename: string;
  code?: string;
  message?: string;
  issues?: { path: string; message: string }[];
  marketSource?: Source;
  removal?: { sourceId: string; catalogAppsRemoved: number };
}

const admin = TOKENS.ops;
const alice = TOKENS.alice;
const validSource = (sourceId: string) => ({
  sourceId,
  title: `Source ${sourceId}`,
  baseUrl: 'https://market.example/',
});

const databases = await availableDatabases();

describe.each(databases)('market sources on %s', (kind) => {
  let server: TestServer;
  let seed: Seeder;

  beforeAll(async () => {
    // The admin makes more mutations than one burst allows; the rate limit has tests of its own.
    ({ server, seed } = await startSeededServer(kind, { env: { ...AUTH_ENV, MUTATION_RATE_PER_S: '0' } }));
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  /** The data of a request that must have no GraphQL errors (an expected error is data, in the result union). */
  async function request(query: string, variables: Record<string, unknown>, token: string) {
    const response = await rawRequest(server, { query, variables }, { token });
    if (response.body?.errors?.length || !response.body?.data) {
      throw new Error(`unexpected answer (HTTP ${response.status}): ${response.text.slice(0, 1000)}`);
    }
    return { data: response.body.data, text: response.text };
  }
  async function mutate(query: string, input: Record<string, unknown>, token: string = admin): Promise<Result> {
    const { data } = await request(query, { input }, token);
    return Object.values(data)[0] as Result;
  }
  async function sources(token: string = admin, includeInactive = false): Promise<Source[]> {
    const { data } = await request(SOURCES, { includeInactive }, token);
    return data.marketSources as Source[];
  }
  async function added(sourceId: string, extra: Record<string, unknown> = {}): Promise<Source> {
    const result = await mutate(ADD, { ...validSource(sourceId), ...extra });
    expect(result.__typename, JSON.stringify(result)).toBe('AddMarketSourceSuccess');
    return result.marketSource as Source;
  }
  const activeRemotes = async () =>
    (await sources(admin, true)).filter((each) => each.type === 'remote' && each.isActive).map((s) => s.sourceId);

  describe('addMarketSource', () => {
    test('sources of equal priority are listed by id in the same order on every database, whatever its collation', async () => {
      for (const sourceId of ['a-src', 'Zeta', 'B-src']) await added(sourceId, { priority: 555 });
      const listed = (await sources(admin, true)).filter((each) => each.priority === 555).map((each) => each.sourceId);
      // By code unit, as SQLite and PostgreSQL's C collation sort; en_US put a-src first.
      expect(listed).toEqual(['B-src', 'Zeta', 'a-src']);
    });

    test('an admin adds a remote source: inactive, with its fields, listed only when inactive ones are asked for', async () => {
      const source = await added('self-hosted.lan', {
        baseUrl: 'http://192.168.1.20:8080/market/',
        description: 'The market of the house',
        priority: 70,
      });
      expect(source).toMatchObject({
        sourceId: 'self-hosted.lan',
        title: 'Source self-hosted.lan',
        type: 'remote',
        baseUrl: 'http://192.168.1.20:8080/market',
        description: 'The market of the house',
        priority: 70,
        nsfw: false,
        isActive: false,
        sync: {
          lastSyncAt: null,
          lastAttemptAt: null,
          lastError: null,
          consecutiveFailures: 0,
          durationMs: null,
          nextSyncAt: null,
          appCount: 0,
        },
      });
      // Loopback is allowed too: self-hosted sources live on private and local addresses.
      expect((await added('loopback_1', { baseUrl: 'https://127.0.0.1:9443' })).baseUrl).toBe('https://127.0.0.1:9443');

      expect((await sources(admin)).map((s) => s.sourceId)).not.toContain('self-hosted.lan');
      expect((await sources(admin, true)).map((s) => s.sourceId)).toContain('self-hosted.lan');
      expect((await sources(alice)).map((s) => s.sourceId)).not.toContain('self-hosted.lan');
      const refused = await rawRequest(
        server,
        { query: SOURCES, variables: { includeInactive: true } },
        { token: alice },
      );
      expect(refused.body?.errors?.map((error) => error.extensions?.code)).toEqual(['FORBIDDEN']);
      expect(refused.text).not.toContain('self-hosted.lan');
      // Nor by its global id: alice gets null, as for a source that does not exist; the admin the source.
      const byId = `{ node(id: "${Buffer.from('MarketSource:self-hosted.lan').toString('base64')}") { ... on MarketSource { sourceId baseUrl } } }`;
      const asAlice = await rawRequest(server, { query: byId }, { token: alice });
      expect(asAlice.body?.data).toEqual({ node: null });
      expect(asAlice.text).not.toContain('192.168.1.20');
      expect((await request(byId, {}, admin)).data).toEqual({
        node: { sourceId: 'self-hosted.lan', baseUrl: 'http://192.168.1.20:8080/market' },
      });

      const { data } = await request(
        '{ history(filter: { type: ["system"] }, first: 50) { edges { node { type message userId } } } }',
        {},
        admin,
      );
      const records = (data.history as { edges: { node: unknown }[] }).edges.map((edge) => edge.node);
      expect(records).toContainEqual({ type: 'system', message: 'Market source self-hosted.lan added', userId: 'ops' });
    });

    test('credentials in a base URL are kept for the syncer but never answered or logged', async () => {
      const logged = server.logs.length;
      const source = await added('private.auth', { baseUrl: 'https://reader:s3cret-pass@market.internal.example/x' });
      expect(source.baseUrl).toBe('https://[redacted]@market.internal.example/x');
      const { text } = await request(SOURCES, { includeInactive: true }, admin);
      expect(text).toContain('market.internal.example');
      expect(text).not.toContain('s3cret-pass');
      expect(server.logs.slice(logged).join('\n')).not.toContain('s3cret-pass');
      const row = await server.app.db.marketSource.findUniqueOrThrow({ where: { sourceId: 'private.auth' } });
      expect(row.baseUrl).toBe('https://reader:s3cret-pass@market.internal.example/x');
    });

    test('a source is usable at once after it is added, though an install just before found it missing', async () => {
      const install = () =>
        mutate(
          'mutation ($input: InstallAppInput!) { installApp(input: $input) { __typename ... on Error { code message } } }',
          { sourceId: 'late.example', appName: 'late-app', version: '1.0.0' },
          admin,
        );
      expect(await install()).toMatchObject({
        code: 'NOT_FOUND',
        message: 'Market source late.example does not exist',
      });
      await added('late.example');
      await seed.catalogApp({ name: 'late-app', sourceId: 'late.example' });
      expect((await install()).__typename).toBe('InstallAppSuccess');
    });

    test('an inactive source is, to users who are not admins, a source that does not exist', async () => {
      await added('preview.example');
      await seed.catalogApp({ name: 'preview-app', sourceId: 'preview.example', price: '1' });
      const catalog = async (token: string) =>
        (await request('{ catalog(sourceId: "preview.example") { totalCount } }', {}, token)).data;
      // The admin tries the source before selecting it; a user neither lists nor installs nor buys from it.
      expect(await catalog(admin)).toEqual({ catalog: { totalCount: 1 } });
      expect(await catalog(alice)).toEqual({ catalog: { totalCount: 0 } });
      const input = { sourceId: 'preview.example', appName: 'preview-app', version: '1.0.0' };
      expect(await mutate(INSTALL, input, alice)).toMatchObject({
        code: 'NOT_FOUND',
        message: 'Market source preview.example does not exist',
      });
      const purchase = await mutate(PURCHASE, { sourceId: 'preview.example', appId: 'preview-app' }, alice);
      expect(purchase).toMatchObject({ code: 'NOT_FOUND' });
      expect(await server.app.db.payment.count({ where: { appId: 'preview-app' } })).toBe(0);
      expect(await server.app.db.task.count({ where: { appName: 'preview-app' } })).toBe(0);
      // Nor reads its apps by node id (row ids count up from 1: the whole catalogue could be walked).
      const row = await server.app.db.catalogApp.findFirstOrThrow({ where: { sourceId: 'preview.example' } });
      const node = `{ node(id: "${Buffer.from(`CatalogApp:${row.id}`).toString('base64')}") { ... on CatalogApp { name } } }`;
      expect((await request(node, {}, admin)).data).toEqual({ node: { name: 'preview-app' } });
      expect((await request(node, {}, alice)).data).toEqual({ node: null });
      // Who has it installed from there (App.catalogApp shows it them) refetches it by its id.
      await seed.user('bob').app({ appName: 'preview-app', sourceId: 'preview.example', state: 'running' });
      expect((await request(node, {}, TOKENS.bob)).data).toEqual({ node: { name: 'preview-app' } });
      // A clone of it (whose App.catalogApp is its original's entry) too.
      const clone = { appName: 'preview-app-2', rawAppName: 'preview-app', sourceId: 'preview.example' };
      await seed.user('alice').app({ ...clone, state: 'running' });
      expect((await request(node, {}, alice)).data).toEqual({ node: { name: 'preview-app' } });
    });

    test("an inactive source's catalogue changes reach admins' catalogueChanged, not other users'", async () => {
      await added('preview2.example');
      const document = parse('subscription { catalogueChanged { sourceId added } }') as TypedDocumentNode<
        { catalogueChanged: { sourceId: string; added: string[] } },
        Record<string, never>
      >;
      const [ofAdmin, ofAlice] = await Promise.all([
        subscribe(server, document, {}, { token: admin }),
        subscribe(server, document, {}, { token: alice }),
      ]);
      try {
        // As a sync of the inactive source, or an upload to a local one, would announce them.
        const changes = server.app.services.catalogueChanges;
        const announce = (sourceId: string, added: string) =>
          changes.changed({ sourceId, added: [added], updated: [], removed: [] });
        await waitFor(async () => {
          if (ofAdmin.received.length > 0 && ofAlice.received.length > 0) return true;
          await announce('upload', 'probe');
          return undefined;
        }, 'both subscriptions to be live');
        const shown = (subscription: typeof ofAdmin) =>
          subscription.until((change) => change.catalogueChanged.added[0] === 'shown');
        await announce('preview2.example', 'hidden');
        await announce('upload', 'shown');
        const added = (seen: { catalogueChanged: { added: string[] } }[]) =>
          seen.map((change) => change.catalogueChanged.added[0]).filter((id) => id !== 'probe');
        expect(added(await shown(ofAdmin))).toEqual(['hidden', 'shown']);
        expect(added(await shown(ofAlice))).toEqual(['shown']);
      } finally {
        await Promise.all([ofAdmin.close(), ofAlice.close()]);
      }
    });

    test('selecting, adding and removing a source are announced on catalogueChanged: to admins, and the newly offered source to everyone', async () => {
      const [before] = await activeRemotes();
      const document = parse(
        'subscription { catalogueChanged { sourceId added sourcesChanged } }',
      ) as TypedDocumentNode<
        { catalogueChanged: { sourceId: string; added: string[]; sourcesChanged: boolean } },
        Record<string, never>
      >;
      const [ofAdmin, ofAlice] = await Promise.all([
        subscribe(server, document, {}, { token: admin }),
        subscribe(server, document, {}, { token: alice }),
      ]);
      const announce = (added: string) =>
        server.app.services.catalogueChanges.changed({ sourceId: 'upload', added: [added], updated: [], removed: [] });
      try {
        await waitFor(async () => {
          if (ofAdmin.received.length > 0 && ofAlice.received.length > 0) return true;
          await announce('probe');
          return undefined;
        }, 'both subscriptions to be live');
        await added('next-store.example');
        expect((await mutate(SELECT, { sourceId: 'next-store.example', nsfw: false })).__typename).toBe(
          'SelectMarketSourceSuccess',
        );
        expect((await mutate(SELECT, { sourceId: before, nsfw: false })).__typename).toBe('SelectMarketSourceSuccess');
        expect((await mutate(REMOVE, { sourceId: 'next-store.example' })).__typename).toBe('RemoveMarketSourceSuccess');
        await announce('end');
        const seen = async (subscription: typeof ofAdmin) =>
          (await subscription.until((change) => change.catalogueChanged.added[0] === 'end'))
            .map(({ catalogueChanged: change }) => change)
            .filter((change) => change.sourcesChanged)
            .map((change) => `${change.sourceId} ${change.added.length}`);
        expect(await seen(ofAdmin)).toEqual([
          'next-store.example 0', // added
          'next-store.example 0', // selected
          `${before} 0`, // no longer offered
          `${before} 0`, // selected again
          'next-store.example 0', // no longer offered
          'next-store.example 0', // removed
        ]);
        // Alice is offered the active source only: she hears of each one when it becomes active.
        expect(await seen(ofAlice)).toEqual(['next-store.example 0', `${before} 0`]);
      } finally {
        await Promise.all([ofAdmin.close(), ofAlice.close()]);
      }
    });

    test("an inactive source that fails to sync is named to admins, and changes no one's syncer state", async () => {
      await added('down.example', { baseUrl: 'http://127.0.0.1:1' });
      const synced = await mutate(SYNC, { sourceId: 'down.example' });
      expect(synced.marketSource?.sync).toMatchObject({ consecutiveFailures: 1 });
      type Syncer = { state: string; healthy: boolean; message: string | null; metrics: { bySource: unknown[] } };
      const syncer = async (token: string) => {
        const { data, text } = await request(
          '{ runtimeSnapshot { components { name state healthy message metrics } } }',
          {},
          token,
        );
        const components = (data.runtimeSnapshot as { components: (Syncer & { name: string })[] }).components;
        return { syncer: components.find((component) => component.name === 'syncer') as Syncer, text };
      };
      const forAdmin = await waitFor(async () => {
        const seen = await syncer(admin);
        return seen.syncer.message?.includes('down.example') ? seen.syncer : undefined;
      }, "the syncer component to name the source's failure");
      expect(forAdmin).toMatchObject({ state: 'RUNNING', healthy: true });
      // Alice, who is not offered the source, neither sees it nor a syncer in trouble.
      const forAlice = await syncer(alice);
      expect(forAlice.syncer).toMatchObject({ state: 'RUNNING', healthy: true, message: null });
      expect(forAlice.text).not.toContain('down.example');
      expect((await mutate(REMOVE, { sourceId: 'down.example' })).__typename).toBe('RemoveMarketSourceSuccess');
    });

    const tooLongHost = `https://${'a'.repeat(2_040)}.example`;
    test.each([
      ['sourceId', 'empty', { sourceId: '' }],
      ['sourceId', '51 characters', { sourceId: 'a'.repeat(51) }],
      ['sourceId', 'with a space', { sourceId: 'has space' }],
      ['sourceId', 'with a slash', { sourceId: 'has/slash' }],
      ['sourceId', 'with non-ASCII letters', { sourceId: 'ünïcode' }],
      ['title', 'blank', { title: '   ' }],
      ['title', '101 characters', { title: 't'.repeat(101) }],
      ['title', 'of a right-to-left mark only', { title: '\u200f' }],
      ['title', 'of a zero-width space only', { title: '\u200b' }],
      ['title', 'of a Hangul filler only', { title: '\u3164' }],
      ['title', 'with a paragraph separator', { title: 'Main\u2029market' }],
      ['description', '1001 characters', { description: 'd'.repeat(1_001) }],
      ['priority', '-1', { priority: -1 }],
      ['priority', '1001', { priority: 1_001 }],
      ['baseUrl', 'empty', { baseUrl: '' }],
      ['baseUrl', 'relative', { baseUrl: 'market.example/relative' }],
      // What the URL parser reads as http://relative/ (one slash, none, backslashes, three slashes).
      ['baseUrl', 'with one slash after the scheme', { baseUrl: 'http:/relative' }],
      ['baseUrl', 'with no slash after the scheme', { baseUrl: 'https:market.example' }],
      ['baseUrl', 'with backslashes after the scheme', { baseUrl: 'http:\\\\market.example' }],
      ['baseUrl', 'with three slashes after the scheme', { baseUrl: 'http:///market.example' }],
      ['baseUrl', 'ftp:', { baseUrl: 'ftp://market.example' }],
      ['baseUrl', 'file:', { baseUrl: 'file:///etc/passwd' }],
      ['baseUrl', 'javascript:', { baseUrl: 'javascript:alert(1)' }],
      ['baseUrl', 'with a fragment', { baseUrl: 'https://market.example/#fragment' }],
      ['baseUrl', 'with an empty fragment', { baseUrl: 'https://market.example/#' }],
      ['baseUrl', 'with port 0', { baseUrl: 'http://127.0.0.1:0/' }],
      ['baseUrl', 'with a query', { baseUrl: 'https://market.example/?token=abc' }],
      ['baseUrl', 'with a space in the host', { baseUrl: 'https://exa mple.com' }],
      ['baseUrl', 'with credentials that do not decode', { baseUrl: 'http://u:%zz@market.example' }],
      ['baseUrl', 'over 2048 characters', { baseUrl: tooLongHost }],
      ['baseUrl', 'over 2048 characters once its spaces are encoded', { baseUrl: `http://a/${' '.repeat(2_000)}x` }],
    ])('%s %s is a VALIDATION error naming it, and nothing is added', async (field, _case, change) => {
      const sourceId = `invalid-${field}-${Math.random().toString(36).slice(2, 8)}`;
      const before = await sources(admin, true);
      const result = await mutate(ADD, { ...validSource(sourceId), ...change });
      expect(result).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
      expect(result.issues?.map((issue) => issue.path)).toEqual([field]);
      expect(result.message).toContain(field);
      // The message never repeats the URL, which may carry credentials.
      const url = (change as { baseUrl?: string }).baseUrl;
      if (url) expect(result.message).not.toContain(url);
      expect(await sources(admin, true)).toEqual(before);
    });

    test('a title stored before the rules on titles tightened is read back as stored', async () => {
      const source = await added('stored-title.example');
      await server.app.db.marketSource.update({
        where: { sourceId: source.sourceId },
        data: { title: '\u200fx\u2029' },
      });
      const listed = (await sources(admin, true)).find((one) => one.sourceId === source.sourceId);
      expect(listed).toMatchObject({ title: '\u200fx\u2029' });
      expect((await mutate(REMOVE, { sourceId: source.sourceId })).__typename).toBe('RemoveMarketSourceSuccess');
    });

    test('an existing source id is a CONFLICT, remote or local, and the source is unchanged', async () => {
      await added('twice.example');
      await seed.source({ sourceId: 'local-twin', type: 'local' });
      const again = await mutate(ADD, { ...validSource('twice.example'), title: 'Another title' });
      expect(again).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT' });
      expect(await mutate(ADD, validSource('local-twin'))).toMatchObject({ code: 'CONFLICT' });
      const listed = (await sources(admin, true)).find((s) => s.sourceId === 'twice.example');
      expect(listed).toMatchObject({ title: 'Source twice.example' });
    });

    test('an id equal to an existing one but for letter case is a CONFLICT naming it, and nothing is added', async () => {
      await added('Case.Example');
      await seed.source({ sourceId: 'case-local', type: 'local' });
      const before = await sources(admin, true);
      for (const [sourceId, existing] of [
        ['case.example', 'Case.Example'],
        ['CASE.EXAMPLE', 'Case.Example'],
        ['Case-Local', 'case-local'],
      ]) {
        expect(await mutate(ADD, validSource(sourceId as string))).toEqual({
          __typename: 'ConflictError',
          code: 'CONFLICT',
          message: `Market source ${sourceId} differs from the existing source ${existing} only in letter case: ids must differ in more than case`,
        });
      }
      expect(await mutate(ADD, validSource('Case.Example'))).toMatchObject({
        message: 'Market source Case.Example already exists',
      });
      expect(await sources(admin, true)).toEqual(before);
    });

    test('the database refuses a second id differing only in case, so adds at the same moment cannot both pass', async () => {
      // What two adds that both passed the service's check would each write: the second is refused.
      await added('race.example');
      const insert = server.app.db.marketSource.create({
        data: {
          sourceId: 'RACE.example',
          title: 'Race',
          type: 'remote',
          baseUrl: 'https://market.example',
          isActive: false,
        },
      });
      const refused = await insert.then(
        () => null,
        (error: unknown) => error,
      );
      expect(isUniqueViolation(refused), String(refused)).toBe(true);
      // And through the API at once: one of the variants is added, every other is a CONFLICT.
      const variants = ['Burst.example', 'burst.example', 'BURST.example', 'burst.EXAMPLE'];
      const results = await Promise.all(variants.map((sourceId) => mutate(ADD, validSource(sourceId))));
      expect(results.filter((result) => result.__typename === 'AddMarketSourceSuccess')).toHaveLength(1);
      expect(results.filter((result) => result.__typename === 'ConflictError')).toHaveLength(variants.length - 1);
      const listed = (await sources(admin, true)).filter((s) => s.sourceId.toLowerCase() === 'burst.example');
      expect(listed).toHaveLength(1);
    });

    test('non-admins are FORBIDDEN every market-source mutation, and nothing changes', async () => {
      await added('guarded.example');
      const before = await sources(admin, true);
      for (const [query, input] of [
        [ADD, validSource('by-alice.example')],
        [SELECT, { sourceId: 'guarded.example', nsfw: true }],
        [REMOVE, { sourceId: 'guarded.example' }],
        [SYNC, { sourceId: 'guarded.example' }],
      ] as const) {
        expect(await mutate(query, input, alice)).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
      }
      expect(await sources(admin, true)).toEqual(before);
    });
  });

  describe('selectMarketSource', () => {
    test('the selected source becomes the single active remote with its nsfw flag; the previous one goes inactive', async () => {
      await added('first.example');
      await added('second.example');
      const first = await mutate(SELECT, { sourceId: 'first.example', nsfw: true });
      expect(first.marketSource).toMatchObject({ sourceId: 'first.example', isActive: true, nsfw: true });
      expect(await activeRemotes()).toEqual(['first.example']);

      const second = await mutate(SELECT, { sourceId: 'second.example', nsfw: false });
      expect(second.marketSource).toMatchObject({ sourceId: 'second.example', isActive: true, nsfw: false });
      expect(await activeRemotes()).toEqual(['second.example']);
      const all = await sources(admin, true);
      expect(all.find((s) => s.sourceId === 'first.example')).toMatchObject({ isActive: false, nsfw: true });
      // What every user is offered: the new active remote, and no other remote.
      const visible = (await sources(alice)).filter((s) => s.type === 'remote').map((s) => s.sourceId);
      expect(visible).toEqual(['second.example']);
    });

    test('an unknown source is NOT_FOUND and a local one is a VALIDATION error; the active remote stays', async () => {
      await added('stays-active.example');
      await mutate(SELECT, { sourceId: 'stays-active.example', nsfw: false });
      await seed.source({ sourceId: 'local-only', type: 'local' });
      expect(await mutate(SELECT, { sourceId: 'no-such.example', nsfw: false })).toMatchObject({
        __typename: 'NotFoundError',
        code: 'NOT_FOUND',
      });
      const local = await mutate(SELECT, { sourceId: 'local-only', nsfw: false });
      expect(local).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
      expect(local.issues?.map((issue) => issue.path)).toEqual(['sourceId']);
      expect(await mutate(SELECT, { sourceId: 'x'.repeat(51), nsfw: false })).toMatchObject({ code: 'VALIDATION' });
      expect(await activeRemotes()).toEqual(['stays-active.example']);
    });

    test('two selections at once both succeed and leave exactly one active remote', async () => {
      await added('race-a.example');
      await added('race-b.example');
      const results = await Promise.all([
        mutate(SELECT, { sourceId: 'race-a.example', nsfw: false }),
        mutate(SELECT, { sourceId: 'race-b.example', nsfw: true }),
      ]);
      expect(results.map((result) => result.__typename)).toEqual([
        'SelectMarketSourceSuccess',
        'SelectMarketSourceSuccess',
      ]);
      const active = await activeRemotes();
      expect(active).toHaveLength(1);
      expect(['race-a.example', 'race-b.example']).toContain(active[0]);
    });

    test('ten selections at once all succeed (none aborted as a deadlock) and leave exactly one active remote', async () => {
      const ids = ['storm-a.example', 'storm-b.example'];
      for (const id of ids) await added(id);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, index) => mutate(SELECT, { sourceId: ids[index % 2], nsfw: false })),
      );
      expect(results.map((result) => result.__typename)).toEqual(Array(10).fill('SelectMarketSourceSuccess'));
      const active = await activeRemotes();
      expect(active).toHaveLength(1);
      expect(ids).toContain(active[0]);
    });

    test.skipIf(kind !== 'postgresql')(
      'two selections that both wait on the active row both succeed, one after the other',
      async () => {
        await added('held.example');
        await added('waiter-a.example');
        await added('waiter-b.example');
        await mutate(SELECT, { sourceId: 'held.example', nsfw: false });
        const blocker = new pg.Client({ connectionString: server.database.url });
        const monitor = new pg.Client({ connectionString: server.database.url });
        await Promise.all([blocker.connect(), monitor.connect()]);
        try {
          // Both selections read the state while the active row is held, then wait on it: the
          // second to get it cleared the row active when it began, not the one just selected.
          await blocker.query('BEGIN');
          await blocker.query(`SELECT 1 FROM "MarketSource" WHERE "sourceId" = 'held.example' FOR UPDATE`);
          const selections = Promise.all([
            mutate(SELECT, { sourceId: 'waiter-a.example', nsfw: false }),
            mutate(SELECT, { sourceId: 'waiter-b.example', nsfw: false }),
          ]);
          await waitFor(async () => {
            const { rows } = await monitor.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
            );
            return (rows[0]?.n ?? 0) >= 2 ? true : undefined;
          }, 'both selections to wait on the active row');
          await blocker.query('COMMIT');
          const results = await selections;
          expect(results.map((result) => result.__typename)).toEqual([
            'SelectMarketSourceSuccess',
            'SelectMarketSourceSuccess',
          ]);
          const active = await activeRemotes();
          expect(active).toHaveLength(1);
          expect(['waiter-a.example', 'waiter-b.example']).toContain(active[0]);
        } finally {
          await Promise.all([blocker.end(), monitor.end()]);
        }
      },
    );
  });

  describe('removeMarketSource', () => {
    test('the active source is refused (INVALID_STATE) and stays', async () => {
      await added('in-use.example');
      await mutate(SELECT, { sourceId: 'in-use.example', nsfw: false });
      expect(await mutate(REMOVE, { sourceId: 'in-use.example' })).toMatchObject({
        __typename: 'InvalidStateError',
        code: 'INVALID_STATE',
      });
      expect(await activeRemotes()).toEqual(['in-use.example']);
    });

    test('a local source is built in: refused as VALIDATION, and it stays', async () => {
      await seed.source({ sourceId: 'built-in', type: 'local' });
      const result = await mutate(REMOVE, { sourceId: 'built-in' });
      expect(result).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
      expect(result.issues?.map((issue) => issue.path)).toEqual(['sourceId']);
      expect((await sources(alice)).map((s) => s.sourceId)).toContain('built-in');
    });

    test('an inactive source goes with its catalogue; an app installed from it still answers in `apps`', async () => {
      await added('leaving.example');
      await seed.catalogApp({
        name: 'leaving-app',
        sourceId: 'leaving.example',
        versions: ['2.0.0'],
        categories: ['A', 'B'],
      });
      await seed.catalogApp({ name: 'other-app', sourceId: 'leaving.example' });
      await seed.catalogApp({ name: 'bystander', sourceId: 'staying.example' });
      // Installed while its source was offered to alice; an admin may install from any source.
      await installThroughApi(server, { sourceId: 'leaving.example', appName: 'leaving-app', version: '2.0.0' }, admin);
      const listed = (await sources(admin, true)).find((s) => s.sourceId === 'leaving.example');
      expect(listed?.sync.appCount).toBe(2);

      const result = await mutate(REMOVE, { sourceId: 'leaving.example' });
      expect(result).toMatchObject({
        __typename: 'RemoveMarketSourceSuccess',
        removal: { sourceId: 'leaving.example', catalogAppsRemoved: 2 },
      });

      expect((await sources(admin, true)).map((s) => s.sourceId)).not.toContain('leaving.example');
      const catalogue = await request(
        'query ($sourceId: String) { catalog(sourceId: $sourceId) { totalCount } }',
        { sourceId: 'leaving.example' },
        admin,
      );
      expect(catalogue.data).toEqual({ catalog: { totalCount: 0 } });
      const bystanders = await request('{ catalog(sourceId: "staying.example") { totalCount } }', {}, admin);
      expect(bystanders.data).toEqual({ catalog: { totalCount: 1 } });
      expect(await server.app.db.catalogAppCategory.count({ where: { app: { sourceId: 'leaving.example' } } })).toBe(0);

      const apps = await request(
        'query ($filter: AppFilter) { apps(filter: $filter) { edges { node { appName sourceId userId } } } }',
        { filter: { sourceId: 'leaving.example' } },
        admin,
      );
      expect(apps.data).toEqual({
        apps: { edges: [{ node: { appName: 'leaving-app', sourceId: 'leaving.example', userId: 'ops' } }] },
      });

      // The install above had the entry cached; the removal dropped it, so nobody installs it now.
      const install = await mutate(
        INSTALL,
        { sourceId: 'leaving.example', appName: 'leaving-app', version: '2.0.0' },
        admin,
      );
      expect(install).toMatchObject({ __typename: 'NotFoundError', code: 'NOT_FOUND' });
      expect(await mutate(REMOVE, { sourceId: 'leaving.example' })).toMatchObject({ code: 'NOT_FOUND' });
    });
  });

  describe('syncMarketSource', () => {
    test('an unknown source is NOT_FOUND; a malformed id is a VALIDATION error', async () => {
      expect(await mutate(SYNC, { sourceId: 'never-added.example' })).toMatchObject({
        __typename: 'NotFoundError',
        code: 'NOT_FOUND',
      });
      expect(await mutate(SYNC, { sourceId: 'bad id' })).toMatchObject({ code: 'VALIDATION' });
    });
  });
});
