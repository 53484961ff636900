// `npm run migrations:diff -- <name>`: writes the SQL that takes the database from the schema of
// the last migration (prisma/migrations/schema.snapshot.prisma) to prisma/schema.prisma, as a new
// migration folder for each provider, then moves the snapshot forward. Offline: `migrate diff`
// compares two schema files and needs no database.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHECKSUMS, migrationChecksums } from './migrations-lock.mjs';
import { toPostgres } from './prisma-schemas.mjs';

const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run migrations:diff -- <name_in_snake_case>');
  process.exit(2);
}
const snapshot = path.join('prisma', 'migrations', 'schema.snapshot.prisma');
const current = path.join('prisma', 'schema.prisma');
const scratch = mkdtempSync(path.join(tmpdir(), 'migrations-diff-'));
const schemas = {
  sqlite: { from: snapshot, to: current },
  postgresql: {
    from: path.join(scratch, 'from.prisma'),
    to: path.join(scratch, 'to.prisma'),
  },
};
writeFileSync(schemas.postgresql.from, toPostgres(readFileSync(snapshot, 'utf8')));
writeFileSync(schemas.postgresql.to, toPostgres(readFileSync(current, 'utf8')));

for (const [provider, { from, to }] of Object.entries(schemas)) {
  const dir = path.join('prisma', 'migrations', provider);
  const next = String(readdirSync(dir).filter((entry) => /^\d{4}_/.test(entry)).length + 1).padStart(4, '0');
  const sql = execFileSync(
    'npx',
    ['prisma', 'migrate', 'diff', '--from-schema-datamodel', from, '--to-schema-datamodel', to, '--script'],
    { encoding: 'utf8' },
  );
  if (!sql.trim() || /^-- This is an empty migration/.test(sql.trim())) {
    console.log(`${provider}: no changes`);
    continue;
  }
  const folder = path.join(dir, `${next}_${name}`);
  if (existsSync(folder)) throw new Error(`${folder} exists`);
  mkdirSync(folder);
  writeFileSync(path.join(folder, 'migration.sql'), sql);
  console.log(`${provider}: wrote ${folder}/migration.sql`);
}
copyFileSync(current, snapshot);
// The new migrations' checksums (migrations-lock.mjs): edit one before committing? Run `npm run migrations:lock` again.
writeFileSync(CHECKSUMS, `${JSON.stringify(migrationChecksums(), null, 2)}\n`);
