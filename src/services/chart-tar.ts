import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { ValidationError } from '../domain/errors.js';
import { excerpt } from '../domain/text-length.js';

/**
 * The tar inside a chart package (chart-package.ts), unpacked as a stream: gunzipped once, by us,
 * in chunks counted against the unpacked cap as zlib produces them, each chunk parsed by node-tar
 * before the next is inflated. A refusal stops the inflating at once, and no chunk the event loop
 * handles is larger than zlib's (64 KiB), so a 64 MiB stream no longer ties the loop up in one
 * piece. Nothing reaches node-tar that it could decompress again (see `compressedAs`).
 */

export interface TarLimits {
  /** Largest tar stream once gunzipped (file contents plus headers). */
  maxUnpackedBytes: number;
  /** Most entries, tar metadata headers included. */
  maxEntries: number;
}

export interface KeptFiles {
  /** The one top-level folder, unless the archive holds no entry. */
  folder?: string;
  /** The manifests kept, by normalised path. */
  files: Map<string, Buffer>;
}

/** Longest entry name (or folder) quoted in a refusal: a tar path may be megabytes long. */
const MAX_QUOTED = 200;

/** `name`, cut to MAX_QUOTED UTF-16 units (whole characters) with `…`, for a message. */
export function quoted(name: string): string {
  return excerpt(name, MAX_QUOTED);
}

export function refuse(message: string): never {
  throw new ValidationError(message, [{ path: 'chart', message }]);
}

/** Entry types that are plain files (`OldFile`: a pre-POSIX header; `ContiguousFile`: a file). */
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/** The manifests to keep: `<folder>/Chart.yaml`, `<folder>/OlaresManifest.yaml`, translations. */
const WANTED = /^[^/]+\/(Chart\.yaml|OlaresManifest\.yaml|i18n\/[^/]+\/OlaresManifest\.yaml)$/;

/** Largest single manifest read (Chart.yaml, OlaresManifest.yaml, a translation): real ones are a few KiB. */
export const MAX_MANIFEST_BYTES = 256 * 1024;
/** Largest sum of the manifests read: the entry built from them is stored whole. */
const MAX_MANIFESTS_BYTES = 1024 * 1024;
/**
 * Largest tar metadata entry (a pax header, a GNU long name). node-tar's own 1 MiB let a 500 KB
 * path through; past this node-tar skips the header, and the entry after it would be read under
 * its short name, so such a header is refused instead.
 */
const MAX_META_BYTES = 64 * 1024;
/** zlib's output chunk: one piece of parsing between two turns of the event loop. */
const CHUNK_BYTES = 64 * 1024;

/**
 * What a compressed stream starts with. Inside our gzip a tar starts with a file name; one of
 * these means the package was compressed twice, and node-tar would inflate a gzip or zstd layer
 * itself, bounded only by its 1000:1 ratio (a 1.4 MB package stalled the server 16 s and was stored).
 */
const MAGIC: [string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];

/** The compression `head` starts with, if any. */
function compressedAs(head: Buffer): string | undefined {
  return MAGIC.find(([, magic]) => magic.every((byte, index) => head[index] === byte))?.[0];
}

