import type { Viewer } from '../auth/viewer.js';
import type { Db } from '../db/client.js';
import { UPLOAD_SOURCE } from '../db/default-sources.js';
import type { CatalogAppRow } from '../db/models.js';
import { readCatalogueEntry } from '../domain/catalogue-entry.js';
import { compareVersions, isNewerVersion } from '../domain/catalogue-version.js';
import { DNS_LABEL } from '../domain/entry-fields.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../domain/errors.js';
import { excerpt } from '../domain/text-length.js';
import { isUploadedFile } from '../domain/uploaded-file.js';
import type { CatalogueChanged } from '../events/change-feed.js';
import type { CatalogService } from './catalog-service.js';
import { catalogueColumns } from './catalogue-writes.js';
import { type ChartLimits, readChartPackage } from './chart-package.js';

/** Versions kept in an uploaded app's history (highest first); lower ones drop off. */
const MAX_HISTORY = 50;

/**
 * `timeout`: an upload's transaction may wait for another instance's upload (the source's lock),
 * longer than Prisma's default 5 s (this instance's own queue is waited for outside it, see
 * oneAtATime); `maxWait`: for a connection to start it on.
 */
const STORE_TRANSACTION = { maxWait: 10_000, timeout: 30_000 };

/**
 * Packaged charts uploaded by admins into the `upload` source: read and checked in memory
 * (chart-package.ts), then written as that source's catalogue entry in one transaction, so an
 * install can name it at once. A refused package stores nothing.
 */
export class ChartUploadService {
  /** The uploads of this process, one after another (see oneAtATime). */
  private uploads: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly catalog: CatalogService,
    private readonly limits: ChartLimits,
    /**
     * Called after each committed upload (the catalogue-change record and announcement). Its
     * failure is reported as a process warning, not to the uploader: the chart is stored by then.
     */
    private readonly onChanged: (change: CatalogueChanged) => Promise<void> = async () => {},
  ) {}

  async upload(viewer: Viewer, file: unknown): Promise<CatalogAppRow> {
    // Before anything is read: a non-admin learns nothing about the package.
    if (!viewer.isAdmin) throw new ForbiddenError('Only admins may upload charts');
    if (!isUploadedFile(file)) {
      throw new ValidationError('chart must be a file, sent as a multipart request (GraphQL multipart request spec)', [
        { path: 'chart', message: 'not a file' },
      ]);
    }
    // Checked before the bytes are copied (Yoga has buffered the part within the body limit).
    if (file.size > this.limits.maxBytes) {
      const message = `the archive is larger than ${this.limits.maxBytes} bytes (CHART_UPLOAD_MAX_BYTES)`;
      throw new ValidationError(message, [{ path: 'chart', message }]);
    }
    const { appId, version, app, existed } = await this.oneAtATime(async () => {
      const chart = await readChartPackage(new Uint8Array(await file.arrayBuffer()), this.limits);
      uploadedNameRule(chart.row.name);
      return { appId: chart.row.name, version: chart.row.version, ...(await this.store(chart.row.name, chart.served)) };
    });
    // An install right after must find the new entry, not a lookup cached before the upload.
    this.catalog.forgetSource(UPLOAD_SOURCE);
    // Committed: a failing announcement must not turn a stored chart into a failed upload (a retry
    // would only store it again). The service has no logger; like the change feed's and the
    // runtime's post-commit dispatch, the failure goes to process warnings (Node prints them to stderr).
    const change = {
      sourceId: UPLOAD_SOURCE,
      added: existed ? [] : [appId],
      updated: existed ? [appId] : [],
      removed: [],
      by: viewer.userId,
      versions: { [appId]: version },
    };
    try {
      await this.onChanged(change);
    } catch (error) {
      process.emitWarning(`the catalogue change of uploaded chart ${appId} could not be announced: ${String(error)}`);
    }
    return app;
  }

  /**
   * Runs the uploads of this process one after another: each unpacks up to 64 MiB (20 at once took
   * the process from 0.34 to 1.56 GB), and each waits for the upload source's lock (see store)
   * inside its transaction, whose time limit the waiting used up (16 large uploads at once on
   * PostgreSQL: 5 failed, "expired transaction"). A failed upload does not stop the next.
   */
  private oneAtATime<T>(upload: () => Promise<T>): Promise<T> {
    const turn = this.uploads.then(upload);
    this.uploads = turn.catch(() => undefined);
    return turn;
  }

  /**
   * Creates or replaces the entry `appId` of the upload source, with its categories, in one
   * transaction; `existed` tells which (the row read before the write, not timestamps that a
   * create and an update within one clock tick would leave equal, or unequal after a migration).
   *
   * Uploads are stored one at a time: the transaction first locks the upload source's row (a
   * no-op UPDATE: the Prisma API has no `SELECT … FOR UPDATE`; SQLite runs one write transaction
   * at a time anyway). Read and merged without it, concurrent uploads of one app on PostgreSQL
   * each kept only their own version, dropping the others' from the history (19 at once left 4),
   * and each announced the app as added.
   */
  private store(appId: string, served: Record<string, unknown>): Promise<{ app: CatalogAppRow; existed: boolean }> {
    return this.db.$transaction(async (tx) => {
      const locked = await tx.$executeRaw`
        UPDATE "MarketSource" SET "sourceId" = "sourceId" WHERE "sourceId" = ${UPLOAD_SOURCE}`;
      if (locked === 0) throw new NotFoundError(`Market source ${UPLOAD_SOURCE} does not exist`);
      const previous = await tx.catalogApp.findUnique({
        where: { sourceId_appId: { sourceId: UPLOAD_SOURCE, appId } },
      });
      const row = withHistory(appId, served, previous);
      const { sourceId, appId: _appId, ...columns } = catalogueColumns(UPLOAD_SOURCE, { ...row, summaryHash: null });
      const saved = await tx.catalogApp.upsert({
        where: { sourceId_appId: { sourceId: UPLOAD_SOURCE, appId } },
        create: { sourceId, appId, ...columns },
        update: columns,
      });
      await tx.catalogAppCategory.deleteMany({ where: { catalogAppId: saved.id } });
      if (row.categories.length) {
        await tx.catalogAppCategory.createMany({
          data: row.categories.map((category) => ({ catalogAppId: saved.id, category })),
        });
      }
      return { app: saved, existed: previous !== null };
    }, STORE_TRANSACTION);
  }
}

