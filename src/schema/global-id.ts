import { ValidationError } from '../domain/errors.js';
import { excerpt, longerThan } from '../domain/text-length.js';
import { MAX_ROW_ID } from '../services/pagination.js';

/**
 * The types a global id may name: those implementing `Node`, registered once the schema is built
 * (index.ts). Any other name (an unknown type, `Viewer`, `String`) made Pothos throw an internal
 * error, unmasked and logged at error level with its stack, which also told a client which names
 * are types.
 */
const nodeTypes = new Set<string>();

export function registerNodeTypes(names: Iterable<string>): void {
  for (const name of names) nodeTypes.add(name);
}

function malformedId(globalId: string): ValidationError {
  return new ValidationError(`"${excerpt(globalId, 200)}" is not a valid id`, [
    { path: 'id', message: 'malformed id' },
  ]);
}

/**
 * Global ids are base64("Type:id"), standard base64 with its padding as Pothos writes them. A
 * malformed id, or one of a type that is not a `Node`, is a client error with a clear message,
 * not an internal one. So is an id part its type never has: each `Node` type's `id.parse` is one
 * of the parsers below.
 */
export function decodeGlobalId(globalId: string): { typename: string; id: string } {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  const typename = decoded.slice(0, separator);
  const id = decoded.slice(separator + 1);
  // Only the spelling the server hands out: Buffer reads base64 leniently (padding left out or
  // doubled), and a second spelling of one object's id splits it in two in a client's cache.
  const canonical = Buffer.from(decoded, 'utf8').toString('base64') === globalId;
  if (!canonical || separator <= 0 || !id || !/^[A-Za-z]+$/.test(typename) || !nodeTypes.has(typename)) {
    throw malformedId(globalId);
  }
  return { typename, id };
}

/** The global id a parser refuses, quoted back as the client sent it (decodeGlobalId let only that spelling through). */
function refused(typename: string, id: string): ValidationError {
  return malformedId(Buffer.from(`${typename}:${id}`, 'utf8').toString('base64'));
}

/**
 * The `id.parse` of a type whose ids are row ids: written as the server writes them (`App:1`, not
 * `App:0x1`, `App: 1`, `App:01` or `App:1.0`, which Number() also read as 1), from 1 to MAX_ROW_ID.
 */
export function rowIdParser(typename: string): (id: string) => number {
  return (id) => {
    const value = /^[1-9]\d{0,9}$/.test(id) ? Number(id) : 0;
    if (value < 1 || value > MAX_ROW_ID) throw refused(typename, id);
    return value;
  };
}

/** The `id.parse` of a type whose ids are text: at most `max` characters, as its own argument takes. */
export function textIdParser(typename: string, max: number): (id: string) => string {
  return (id) => {
    if (longerThan(id, max)) throw refused(typename, id);
    return id;
  };
}