/** Gunzips `bytes` and walks its tar entries, keeping the manifests and refusing the first bad entry. */
export function readTar(bytes: Uint8Array, limits: TarLimits): Promise<KeptFiles> {
  return new Promise((resolve, reject) => {
    const kept: KeptFiles = { files: new Map() };
    const seen = new Set<string>();
    let entries = 0;
    let manifestBytes = 0;
    let unpacked = 0;
    let head: Buffer | undefined = Buffer.alloc(0);
    let failed = false;
    let atEnd = false;
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    // Compressed input was already inflated: no sniffing for brotli or zstd, warnings are errors.
    // (node-tar always sniffs gzip; what it is fed never starts with gzip's magic, see `feed`.)
    const parser = new Parser({ strict: true, brotli: false, zstd: false, maxMetaEntrySize: MAX_META_BYTES });
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      gunzip.destroy();
      reject(
        error instanceof ValidationError
          ? error
          : new ValidationError(`not a valid tar archive (${quoted((error as Error).message)})`, [
              { path: 'chart', message: 'not a valid tar archive' },
            ]),
      );
      parser.abort(error instanceof Error ? error : new Error(String(error)));
    };
    const count = () => {
      entries += 1;
      if (entries > limits.maxEntries) refuse(`the archive has more than ${limits.maxEntries} entries`);
    };
    // Before the first write to node-tar: at least a header's worth, checked for a second compression.
    const feed = (chunk: Buffer | undefined) => {
      if (head !== undefined) {
        head = chunk === undefined ? head : Buffer.concat([head, chunk]);
        if (chunk !== undefined && head.length < 512) return;
        const inner = compressedAs(head);
        if (inner !== undefined) {
          refuse(`the archive is compressed twice: the tar inside the gzip is itself ${inner}-compressed`);
        }
        chunk = head;
        head = undefined;
      }
      if (chunk !== undefined) parser.write(chunk);
    };
    gunzip.on('data', (chunk: Buffer) => {
      if (failed || atEnd) return;
      try {
        unpacked += chunk.length;
        // Checked as zlib produces it: a bomb costs at most the cap, and stops at the first refusal.
        if (unpacked > limits.maxUnpackedBytes)
          refuse(`the archive is larger than ${limits.maxUnpackedBytes} bytes unpacked`);
        feed(chunk);
        // Past the end-of-archive marker node-tar reads nothing more, but would keep what it is
        // given (copying it again per chunk): stop inflating there, as tar and Helm stop reading.
        if (atEnd) {
          gunzip.destroy();
          parser.end();
        }
      } catch (error) {
        fail(error);
      }
    });
    gunzip.on('end', () => {
      if (failed || atEnd) return;
      try {
        feed(undefined);
        parser.end();
      } catch (error) {
        fail(error);
      }
    });
    gunzip.on('error', (error) =>
      fail(
        new ValidationError(`not a gzip-compressed tar archive (${error.message})`, [
          { path: 'chart', message: 'not a gzip-compressed tar archive' },
        ]),
      ),
    );
    // Metadata entries (pax headers, GNU long names) count as entries: 60,000 pax headers cost
    // 0.6 s and 100 MB, and the upload was accepted. An oversized one is refused, not skipped.
    parser.on('meta', () => {
      try {
        count();
      } catch (error) {
        fail(error);
      }
    });
    // Only metadata is ignored (no filter): an oversized header node-tar would skip.
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      try {
        refuse(`a tar metadata header (${entry.type}) is larger than ${MAX_META_BYTES} bytes`);
      } catch (error) {
        fail(error);
      }
    });
    parser.on('entry', (entry: ReadEntry) => {
      try {
        count();
        keep(entry, kept, seen, (bytes) => {
          manifestBytes += bytes;
          if (manifestBytes > MAX_MANIFESTS_BYTES) refuse(`the manifests are larger than ${MAX_MANIFESTS_BYTES} bytes`);
        });
      } catch (error) {
        entry.resume();
        fail(error);
      }
    });
    parser.on('eof', () => {
      atEnd = true;
    });
    parser.on('error', fail);
    parser.on('end', () => {
      if (!failed) resolve(kept);
    });
    gunzip.end(bytes);
  });
}

/** Checks one entry and, for a manifest, collects its content into `kept`. */
function keep(entry: ReadEntry, kept: KeptFiles, seen: Set<string>, addManifestBytes: (bytes: number) => void): void {
  const path = checkedPath(entry);
  const segments = path.split('/').filter((segment) => segment !== '' && segment !== '.');
  const top = segments[0];
  if (top === undefined) return void entry.resume(); // `./` itself
  if (segments.length === 1 && entry.type !== 'Directory') {
    refuse(`the chart must be inside one top-level folder: ${quoted(path)} is not`);
  }
  if (kept.folder !== undefined && top !== kept.folder) {
    refuse(`the archive holds more than one top-level folder: ${quoted(kept.folder)} and ${quoted(top)}`);
  }
  kept.folder = top;
  const normal = segments.join('/');
  if (seen.has(normal)) refuse(`the archive holds ${quoted(normal)} twice`);
  seen.add(normal);
  if (!WANTED.test(normal) || entry.type === 'Directory') return void entry.resume();
  const name = normal.slice(top.length + 1);
  if (entry.size > MAX_MANIFEST_BYTES) refuse(`${quoted(name)} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  addManifestBytes(entry.size);
  const chunks: Buffer[] = [];
  entry.on('data', (chunk: Buffer) => chunks.push(chunk));
  entry.on('end', () => kept.files.set(normal, Buffer.concat(chunks)));
}

/** The entry's path, refused when it is not a plain file or folder inside the archive. */
function checkedPath(entry: ReadEntry): string {
  const path = entry.path;
  const named = quoted(path);
  if (entry.type === 'SymbolicLink') refuse(`symbolic links are not allowed: ${named}`);
  if (entry.type === 'Link') refuse(`hard links are not allowed: ${named}`);
  if (!FILE_TYPES.has(entry.type) && entry.type !== 'Directory') {
    refuse(`only files and folders are allowed: ${named} is a ${entry.type}`);
  }
  if (path.includes('\\')) refuse(`entry ${named} has a backslash in its path`);
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) refuse(`entry ${named} is an absolute path`);
  if (path.split('/').includes('..')) refuse(`entry ${named} escapes the chart folder`);
  return path;
}
