import { createHash } from 'node:crypto';

/**
 * What a user asks the app service to do, in the words the task engine, the services and the app
 * service adapters share.
 */

export type OperationType = 'INSTALL' | 'UPGRADE' | 'UNINSTALL' | 'CLONE' | 'STOP' | 'RESUME';

const OPERATION_TYPES: readonly OperationType[] = ['INSTALL', 'UPGRADE', 'UNINSTALL', 'CLONE', 'STOP', 'RESUME'];

export interface EnvVar {
  name: string;
  value?: string | null;
  /** Take the value from another env var (`valueFrom.envName` on the wire). */
  valueFrom?: string | null;
  /**
   * The value must never be shown back: it is redacted from everything the app service answers.
   * Envs named like secrets (VERIFIABLE_CREDENTIAL, *TOKEN*, *SECRET*, *PASSWORD*, *KEY*,
   * *CREDENTIAL*) are treated as secret without it (src/platform/redact.ts). Not sent on the wire.
   */
  secret?: boolean | null;
}

/** The env a paid app's install or clone gets the buyer's credential in (src/engine/dispatch.ts). */
export const CREDENTIAL_ENV = 'VERIFIABLE_CREDENTIAL';

/** Env names only the server sets: a request naming one is refused, and dispatch drops any it finds. */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([CREDENTIAL_ENV]);

export interface OperationRequest {
  type: OperationType;
  userId: string;
  sourceId: string;
  /** The app the operation acts on (for a clone: the new name). */
  appName: string;
  /** Target version (install, upgrade, clone). */
  version?: string | null;
  cfgType: string;
  envs: EnvVar[];
  clone?: { rawAppName: string; title: string; requestHash: string; entrances: { name: string; title: string }[] };
  uninstall?: { all: boolean; deleteData: boolean };
  /** Container images the app service pre-pulls (install, upgrade, clone), from the catalogue entry. */
  images?: ImageRef[];
}

/** One container image of an app, as the app service takes it (`images[]` of install and upgrade). */
export interface ImageRef {
  name: string;
  /** Bytes; 0 when the catalogue does not say. */
  size: number;
}

/** Bounds of the image list kept on a task: a catalogue entry is the source's, so it is not trusted to be small. */
export const MAX_IMAGES = 100;
const MAX_IMAGE_NAME = 512;

/**
 * Everything a task needs to be executed (and retried) besides its columns. Stored as the
 * task's `metadata`; never holds an auth token or a purchase credential (those are looked up
 * when the operation is sent).
 */
export interface TaskMetadata {
  cfgType: string;
  envs: EnvVar[];
  /** Catalogue app id, for the purchase credential of paid apps. */
  appId?: string;
  paid?: boolean;
  clone?: OperationRequest['clone'];
  uninstall?: OperationRequest['uninstall'];
  images?: ImageRef[];
}

export function readMetadata(raw: unknown): TaskMetadata {
  const value = (raw ?? {}) as Partial<TaskMetadata>;
  return {
    cfgType: typeof value.cfgType === 'string' ? value.cfgType : 'app',
    envs: Array.isArray(value.envs) ? value.envs : [],
    ...(value.appId ? { appId: value.appId } : {}),
    ...(value.paid ? { paid: true } : {}),
    ...(value.clone ? { clone: value.clone } : {}),
    ...(value.uninstall ? { uninstall: value.uninstall } : {}),
    ...(Array.isArray(value.images) ? { images: value.images } : {}),
  };
}

export function isOperationType(type: string): type is OperationType {
  return (OPERATION_TYPES as readonly string[]).includes(type);
}

/**
 * The images a catalogue entry names, bounded: `images` as a list of names or `{name, size}`, or
 * the original's image analysis (`image_analysis.images`, a map of name → `{name, total_size}`).
 * Anything else is ignored (an entry without images sends `[]`, as before).
 */
export function imagesOfEntry(entry: unknown): ImageRef[] {
  if (typeof entry !== 'object' || entry === null) return [];
  const record = entry as Record<string, unknown>;
  const analysis = record.image_analysis as Record<string, unknown> | null | undefined;
  const listed: unknown[] = Array.isArray(record.images)
    ? record.images
    : typeof analysis?.images === 'object' && analysis.images !== null
      ? // A map has no order of its own (PostgreSQL's jsonb keeps none): by name, the same everywhere.
        Object.values(analysis.images).sort((a, b) => String(a?.name).localeCompare(String(b?.name)))
      : [];
  const images = new Map<string, ImageRef>();
  for (const item of listed) {
    const image = imageOf(item);
    if (image && !images.has(image.name)) images.set(image.name, image);
    if (images.size === MAX_IMAGES) break;
  }
  return [...images.values()];
}

function imageOf(item: unknown): ImageRef | null {
  const fields = typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : null;
  const name = typeof item === 'string' ? item : fields?.name;
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_IMAGE_NAME) return null;
  const size = fields?.size ?? fields?.total_size;
  return { name: name.trim(), size: typeof size === 'number' && Number.isSafeInteger(size) && size > 0 ? size : 0 };
}

/**
 * The clone's name: raw name + first 6 hex of a SHA-256 over the request (as the original), so
 * the same clone request names the same app and different titles or envs name different ones.
 */
export function cloneName(raw: {
  sourceId: string;
  appName: string;
  title: string;
  envs: EnvVar[];
  entrances: { name: string; title: string }[];
}): { name: string; requestHash: string } {
  const canonical = JSON.stringify({
    source: raw.sourceId,
    app_name: raw.appName,
    title: raw.title,
    envs: [...raw.envs].sort((a, b) => a.name.localeCompare(b.name)),
    entrances: [...raw.entrances].sort((a, b) => a.name.localeCompare(b.name)),
  });
  const requestHash = createHash('sha256').update(canonical).digest('hex');
  return { name: `${raw.appName}${requestHash.slice(0, 6)}`, requestHash };
}
