import type { CatalogView } from '../db/models.js';
import { MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { entryText, parseLocale } from '../domain/catalogue-views.js';
import { MAX_CATEGORY_LENGTH } from '../services/catalog-service.js';
import { builder } from './builder.js';
// Also registers the typed fields of CatalogApp read from its entry (icon, requirements, price …).
import { LOCALE_ARG_DESCRIPTION } from './catalog-entry.js';
import { connectionType, costWeight } from './connections.js';
import { rowIdParser } from './global-id.js';
import { CatalogAppRef } from './refs.js';

/**
 * The title or description in `locale`. Without one, the column (the FALLBACK_LOCALE text the
 * catalogue read when it stored the entry), as before locales existed; with one, the entry's text.
 */
function localizedColumn(app: CatalogView, field: 'title' | 'description', locale: string | null | undefined) {
  const wanted = parseLocale(locale);
  return wanted === null ? app[field] : (entryText(app.entry, field, wanted) ?? app[field]);
}

/**
 * What an entry counts in the query cost: up to MAX_ENTRY_BYTES (256 KiB), a rich one (long
 * description, 20 releases with notes) is 21.5 KB of the answer, ~1,080 plain values of ~20 bytes
 * (and 392 µs of CPU, ~115 of them). A page of 20 entries costs ~20,000, a page of 100 is over
 * MAX_QUERY_COST's default (a detail page reads one entry through `node`).
 */
const ENTRY_COST = 1_000;

builder.node(CatalogAppRef, {
  description: 'An app offered by a market source.',
  id: { resolve: (app) => app.id, parse: rowIdParser('CatalogApp') },
  loadOne: (id, ctx) => ctx.services.catalog.getById(ctx.viewer, id),
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
    title: t.string({
      nullable: true,
      description: 'Display title, in `locale` when given.',
      args: { locale: t.arg.string({ description: LOCALE_ARG_DESCRIPTION }) },
      resolve: (app, { locale }) => localizedColumn(app, 'title', locale),
    }),
    description: t.string({
      nullable: true,
      description: 'Short description, in `locale` when given.',
      args: { locale: t.arg.string({ description: LOCALE_ARG_DESCRIPTION }) },
      resolve: (app, { locale }) => localizedColumn(app, 'description', locale),
    }),
    categories: t.stringList({
      description: 'Categories.',
      resolve: (app, _args, ctx) => ctx.loaders.catalogCategories.load(app.id),
    }),
    paid: t.exposeBoolean('paid', { description: 'Whether it must be bought before install.' }),
    entry: t.field({
      type: 'JSON',
      description: `The full catalogue entry (manifest fields); counts ${ENTRY_COST} in the query cost.`,
      extensions: costWeight(ENTRY_COST),
      resolve: (app) => app.entry,
    }),
  }),
});

const CatalogAppConnection = connectionType(CatalogAppRef, 'CatalogApp', 'catalogue apps');

builder.queryFields((t) => ({
  catalog: t.connection(
    {
      type: CatalogAppRef,
      description:
        'The app catalogue, newest first: in the reverse order its entries were first stored (by a sync or an upload), as every list is.',
      args: {
        sourceId: t.arg.string({ description: `Only apps of this source (1 to ${MAX_SOURCE_ID_LENGTH} characters).` }),
        search: t.arg.string({
          description:
            'Case-insensitive text in the name, title or description, at most 200 characters, matched as written: `%`, `_` and `\\` are themselves, not wildcards.',
        }),
        category: t.arg.string({ description: `Only apps in this category (1 to ${MAX_CATEGORY_LENGTH} characters).` }),
        paid: t.arg.boolean({ description: 'Only paid apps (true) or only free ones (false).' }),
      },
      resolve: (_root, { sourceId, search, category, paid, ...page }, ctx) =>
        ctx.services.catalog.list(ctx.viewer, { sourceId, search, category, paid }, page),
    },
    CatalogAppConnection,
  ),
}));
