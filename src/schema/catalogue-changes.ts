import type { CatalogueChanged } from '../events/change-feed.js';
import { builder } from './builder.js';

const CatalogueChangeRef = builder.objectRef<CatalogueChanged>('CatalogueChange').implement({
  description: "What one sync or upload changed in a market source's catalogue (app ids, as the source names them).",
  fields: (t) => ({
    sourceId: t.exposeString('sourceId', { description: 'The source whose catalogue changed.' }),
    added: t.exposeStringList('added', { description: 'Apps new to the catalogue.' }),
    updated: t.exposeStringList('updated', { description: 'Apps whose entry changed (a new version, new texts …).' }),
    removed: t.exposeStringList('removed', { description: 'Apps no longer offered.' }),
  }),
});

builder.subscriptionField('catalogueChanged', (t) =>
  t.field({
    type: CatalogueChangeRef,
    description:
      'Each change of the catalogue, as a sync or an upload commits it: of one source, or of every source (an inactive one: admins only, as `catalog`). Query `catalog` for the entries. Selecting or removing a source (which changes the source offered) is not announced here.',
    args: { sourceId: t.arg.string({ description: 'Only this source (at most 50 characters).' }) },
    subscribe: (_root, { sourceId }, ctx) => ctx.services.catalogueChanges.subscribe(ctx.viewer, sourceId),
    resolve: (change) => change,
  }),
);
