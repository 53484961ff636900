import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type GraphQLObjectType, getNamedType, isCompositeType, isNonNullType, parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { updateCatalogApps } from '../src/db/catalogue-sql.js';
import { createPrismaClient, type Db } from '../src/db/client.js';
import { driverSqlOf } from '../src/db/driver-sql.js';
import { CATALOG_LIST_COLUMNS, pageRows } from '../src/db/list-sql.js';
import type { CatalogAppRow, CatalogListRow } from '../src/db/models.js';
import { schema } from '../src/schema/index.js';
import { CatalogEntries } from '../src/services/catalog-entries.js';
import { graphql } from './gql/index.js';
import { availableDatabases, createTestDatabase, type TestDatabase } from './support/databases.js';
import { dataOf, execute, startTestServer, type TestServer } from './support/server.js';

/**
 * Catalogue pages keep entries parsed by (app id, entryRevision), and the database moves the
 * revision whenever an entry changes, whoever writes it (migration 0008's trigger): a page reads
 * only the entries that changed, and never shows an old one.
 */

const databases = await availableDatabases();

// biome-ignore lint/suspicious/noExplicitAny: a document built from the schema at run time has no generated type
type AnyDocument = TypedDocumentNode<any, any>;

const CatalogIcons = graphql(`
  query CatalogIcons($first: Int!) {
    catalog(first: $first) { edges { node { name icon entry } } }
  }
`);

/** The statements that read entries (catalogEntries in src/db/list-sql.ts). */
const entryReads = (server: TestServer) => server.queries.filter((text) => text.includes('"entryRevision", "entry"'));

describe.each(databases)('catalogue entries on %s', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(kind, { recordQueries: true });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await server?.database.drop();
  });

  const page = async () => dataOf(await execute(server, CatalogIcons, { first: 5 })).catalog.edges.map((e) => e.node);

  test('a page reads entries once; a changed entry is read again, alone, and shown', async () => {
    const first = await page();
    expect(first).toHaveLength(5);
    expect(entryReads(server)).toHaveLength(1);
    expect(await page()).toEqual(first);
    expect(entryReads(server)).toHaveLength(1);

    const changed = first[2]?.name as string;
    const row = await server.app.db.catalogApp.findFirstOrThrow({ where: { name: changed } });
    const entry = { ...(row.entry as Record<string, unknown>), icon: 'https://icons.example/new.png' };
    await server.app.db.catalogApp.update({ where: { id: row.id }, data: { entry } });

    const after = await page();
    expect(after.find((node) => node.name === changed)).toMatchObject({ icon: 'https://icons.example/new.png', entry });
    expect(after.filter((node) => node.name !== changed)).toEqual(first.filter((node) => node.name !== changed));
    const reads = entryReads(server);
    expect(reads).toHaveLength(2);
    expect(reads[1]).toMatch(/IN \((\?|\$1)\)$/);
  });

  test('a page shows every field of each app as node(id) does, from its own columns', async () => {
    // Every field the schema gives CatalogApp (objects as their __typename), so a field added later is covered too.
    const fields = Object.values((schema.getType('CatalogApp') as GraphQLObjectType).getFields())
      .filter((field) => field.args.every((arg) => !isNonNullType(arg.type)))
      .map((field) => (isCompositeType(getNamedType(field.type)) ? `${field.name} { __typename }` : field.name))
      .join(' ');
    const nodes: Record<string, unknown>[] = dataOf(
      await execute(server, parse(`{ catalog(first: 8) { edges { node { ${fields} } } } }`) as AnyDocument),
    ).catalog.edges.map((edge: { node: Record<string, unknown> }) => edge.node);
    expect(nodes).toHaveLength(8);
    const byId = parse(`query($id: ID!) { node(id: $id) { ... on CatalogApp { ${fields} } } }`) as AnyDocument;
    for (const app of nodes) {
      expect(app).toEqual(dataOf(await execute(server, byId, { id: app.id })).node);
    }
    expect(nodes.some((app) => app.title !== null && app.description !== null && app.paid === true)).toBe(true);
  });
});

