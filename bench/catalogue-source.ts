/**
 * The fake market source of the `catalogue` benchmark (bench/catalogue-sync.ts), in a process of
 * its own so that serving the catalogue (building the index, JSON of the details) is not counted
 * as the Syncer's CPU: test/support/fake-market-source.ts over BENCH_CATALOGUE_APPS entries
 * (bench/lib/catalogue-entries.ts). Reports its URL and the catalogue hash when ready; answers
 * `cpu` (its CPU so far) and `requests` (requests served so far, by endpoint).
 */
import { startFakeMarketSource } from '../test/support/fake-market-source.js';
import { benchEntries } from './lib/catalogue-entries.js';
import { cpuSample, failed, send, serve } from './lib/fanout-child.js';

export type CatalogueSourceRequest =
  | { id: number; type: 'cpu' }
  | { id: number; type: 'requests' }
  | { id: number; type: 'stop' };

async function main(): Promise<void> {
  const apps = Number(process.env.BENCH_CATALOGUE_APPS);
  if (!Number.isInteger(apps) || apps < 1) throw new Error('BENCH_CATALOGUE_APPS must be a positive integer');
  const source = await startFakeMarketSource({ entries: benchEntries(apps) });
  const hash = source.hash;
  serve<CatalogueSourceRequest>(
    async (request) => {
      switch (request.type) {
        case 'cpu':
          return cpuSample();
        case 'requests': {
          const counts = { hash: source.count('hash'), info: source.count('info'), details: source.count('details') };
          source.resetCounters();
          return counts;
        }
        default:
          throw new Error(`unknown request ${request.type}`);
      }
    },
    () => source.close(),
  );
  send({ type: 'ready', url: source.url, fdLimit: null, pid: process.pid, detail: { hash, apps } });
}

main().catch(failed);
