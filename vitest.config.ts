import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (index.js) and ESM (index.mjs) without an exports map: Node loads the
    // CJS one for our dependencies, so our own imports must get the same copy, or graphql-js
    // rejects the schema as coming "from another module or realm".
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file owns its servers and databases, so files run in parallel on the two cores.
    pool: 'forks',
    // CI (.ci/run) reads the counts from the JSON report.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results/vitest.json' }]] : ['default'],
  },
});