/**
 * The row of the app after an upload, read again by the catalogue's rules: the entry of its
 * highest version, and every version uploaded so far in its history, highest first. A package of
 * an older version than the stored entry's only adds its version to the history: made the entry,
 * it became the app's current version, `latestVersion` went back and an installed newer version
 * was offered no upgrade. A version uploaded again, however written (`v1.1.0`, `1.1.0+build.1`),
 * replaces its history record and, being the highest, the entry.
 */
function withHistory(appId: string, served: Record<string, unknown>, previous: CatalogAppRow | null) {
  const uploaded = served.versionHistory as { version: string }[];
  const earlier = readCatalogueEntry(appId, previous?.entry ?? null);
  const kept = earlier.ok ? (earlier.row.entry.versionHistory ?? []) : [];
  // One record per version as the catalogue orders them: `1.1.0`, `v1.1.0`, `1.1` and
  // `1.1.0+build.1` are one version (isNewerVersion finds none newer), and each upload of it
  // replaces the record before; kept side by side, all four were listed and installable, and the
  // entry flipped to whichever came last. (At most MAX_HISTORY + 1 records: the pairs are few.)
  const records: { version: string }[] = [];
  for (const item of [...uploaded, ...kept]) {
    if (!records.some((record) => compareVersions(record.version, item.version) === 0)) records.push(item);
  }
  // Helm's versions, which every upload's passed (chart-package.ts), are all ordered by these rules.
  const history = records.sort((a, b) => compareVersions(b.version, a.version) ?? 0).slice(0, MAX_HISTORY);
  const older = earlier.ok && isNewerVersion(earlier.row.version, String(served.version));
  const entry = older ? earlier.row.entry : served;
  const reading = readCatalogueEntry(appId, { ...entry, versionHistory: history });
  // The package passed these rules already; the history only adds versions they accepted before.
  if (!reading.ok) throw new ValidationError(reading.reason, [{ path: 'chart', message: reading.reason }]);
  return reading.row;
}

/**
 * An uploaded app's name is a Helm release and Kubernetes name: a lowercase DNS label (at most 63),
 * stricter than the catalogue's rule for synced names (letters of either case, 128). Every name in
 * the bundled catalogue and the market's fixtures is one (the longest 31); `Plex` beside `plex`
 * were two apps that one cluster could not tell apart.
 */
function uploadedNameRule(name: string): void {
  if (DNS_LABEL.test(name)) return;
  const message = `OlaresManifest.yaml: metadata.name ${JSON.stringify(excerpt(name, 100))} must be a lowercase DNS label (a-z, 0-9, "-", at most 63 characters)`;
  throw new ValidationError(message, [{ path: 'chart', message }]);
}
