/** The longest user id a client may be known by, and so what any filter naming a user may be. */
export const MAX_USER_ID_LENGTH = 128;

/**
 * The user ids a client may be known by: what the original system's users look like (letters,
 * digits, `_ . @ : -`), bounded, and never one the server writes records under itself.
 */
const USER_ID = new RegExp(`^[\\w.@:-]{1,${MAX_USER_ID_LENGTH}}$`);

/**
 * The user the server writes its own records under: the history records of catalogue changes
 * (src/services/catalogue-changes.ts), which only admins read.
 */
export const SYSTEM_USER = 'system';

/** The refusal of an id userIdProblem does not accept, after the name of the field that held it. */
export const USER_ID_RULE = `must be a user id: 1 to ${MAX_USER_ID_LENGTH} ASCII letters, digits, "_", ".", "@", ":" or "-", not "${SYSTEM_USER}"`;

/**
 * User ids the server owns: a client who became SYSTEM_USER would read its records as their own.
 * Compared exactly, as the stores compare user ids.
 */
export const RESERVED_USER_IDS: ReadonlySet<string> = new Set([SYSTEM_USER]);

/** Why `userId` cannot identify a client ('malformed' or 'reserved'), or null when it can. */
export function userIdProblem(userId: string): 'malformed' | 'reserved' | null {
  if (!USER_ID.test(userId)) return 'malformed';
  if (RESERVED_USER_IDS.has(userId)) return 'reserved';
  return null;
}
