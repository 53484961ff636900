import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BundledCatalogue } from '../src/adapters/market-source/bundled.js';
import { turnPacer } from '../src/platform/turn-pacer.js';
import { changedApps, fingerprint, readEntries } from '../src/services/catalogue-plan.js';
import { fakeEntry } from './support/fake-market-source.js';

/**
 * A catalogue sync's planning and reading run on the event loop: they give it turns as they go
 * (turnPacer), so that the rest of the process (requests, sockets, timers) is not held for the
 * whole of a large catalogue. Counted with a setImmediate loop that runs once per turn it is given:
 * work done in one piece lets it run no time before it ends. The pacers are given a budget of 0 ms,
 * so that a turn is due at every step however fast the machine does the work.
 */

/** Runs `work` and says how many turns of the event loop it gave meanwhile. */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns += 1;
    setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  running = false;
  return turns;
}

const dir = mkdtempSync(path.join(tmpdir(), 'catalogue-turns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a large catalogue sync gives the event loop turns', () => {
  test('reading the entries of one answer of 3,000 apps is done in steps', async () => {
    const entries = Array.from({ length: 3000 }, (_, index) => fakeEntry(`turnsapp-${index}`));
    const file = path.join(dir, 'catalogue.json');
    const summaries = Object.fromEntries(
      entries.map((entry) => [entry.id, { id: entry.id, name: entry.name, version: entry.version }]),
    );
    const details = Object.fromEntries(entries.map((entry) => [entry.id, entry]));
    writeFileSync(file, JSON.stringify({ data: { apps: summaries }, details }));
    // The bundled file answers every entry at once, as one batch: read whole, it was one turn.
    const client = new BundledCatalogue({ path: file });
    const index = await client.index();
    const listed = new Map(index.apps.map((app) => [app.id, app]));
    let readings = new Map<string, unknown>();
    const turns = await turnsDuring(async () => {
      readings = await readEntries(
        client,
        index.apps.map((app) => app.id),
        (id) => ({ name: listed.get(id)?.name ?? '', version: listed.get(id)?.version ?? '', fingerprint: 'f' }),
        { maxBytes: 256 * 1024 * 1024 },
        turnPacer(0),
      );
    });
    expect(readings.size).toBe(3000);
    expect([...readings.values()].every((reading) => (reading as { ok: boolean }).ok)).toBe(true);
    expect(turns).toBeGreaterThan(0);
  });

  test('fingerprinting 20,000 stored summaries is done in steps, and finds the changed ones', async () => {
    const apps = Array.from({ length: 20_000 }, (_, index) => {
      const raw = { id: `a${index}`, name: `app-${index}`, version: '1.0.0', description: `App ${index}` };
      return { id: raw.id, name: raw.name, version: raw.version, updatedAt: null, raw };
    });
    // Every app stored, the last two with another fingerprint; one more app is new.
    const stored = new Map(apps.map((app) => [app.id, fingerprint(app.raw)]));
    stored.set('a19998', 'old');
    stored.set('a19999', 'old');
    stored.delete('a0');
    let changed: Awaited<ReturnType<typeof changedApps>> | null = null;
    const turns = await turnsDuring(async () => {
      changed = await changedApps(apps, stored, turnPacer(0));
    });
    expect(changed).toMatchObject({ wanted: ['a0', 'a19998', 'a19999'] });
    expect(turns).toBeGreaterThan(0);
  });
});
