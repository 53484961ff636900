import { ValidationError } from '../domain/errors.js';
import { MAX_ROW_ID } from '../services/pagination.js';

/**
 * Global ids are base64url("Type:id"). A malformed id is a client error with a clear message,
 * not an internal one.
 */
export function decodeGlobalId(globalId: string): { typename: string; id: string } {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  const typename = decoded.slice(0, separator);
  const id = decoded.slice(separator + 1);
  if (separator <= 0 || !id || !/^[A-Za-z]+$/.test(typename)) {
    throw new ValidationError(`"${globalId}" is not a valid id`, [{ path: 'id', message: 'malformed id' }]);
  }
  return { typename, id };
}

/** The numeric row id inside a global id; anything else (or past MAX_ROW_ID) is treated as not found. */
export function rowId(id: string | number): number | null {
  const value = Number(id);
  return Number.isInteger(value) && value > 0 && value <= MAX_ROW_ID ? value : null;
}
