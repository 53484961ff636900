// Derives the PostgreSQL variant of a Prisma schema from the SQLite one (prisma/schema.prisma),
// so the two providers can never drift apart. Run by `npm run prisma:generate` (postinstall).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function toPostgres(source, outputFromDir = '../../src/generated/prisma-postgres') {
  const derived = source
    .replace('provider = "sqlite"', 'provider = "postgresql"')
    .replace('output     = "../src/generated/prisma-sqlite"', `output     = "${outputFromDir}"`)
    // The URL is never used at run time (the driver adapter connects); it only has to parse as a
    // PostgreSQL URL, or the CLI falls back to downloading an engine (platform-notes pitfall 3).
    .replace('env("DATABASE_URL")', 'env("PRISMA_POSTGRES_SCHEMA_URL")');
  if (derived === source || !derived.includes('"postgresql"') || !derived.includes('PRISMA_POSTGRES_SCHEMA_URL')) {
    throw new Error('the SQLite schema no longer has the lines scripts/prisma-schemas.mjs rewrites');
  }
  return `// GENERATED from prisma/schema.prisma by scripts/prisma-schemas.mjs: edit that file instead.\n${derived}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(path.join('prisma', 'postgres'), { recursive: true });
  writeFileSync(
    path.join('prisma', 'postgres', 'schema.prisma'),
    toPostgres(readFileSync(path.join('prisma', 'schema.prisma'), 'utf8')),
  );
}
