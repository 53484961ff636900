import { builder } from './builder.js';
import { connectionType } from './connections.js';
import { rowId } from './global-id.js';
import { CatalogAppRef, MarketSourceRef } from './refs.js';

builder.node(MarketSourceRef, {
  description: 'A market source: the remote catalogue or a local one (upload, studio, cli).',
  id: { resolve: (source) => source.sourceId },
  loadOne: (sourceId, ctx) => ctx.services.catalog.marketSource(String(sourceId)),
  fields: (t) => ({
    sourceId: t.exposeString('sourceId', { description: 'Source id, e.g. `market.olares`.' }),
    title: t.exposeString('title', { description: 'Display name.' }),
    type: t.exposeString('type', { description: '`remote` or `local`.' }),
    baseUrl: t.exposeString('baseUrl', { nullable: true, description: 'Where the catalogue comes from.' }),
    priority: t.exposeInt('priority', { description: 'Higher comes first.' }),
    isActive: t.exposeBoolean('isActive', { description: 'Whether apps from it are offered (one remote at most).' }),
  }),
});

builder.node(CatalogAppRef, {
  description: 'An app offered by a market source.',
  id: { resolve: (app) => app.id },
  loadOne: (id, ctx) => {
    const row = rowId(id);
    return row === null ? null : ctx.services.catalog.getById(row);
  },
  fields: (t) => ({
    sourceId: t.exposeString('sourceId', { description: 'Source offering it.' }),
    appId: t.exposeString('appId', { description: 'Catalogue id within the source.' }),
    name: t.exposeString('name', { description: 'App name, as used by install.' }),
    version: t.exposeString('version', { description: 'Latest version.' }),
    versions: t.stringList({
      description: 'Every installable version, newest first.',
      resolve: (app) => app.versions as string[],
    }),
    cfgType: t.exposeString('cfgType', { description: '`app`, `middleware`, …' }),
    title: t.exposeString('title', { nullable: true, description: 'Display title.' }),
    description: t.exposeString('description', { nullable: true, description: 'Short description.' }),
    categories: t.stringList({
      description: 'Categories.',
      resolve: (app, _args, ctx) => ctx.loaders.catalogCategories.load(app.id),
    }),
    paid: t.exposeBoolean('paid', { description: 'Whether it must be bought before install.' }),
    entry: t.field({
      type: 'JSON',
      description: 'The full catalogue entry (manifest fields).',
      resolve: (app) => app.entry,
    }),
  }),
});

const CatalogAppConnection = connectionType(CatalogAppRef, 'CatalogApp', 'catalogue apps');

builder.queryFields((t) => ({
  marketSources: t.field({
    type: [MarketSourceRef],
    description: 'Sources whose apps are offered: the active remote and every local source.',
    resolve: (_root, _args, ctx) => ctx.services.catalog.marketSources(),
  }),
  catalog: t.connection(
    {
      type: CatalogAppRef,
      description: 'The app catalogue.',
      args: {
        sourceId: t.arg.string({ description: 'Only apps of this source.' }),
        search: t.arg.string({
          description:
            'Case-insensitive text in the name, title or description, at most 200 characters; `%`, `_` and `\\` each match any one character.',
        }),
        category: t.arg.string({ description: 'Only apps in this category.' }),
      },
      resolve: (_root, { sourceId, search, category, ...page }, ctx) =>
        ctx.services.catalog.list({ sourceId, search, category }, page),
    },
    CatalogAppConnection,
  ),
}));
