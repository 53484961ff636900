import { MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import type { CatalogueChanged } from '../events/change-feed.js';
import { builder } from './builder.js';

const CatalogueChangeRef = builder.objectRef<CatalogueChanged>('CatalogueChange').implement({
  description: "What one sync or upload changed in a market source's catalogue (app ids, as the source names them).",
  fields: (t) => ({
    sourceId: t.exposeString('sourceId', { description: 'The source whose catalogue changed.' }),
    added: t.exposeStringList('added', { description: 'Apps new to the catalogue.' }),
    updated: t.exposeStringList('updated', { description: 'Apps whose entry changed (a new version, new texts …).' }),
    removed: t.exposeStringList('removed', { description: 'Apps no longer offered.' }),
    sourcesChanged: t.boolean({
      description:
        'An admin added, selected (its catalogue is now the one offered; the previous active source has an event too) or removed this source: read `catalog` (and `marketSources`) again. `added`, `updated` and `removed` are empty then.',
      resolve: (change) => change.sourcesChanged === true,
    }),
  }),
});

builder.subscriptionField('catalogueChanged', (t) =>
  t.field({
    type: CatalogueChangeRef,
    description:
      'Each change of the catalogue: a sync or an upload that changed the entries of one source, or an admin adding, selecting or removing a source (`sourcesChanged`), of one source or of every source (an inactive one: admins only, as `catalog`). Query `catalog` for the entries.',
    args: { sourceId: t.arg.string({ description: `Only this source (at most ${MAX_SOURCE_ID_LENGTH} characters).` }) },
    subscribe: (_root, { sourceId }, ctx) => ctx.services.catalogueChanges.subscribe(ctx.viewer, sourceId),
    resolve: (change) => change,
  }),
);
