/**
 * The identity of one app of one user: (user, source, app name). Tasks and app-state rows meet
 * on it; `Task.activeKey` stores it while a task is active, which is what makes "one active task
 * per app" a unique index.
 */
export interface AppKey {
  userId: string;
  sourceId: string;
  appName: string;
}

/**
 * The longest source id: what adding a market source accepts (the original's `source_id` column,
 * market-domain.md §6.1), and so what any argument or filter naming a source may be. Nothing longer
 * can match, and a refusal naming the bound answers instead of a lookup whose NOT_FOUND would echo
 * 16,384 characters of it back.
 */
export const MAX_SOURCE_ID_LENGTH = 50;

/** What a source id may hold (the original's ids: `market.olares`, `upload`). */
export const SOURCE_ID_CHARACTERS = /^[A-Za-z0-9._-]*$/;
/** The refusal of any other, after the name of the field that held it. */
export const SOURCE_ID_RULE = 'may hold only letters, digits, ".", "_" and "-"';

/**
 * The longest app name (or catalogue app id) anywhere: what an operation takes, what a catalogue
 * entry and a source's index may name, what the app service's events carry. A lookup by a longer
 * name refuses with the bound rather than answering NOT_FOUND.
 */
export const MAX_APP_NAME_LENGTH = 128;

/** An app name: letters, digits, `.`, `_` and `-`, starting with a letter or digit, and no longer than the bound. */
export const APP_NAME = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_APP_NAME_LENGTH - 1}}$`);
/** The refusal of a name APP_NAME does not match, after the name of the field that held it. */
export const APP_NAME_RULE = 'must start with a letter or digit and may contain letters, digits, ".", "_" and "-"';

export function appKeyString({ userId, sourceId, appName }: AppKey): string {
  return `${userId}/${sourceId}/${appName}`;
}

/**
 * The name of the catalogue entry an installed app follows: its own, or for a clone its original's
 * chart (`rawAppName`). A clone shows that entry's app and latest version, and upgrades along it.
 */
export function catalogueNameOf(app: { appName: string; rawAppName?: string | null | undefined }): string {
  return app.rawAppName ?? app.appName;
}
