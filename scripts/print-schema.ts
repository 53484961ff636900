import { readFileSync, writeFileSync } from 'node:fs';
import { printSchema } from 'graphql';
import { schema } from '../src/schema/index.js';

// Writes schema.graphql, the printed Pothos schema that frontends and codegen read.
// `--check` only compares and exits 1 when the committed file is stale.
const printed = `${printSchema(schema)}\n`;
const target = new URL('../schema.graphql', import.meta.url);
if (process.argv.includes('--check')) {
  const current = readFileSync(target, 'utf8');
  if (current !== printed) {
    console.error('schema.graphql is stale: run `npm run schema:print` and commit it.');
    process.exit(1);
  }
} else {
  writeFileSync(target, printed);
  console.log('wrote schema.graphql');
}
