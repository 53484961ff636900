import { GraphQLError } from 'graphql';
import { builder } from './builder.js';
import { mutationResult } from './errors.js';
import { CatalogAppRef } from './refs.js';

/**
 * Yoga's `File` scalar: in a multipart request (GraphQL multipart request spec) Yoga puts the
 * part's File where the `map` field points, and the value reaches the resolver as is. Anything
 * else a client sends in its place is refused by the service with a VALIDATION error, after the
 * admin check, so that who may not upload learns only that.
 */
builder.scalarType('File', {
  description:
    'A file sent as a part of a multipart request (GraphQL multipart request spec: `operations`, `map`, then the file). Input only.',
  serialize: () => {
    throw new GraphQLError('File is an input-only scalar');
  },
  parseValue: (value) => value,
  parseLiteral: () => {
    throw new GraphQLError('A File cannot be written in the document: send it as a multipart part', {
      extensions: { code: 'VALIDATION' },
    });
  },
});

builder.mutationFields((t) => ({
  uploadChart: t.field({
    type: CatalogAppRef,
    description:
      'Admins only: add a packaged chart (.tgz with Chart.yaml and OlaresManifest.yaml) to the `upload` market source, or replace that app\'s entry. Send it as a multipart request with the `x-graphql-yoga-csrf` header; at most CHART_UPLOAD_MAX_BYTES. Then `installApp(sourceId: "upload", appName, version)` installs it (the app service reads the chart from its chart repository: see the README).',
    errors: mutationResult(
      'uploadChart',
      { name: 'app', description: 'The catalogue entry, as `catalog(sourceId: "upload")` lists it.' },
      'The chart was read and its entry stored.',
    ),
    args: { chart: t.arg({ type: 'File', required: true, description: 'The packaged chart (.tgz).' }) },
    resolve: (_root, { chart }, ctx) => ctx.services.uploads.upload(ctx.viewer, chart),
  }),
}));
