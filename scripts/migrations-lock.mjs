// `npm run migrations:lock`: writes prisma/migrations/checksums.json, the SHA-256 of every
// migration's SQL as migrate.ts computes it (the checksum a database records when it applies it).
// test/migrate.test.ts compares the files with it: a migration edited after it was released
// stops every database that applied it from starting ("changed after it was applied"), so an
// edit to a released migration fails the tests instead. Run it after adding (or, before it is
// released, editing) a migration; `npm run migrations:diff` runs it.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const CHECKSUMS = path.join('prisma', 'migrations', 'checksums.json');

export function migrationChecksums(root = path.join('prisma', 'migrations')) {
  const checksums = {};
  for (const provider of ['postgresql', 'sqlite']) {
    const dir = path.join(root, provider);
    for (const name of readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory())) {
      const sql = readFileSync(path.join(dir, name.name, 'migration.sql'), 'utf8');
      checksums[`${provider}/${name.name}`] = createHash('sha256').update(sql).digest('hex');
    }
  }
  return Object.fromEntries(Object.entries(checksums).sort(([a], [b]) => (a < b ? -1 : 1)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeFileSync(CHECKSUMS, `${JSON.stringify(migrationChecksums(), null, 2)}\n`);
  console.log(`wrote ${CHECKSUMS}`);
}
