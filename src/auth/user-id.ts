/**
 * The user ids a client may be known by: what the original system's users look like (letters,
 * digits, `_ . @ : -`), bounded, and never one the server writes records under itself.
 */
const USER_ID = /^[\w.@:-]{1,128}$/;

/**
 * User ids the server owns. `system` is the user of the history records of catalogue changes
 * (src/services/catalogue-changes.ts), which only admins read: a client who became `system` would
 * read them as their own. Compared exactly, as the stores compare user ids.
 */
export const RESERVED_USER_IDS: ReadonlySet<string> = new Set(['system']);

/** Why `userId` cannot identify a client ('malformed' or 'reserved'), or null when it can. */
export function userIdProblem(userId: string): 'malformed' | 'reserved' | null {
  if (!USER_ID.test(userId)) return 'malformed';
  if (RESERVED_USER_IDS.has(userId)) return 'reserved';
  return null;
}