describe.each(databases)('CatalogApp.entryRevision on %s', (kind) => {
  let database: TestDatabase;
  let db: Db;
  const revisionOf = async (id: number) =>
    (await db.catalogApp.findUniqueOrThrow({ where: { id }, select: { entryRevision: true } })).entryRevision;
  const row = (name: string, entry: object) => ({
    appId: name,
    name,
    version: '1.0.0',
    versions: '["1.0.0"]',
    cfgType: 'app',
    title: name,
    description: null,
    searchText: name,
    paid: false,
    price: null,
    entry: JSON.stringify(entry),
    summaryHash: null,
  });

  /** The same row as Prisma creates it. */
  const created = (name: string, sourceId: string, entry: object) => {
    const { price: _none, ...columns } = row(name, entry);
    return { ...columns, sourceId, versions: ['1.0.0'], entry };
  };

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    db = createPrismaClient(database.url);
  }, 60_000);
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
  });

  test('moves with each change of the entry, by any writer, and only then', async () => {
    const { id } = await db.catalogApp.create({ data: created('vault', 'market.olares', { icon: 'a' }) });
    expect(await revisionOf(id)).toBe(0);
    // Through Prisma: another column, then the entry.
    await db.catalogApp.update({ where: { id }, data: { version: '1.0.1' } });
    expect(await revisionOf(id)).toBe(0);
    await db.catalogApp.update({ where: { id }, data: { entry: { icon: 'b' } } });
    expect(await revisionOf(id)).toBe(1);
    // The Syncer's upsert (INSERT … ON CONFLICT DO UPDATE): the same entry, then a new one.
    const sql = driverSqlOf(db);
    await updateCatalogApps(sql, 'market.olares', [row('vault', { icon: 'b' })], new Date());
    expect(await revisionOf(id)).toBe(1);
    await updateCatalogApps(sql, 'market.olares', [row('vault', { icon: 'c' })], new Date());
    expect(await revisionOf(id)).toBe(2);
    // A statement run by hand.
    await sql.$executeRaw`UPDATE "CatalogApp" SET "entry" = ${JSON.stringify({ icon: 'd' })} WHERE "id" = ${id}`;
    expect(await revisionOf(id)).toBe(3);
    // Never back: a later change would reuse a revision kept with another entry.
    await sql.$executeRaw`UPDATE "CatalogApp" SET "entryRevision" = 0 WHERE "id" = ${id}`.catch(() => {});
    expect(await revisionOf(id)).toBe(3);
  });

  test('CatalogEntries: frozen, shared, bounded, and large reads not kept', async () => {
    for (const name of ['one', 'two', 'three']) {
      await db.catalogApp.create({ data: created(name, 'studio', { name, nested: { list: [1] } }) });
    }
    const sql = driverSqlOf(db);
    const rows = () =>
      pageRows<CatalogListRow>(sql, 'CatalogApp', [], { fromNewest: false, take: 10 }, CATALOG_LIST_COLUMNS);
    const listed = (await rows()).filter((r) => r.sourceId === 'studio');
    expect(Object.keys(listed[0] as object)).not.toContain('entry');
    const expected = ['one', 'two', 'three'].map((name) => ({ name, nested: { list: [1] } }));
    // A read of more than half of what is kept is used, not kept (it would push out the rest).
    const large = new CatalogEntries(sql, 4);
    expect((await large.attach(listed.map((row) => ({ ...row })))).map((row) => row.entry)).toEqual(expected);
    expect(large.size).toBe(0);

    const entries = new CatalogEntries(sql, 2);
    const attached = [];
    for (const row of listed) attached.push(...(await entries.attach([{ ...row }])));
    expect(attached.map((row) => row.entry)).toEqual(expected);
    expect(entries.size).toBe(2); // the least recently used (one) went
    const three = attached[2] as CatalogAppRow;
    const { nested } = three.entry as { nested: { list: number[] } };
    expect(() => nested.list.push(2)).toThrow(TypeError);
    const again = await entries.attach([{ ...(listed[2] as CatalogListRow) }]);
    expect(again[0]?.entry).toBe(three.entry);
  });
});
