/**
 * The dependency rule of src/ (checked by `npm run lint:deps`, part of `npm test`).
 *
 * The folders form layers, listed from the bottom up. A module may import from its own folder and
 * from the folders below it, never from a folder above: so the folders can't form a cycle, and a
 * reader can walk the tree bottom-up, each folder in terms of the ones already read. README
 * "Layout" says what each folder holds.
 */
const LAYERS = [
  'domain', // the shared vocabulary: errors, app keys, stages, task and payment states, filters
  'platform', // config, logging, redaction, outbound HTTP, periodic jobs
  'db', // Prisma clients, migrations, hand-written hot-path SQL, demo data
  'events', // announcing committed changes
  'auth', // who is asking, and what they may see
  'fanout', // subscription cohorts and their members
  'adapters', // outside systems: app service, developer service, chart repo, market sources
  'services', // request-time domain services
  'engine', // the task engine
  'runtime', // sources → collector → store → runtime service
  'schema', // the GraphQL schema (Pothos)
  'http', // the HTTP edge: limits, origins, intake endpoints
  'transports', // graphql-ws and SSE
  'app', // the composition root
  'index.ts', // the process entry point
];

const folder = (name) => (name.endsWith('.ts') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);

const layerRules = LAYERS.slice(0, -1).map((name, i) => ({
  name: `layer-${name}`,
  comment: `src/${name} may import only from the folders below it: ${LAYERS.slice(0, i).join(', ') || 'none'}`,
  severity: 'error',
  from: { path: folder(name) },
  to: { path: LAYERS.slice(i + 1).map(folder) },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'adapters-stand-alone',
      comment: 'each adapter (app service, developer service, chart repo, market source) stands on its own',
      severity: 'error',
      from: { path: '^src/adapters/([^/]+)/' },
      to: { path: '^src/adapters/', pathNot: '^src/adapters/$1/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycle between modules either',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
