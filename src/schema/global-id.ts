import { ValidationError } from '../domain/errors.js';
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

/**
 * Global ids are base64("Type:id"), standard base64 with its padding as Pothos writes them. A
 * malformed id, or one of a type that is not a `Node`, is a client error with a clear message,
 * not an internal one.
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
    throw new ValidationError(`"${globalId.slice(0, 200)}" is not a valid id`, [
      { path: 'id', message: 'malformed id' },
    ]);
  }
  return { typename, id };
}

/**
 * The numeric row id inside a global id, written as the server writes it (`App:1`, not `App:0x1`,
 * `App: 1` or `App:1.0`, which Number() also read as 1); anything else (or past MAX_ROW_ID) is
 * treated as not found.
 */
export function rowId(id: string | number): number | null {
  if (typeof id === 'string' && !/^[1-9]\d{0,15}$/.test(id)) return null;
  const value = Number(id);
  return Number.isInteger(value) && value > 0 && value <= MAX_ROW_ID ? value : null;
}
