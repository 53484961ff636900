/**
 * A market source as the Syncer reads it: the Olares market-source protocol (the official
 * catalogue and third-party ones speak it over HTTP, see http.ts) or the catalogue file bundled
 * with the project (bundled.ts), which answers the same three questions from disk.
 *
 * Field names stay the protocol's own (snake_case in the envelopes, the ApplicationInfoEntry's
 * camelCase inside `apps`): this layer checks shapes and bounds, it does not remodel entries.
 * Whether an entry is a usable ApplicationInfoEntry is decided later, by `readCatalogueEntry`
 * (src/domain/catalogue-entry.ts).
 */

/** `GET {base}/api/v{2,1}/appstore/hash?version=V`: cheap, polled; the catalogue moved when `hash` did. */
export interface SourceHash {
  hash: string;
  /** As the source wrote it (RFC 3339 with up to nine fractional digits), or null (absent or not a time). */
  lastUpdated: string | null;
}

/** One app of the catalogue index: enough to tell whether its details changed. */
export interface SourceAppSummary {
  /** The source's app id (the key of `data.apps`; real sources use 8 hex digits). */
  id: string;
  name: string;
  version: string;
  /** When the source last changed the app (`updated_at`), or null (absent or not a time). */
  updatedAt: string | null;
  /** The summary object as the source sent it. */
  raw: Record<string, unknown>;
}

/**
 * An app the source listed but that was left out of the answer, with why ("not an object", "its
 * id is not its key" …). Real clients skip such apps rather than fail the whole sync; to the
 * Syncer they are apps the source does not have.
 */
export interface SkippedApp {
  /** The key it was listed under (cut to 64 characters when it is not a valid id). */
  id: string;
  reason: string;
}

/** `GET {base}/api/v{2,1}/appstore/info?version=V`: the whole catalogue index. */
export interface SourceIndex {
  hash: string;
  lastUpdated: string | null;
  apps: SourceAppSummary[];
  /**
   * `tags`, `pages`, `topics`, `topic_lists`, `tops`, `latest`, `recommends`, as sent (those
   * present). Nothing stores them yet: the Syncer keeps the apps only.
   */
  others: Record<string, unknown>;
  /** Summaries left out of `apps`. When every summary would be, the index is refused as garbage instead. */
  skipped: SkippedApp[];
}

/** `POST {base}/api/v{2,1}/applications/info` with `{ app_ids, version }`: full entries. */
export interface SourceDetails {
  /** Entries by app id, only for ids asked for; each is an object, readCatalogueEntry checks the rest. */
  apps: Map<string, Record<string, unknown>>;
  /** Ids asked for that the source does not have: listed in its `not_found`, or simply not answered. */
  notFound: string[];
  /** Ids asked for whose answer is not an object. */
  skipped: SkippedApp[];
}

/**
 * Why a call to a source failed, in words fit for the `syncer` component, the source's sync
 * status and a log line: no secret, bounded length.
 */
export class MarketSourceError extends Error {
  constructor(
    readonly reason: 'timeout' | 'unreachable' | 'status' | 'too_large' | 'garbage',
    message: string,
  ) {
    super(message);
    this.name = 'MarketSourceError';
  }
}

/**
 * The three reads of a sync. Every method throws MarketSourceError, and nothing else, on failure;
 * once `signal` fires (a stop cutting the sync short), the call in flight is abandoned and the
 * method rejects with the signal's reason instead.
 */
export interface MarketSourceClient {
  /** What the client reads, for messages (the base URL without credentials, or `bundled catalogue`). */
  readonly describe: string;
  hash(signal?: AbortSignal): Promise<SourceHash>;
  index(signal?: AbortSignal): Promise<SourceIndex>;
  /**
   * The full entries of `appIds`, handed to `each` one answer (batch) at a time as it arrives, in
   * no particular order; resolves once every batch was handed over. Batches of MAX_DETAIL_BATCH
   * ids (a longer list takes several calls; an empty one costs no call). The Syncer reads a batch's
   * entries while the next ones are on their way (it used to wait for the last answer first) and
   * keeps none parsed past its batch. After a failure no further batch is asked for. An exception
   * of `each` (or its rejection) rejects as it is. `each` may return a promise (reading a batch in
   * steps, with turns of the event loop between): the batch's call asks for its next batch once it
   * resolves.
   */
  detailsEach(
    appIds: readonly string[],
    each: (answer: SourceDetails) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<void>;
}

/** Every answer of `detailsEach` together, in the order the ids were asked. */
export async function collectDetails(client: MarketSourceClient, appIds: readonly string[]): Promise<SourceDetails> {
  const apps = new Map<string, Record<string, unknown>>();
  const notFound = new Set<string>();
  const skipped = new Map<string, string>();
  await client.detailsEach(appIds, (answer) => {
    for (const [id, entry] of answer.apps) apps.set(id, entry);
    for (const id of answer.notFound) notFound.add(id);
    for (const app of answer.skipped) skipped.set(app.id, app.reason);
  });
  const result: SourceDetails = { apps: new Map(), notFound: [], skipped: [] };
  for (const id of new Set(appIds)) {
    const entry = apps.get(id);
    const reason = skipped.get(id);
    if (entry) result.apps.set(id, entry);
    else if (notFound.has(id)) result.notFound.push(id);
    else if (reason !== undefined) result.skipped.push({ id, reason });
  }
  return result;
}

/** Most app ids per `applications/info` call (the official client sends 10 at a time). */
export const MAX_DETAIL_BATCH = 100;
