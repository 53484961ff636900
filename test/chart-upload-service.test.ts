import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { afterEach, describe, expect, onTestFinished, test, vi } from 'vitest';
import { stringify } from 'yaml';
import type { Viewer } from '../src/auth/viewer.js';
import { createPrismaClient } from '../src/db/client.js';
import { ensureDefaultSources } from '../src/db/default-sources.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { ValidationError } from '../src/domain/errors.js';
import type { CatalogueChanged } from '../src/events/change-feed.js';
import { CatalogService } from '../src/services/catalog-service.js';
import { ChartUploadService } from '../src/services/chart-upload-service.js';
import { createTestDatabase } from './support/databases.js';

/**
 * ChartUploadService on its own, over a migrated SQLite database: whether an upload is announced
 * as added or updated, and that a failing announcement after the commit does not fail the upload. Uploads through the API, on both databases: chart-upload.test.ts.
 */

/** A packaged chart (`<name>/Chart.yaml`, `<name>/OlaresManifest.yaml`), gzipped tar bytes. */
function chart(name: string, version: string, title = `${name} title`): Blob {
  const files = {
    [`${name}/Chart.yaml`]: stringify({ apiVersion: 'v2', name, version }),
    [`${name}/OlaresManifest.yaml`]: stringify({
      'olaresManifest.type': 'app',
      metadata: { name, version, title, categories: ['Utilities'] },
      spec: { requiredMemory: '512Mi' },
    }),
  };
  const blocks: Buffer[] = [];
  for (const [path, text] of Object.entries(files)) {
    const body = Buffer.from(text);
    const header = Buffer.alloc(512);
    new Header({ path, type: 'File', size: body.length, mode: 0o644, mtime: new Date(0) }).encode(header, 0);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return new Blob([new Uint8Array(gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)])))]);
}

/** A migrated SQLite database with the default sources, and the catalogue service over it. */
async function realDb() {
  const database = await createTestDatabase('sqlite');
  await migrateDatabase(database.url);
  const db = createPrismaClient(database.url);
  await ensureDefaultSources(db, null);
  const catalog = new CatalogService(db, 100);
  return {
    db,
    catalog,
    rows: () => db.catalogApp.findMany({ where: { sourceId: 'upload' } }),
    async close() {
      await db.$disconnect();
      await database.drop();
    },
  };
}

const ADMIN = { isAdmin: true } as Viewer;
const limits = { maxBytes: 1024 * 1024 };

afterEach(() => {
  vi.restoreAllMocks();
});

describe('ChartUploadService', () => {
  test('a first upload is announced as added and the next as updated', async () => {
    const { db, catalog, close } = await realDb();
    try {
      const changes: CatalogueChanged[] = [];
      const service = new ChartUploadService(db, catalog, limits, async (change) => {
        changes.push(change);
      });
      await service.upload(ADMIN, chart('notes', '1.0.0'));
      await service.upload(ADMIN, chart('notes', '1.1.0'));
      expect(changes).toEqual([
        { sourceId: 'upload', added: ['notes'], updated: [], removed: [], versions: { notes: '1.0.0' } },
        { sourceId: 'upload', added: [], updated: ['notes'], removed: [], versions: { notes: '1.1.0' } },
      ]);
    } finally {
      await close();
    }
  });

  test('an announcement that fails after the commit is a process warning, not a failed upload', async () => {
    const { db, catalog, rows, close } = await realDb();
    onTestFinished(close);
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const rejecting = new ChartUploadService(db, catalog, limits, async () => {
      throw new Error('event bus down');
    });
    const app = await rejecting.upload(ADMIN, chart('notes', '1.0.0'));
    expect(app).toMatchObject({ appId: 'notes', version: '1.0.0' });
    expect(await rows()).toEqual([app]);
    expect(warning).toHaveBeenCalledWith(
      'the catalogue change of uploaded chart notes could not be announced: Error: event bus down',
    );

    const throwing = new ChartUploadService(db, catalog, limits, () => {
      throw new Error('thrown before any promise');
    });
    await expect(throwing.upload(ADMIN, chart('notes', '1.1.0'))).resolves.toMatchObject({ version: '1.1.0' });
    expect(warning).toHaveBeenCalledTimes(2);
  });

  test('a manifest text the databases cannot store alike is refused by the catalogue rules, naming file and field', async () => {
    const { db, catalog, rows, close } = await realDb();
    onTestFinished(close);
    const service = new ChartUploadService(db, catalog, limits);
    for (const [title, problem] of [
      ['No\u0000tes', 'U+0000 (NUL)'],
      ['Notes \ud83d', 'an unpaired surrogate'],
    ]) {
      const refused = service.upload(ADMIN, chart('notes', '1.0.0', title));
      await expect(refused).rejects.toThrow(ValidationError);
      await expect(refused).rejects.toThrow(
        `OlaresManifest.yaml: metadata.title holds text that is not valid Unicode (${problem})`,
      );
    }
    expect(await rows()).toEqual([]);
  });
});
