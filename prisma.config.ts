import path from 'node:path';
import { defineConfig } from 'prisma/config';

// The CLI falls back to downloading a native query engine when DATABASE_URL cannot be resolved
// (platform-notes pitfall 3); a default keeps every CLI command offline.
process.env.DATABASE_URL ??= 'file:./data/market.db';
process.env.PRISMA_POSTGRES_SCHEMA_URL ??= 'postgresql://localhost:5432/unused';

// Only `prisma generate` and `prisma migrate diff` are used: migrations are applied by our own
// step (src/db/migrate.ts) on both providers, see the README.
export default defineConfig({
  schema: path.join('prisma', 'schema.prisma'),
  engine: 'js',
  experimental: { adapter: true },
  adapter: async () => {
    const { PrismaBetterSQLite3 } = await import('@prisma/adapter-better-sqlite3');
    return new PrismaBetterSQLite3({ url: ':memory:' });
  },
});
