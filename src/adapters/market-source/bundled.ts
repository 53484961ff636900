import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { garbage, readBundledFile } from './answers.js';
import type { MarketSourceClient, SourceDetails, SourceHash, SourceIndex } from './port.js';
import { MarketSourceError } from './port.js';

/**
 * The catalogue file bundled with the project, read as if it were a market source, so that a
 * server with no MARKET_SOURCE_URL still syncs a full catalogue offline, through the same
 * Syncer. The file is one JSON object:
 *
 * ```json
 * {
 *   "last_updated": "2026-05-01T00:00:00.000000000Z",
 *   "data": { "apps": { "<id>": { "id", "name", "version", "updated_at", … } }, "tags": {}, … },
 *   "details": { "<id>": { …ApplicationInfoEntry… } }
 * }
 * ```
 *
 * `data` is what an info answer's `data` holds (its other sections are read, not stored) and every
 * app of `data.apps` needs its entry in `details`. The hash is the SHA-256 of the file's bytes,
 * so an edit is picked up by the next sync. The file is parsed once per hash: `hash()` and
 * `index()` re-read its bytes (a poll must see edits), `detailsEach()` answers from the snapshot the
 * last of them read, so it matches the index the Syncer is working from.
 */

export interface BundledCatalogueOptions {
  path: string;
  /** A larger file is refused rather than read. @default 64 MiB */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

interface Snapshot {
  hash: string;
  index: SourceIndex;
  entries: Map<string, Record<string, unknown>>;
}

export class BundledCatalogue implements MarketSourceClient {
  readonly describe = 'bundled catalogue';
  private readonly path: string;
  private readonly maxBytes: number;
  private snapshot: Snapshot | null = null;

  constructor(options: BundledCatalogueOptions) {
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  async hash(): Promise<SourceHash> {
    const { hash, index } = await this.load();
    return { hash, lastUpdated: index.lastUpdated };
  }

  async index(): Promise<SourceIndex> {
    return (await this.load()).index;
  }

  /** One answer: the file is parsed whole anyway. */
  async detailsEach(appIds: readonly string[], each: (answer: SourceDetails) => void | Promise<void>): Promise<void> {
    const { entries } = this.snapshot ?? (await this.load());
    const result: SourceDetails = { apps: new Map(), notFound: [], skipped: [] };
    for (const id of new Set(appIds)) {
      const entry = entries.get(id);
      if (entry) result.apps.set(id, entry);
      else result.notFound.push(id);
    }
    await each(result);
  }

  /** The file's current snapshot: its bytes are read and hashed, and parsed only when the hash moved. */
  private async load(): Promise<Snapshot> {
    const bytes = await this.read();
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (this.snapshot?.hash === hash) return this.snapshot;
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw garbage('bundled catalogue', `${this.path} is not JSON`);
    }
    const { index, entries } = readBundledFile(body, hash);
    this.snapshot = { hash, index, entries };
    return this.snapshot;
  }

  private async read(): Promise<Buffer> {
    let file: Awaited<ReturnType<typeof open>> | undefined;
    try {
      file = await open(this.path, 'r');
      const { size } = await file.stat();
      if (size > this.maxBytes) {
        throw new MarketSourceError(
          'too_large',
          `bundled catalogue: ${this.path} is larger than ${this.maxBytes} bytes`,
        );
      }
      return await file.readFile();
    } catch (error) {
      if (error instanceof MarketSourceError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      const problem = code === 'ENOENT' ? `no file at ${this.path}` : `cannot read ${this.path} (${code ?? error})`;
      throw new MarketSourceError('unreachable', `bundled catalogue: ${problem}`);
    } finally {
      await file?.close();
    }
  }
}
