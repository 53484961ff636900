// Derives prisma/postgres/schema.prisma from prisma/schema.prisma (the SQLite one), so the two
// providers can never drift apart. Run by `npm run prisma:generate` (and so by postinstall).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';

const source = readFileSync('prisma/schema.prisma', 'utf8');
const derived = source
  .replace('provider = "sqlite"', 'provider = "postgresql"')
  .replace('output     = "../src/generated/prisma-sqlite"', 'output     = "../../src/generated/prisma-postgres"')
  // The URL is never used at run time (the driver adapter connects); it only has to parse as a
  // PostgreSQL URL, or the CLI falls back to downloading an engine (platform-notes pitfall 3).
  .replace('env("DATABASE_URL")', 'env("PRISMA_POSTGRES_SCHEMA_URL")');
if (derived === source || !derived.includes('prisma-postgres') || !derived.includes('"postgresql"')) {
  throw new Error('prisma/schema.prisma no longer has the lines scripts/prisma-schemas.mjs rewrites');
}
mkdirSync('prisma/postgres', { recursive: true });
writeFileSync(
  'prisma/postgres/schema.prisma',
  `// GENERATED from prisma/schema.prisma by scripts/prisma-schemas.mjs: edit that file instead.\n${derived}`,
);
