import type { DatabaseProvider } from './client.js';

/**
 * Migrations that builds of main once applied and that main has since renamed, merged or edited.
 * A database such a build migrated records them, and main's files alone would replay or refuse it
 * (no way forward for its operator); each past state here is recognised by the names and checksums
 * it recorded, and brought by its repair to exactly the schema main's migration `becomes` creates
 * (compared with a fresh database's by test/past-migrations.test.ts, from fixture copies of the
 * old files). Their records are then replaced by one of `becomes`, as if it had been applied.
 *
 * Only main's own history belongs here: a released migration is never edited again
 * (prisma/migrations/checksums.json), so this table should not grow.
 */
export interface PastState {
  /** The builds of main that left it. */
  builds: string;
  /** What it recorded in _prisma_migrations: name → checksum on each provider. */
  recorded: Record<string, Record<DatabaseProvider, string>>;
  /** The current migration it stands for once repaired. */
  becomes: string;
  /** SQL from that state's schema to the one `becomes` creates; '' where they are already equal. */
  repair: Record<DatabaseProvider, string>;
}

const OLD_WEBHOOK_CATCH_UP = {
  sqlite: '9328c9f400b06558dd76d12b05d00a4193d689f94438288e0450b1a2d5f50b86',
  postgresql: 'dd6f8e7707f9ff300f0dcaf3951b6a76cb3e83b3f84b2d48b1766b33f031252f',
};
const OLD_CLAIM_BY_KIND = {
  sqlite: 'fb5d05ec39e2032663330778a6f36f1960c599976492f6e58dfdb183f25a646b',
  postgresql: 'fb5d05ec39e2032663330778a6f36f1960c599976492f6e58dfdb183f25a646b',
};

/**
 * The old JobCursor had no afterId. Rebuilt rather than altered, so that its columns stand in the
 * order a fresh database has; its rows keep their positions with no afterId, which the catch-up
 * reads as "from this time on, inclusive", what the old cursor meant.
 */
const CURSOR_AFTER_ID: Record<DatabaseProvider, string> = {
  sqlite: `ALTER TABLE "JobCursor" RENAME TO "JobCursor_retired";
CREATE TABLE "JobCursor" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "position" DATETIME NOT NULL,
    "afterId" INTEGER,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "JobCursor" ("name", "position", "updatedAt") SELECT "name", "position", "updatedAt" FROM "JobCursor_retired";
DROP TABLE "JobCursor_retired";`,
  postgresql: `ALTER TABLE "JobCursor" RENAME TO "JobCursor_retired";
ALTER TABLE "JobCursor_retired" RENAME CONSTRAINT "JobCursor_pkey" TO "JobCursor_retired_pkey";
CREATE TABLE "JobCursor" (
    "name" TEXT NOT NULL,
    "position" TIMESTAMP(3) NOT NULL,
    "afterId" INTEGER,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "JobCursor_pkey" PRIMARY KEY ("name")
);
INSERT INTO "JobCursor" ("name", "position", "updatedAt") SELECT "name", "position", "updatedAt" FROM "JobCursor_retired";
DROP TABLE "JobCursor_retired";`,
};

/** What 0006_outbox_claim_by_kind did, the same on both providers. */
const CLAIM_BY_KIND = `DROP INDEX "OutboxMessage_status_nextAttemptAt_idx";
CREATE INDEX "OutboxMessage_status_kind_nextAttemptAt_idx" ON "OutboxMessage"("status", "kind", "nextAttemptAt");`;

/** Matched in this order: a state whose migrations another one also recorded comes first. */
export const PAST_STATES: PastState[] = [
  {
    builds: 'a31b008',
    recorded: { '0005_webhook_catch_up': OLD_WEBHOOK_CATCH_UP, '0006_outbox_claim_by_kind': OLD_CLAIM_BY_KIND },
    becomes: '0005_webhook_catch_up_outbox_claim',
    repair: CURSOR_AFTER_ID,
  },
  {
    builds: '04d55e6',
    recorded: { '0005_webhook_catch_up': OLD_WEBHOOK_CATCH_UP },
    becomes: '0005_webhook_catch_up_outbox_claim',
    repair: {
      sqlite: `${CLAIM_BY_KIND}\n${CURSOR_AFTER_ID.sqlite}`,
      postgresql: `${CLAIM_BY_KIND}\n${CURSOR_AFTER_ID.postgresql}`,
    },
  },
  {
    // fab4492 added SQLite's forward-only trigger, and reworded a comment of PostgreSQL's (no change).
    builds: '1c92add',
    recorded: {
      '0008_catalogue_entry_revision': {
        sqlite: '6e8a5a033af4993c7a347bdd79bb0106a0288ce6e4007eb3e446fbd2aca78ba3',
        postgresql: '70b7bcaf68aafa4465c5674a3f477f7a1da027df1d932f80669834d8feb4ecbe',
      },
    },
    becomes: '0008_catalogue_entry_revision',
    repair: {
      sqlite: `CREATE TRIGGER "CatalogApp_entryRevision_forward" BEFORE UPDATE OF "entryRevision" ON "CatalogApp"
FOR EACH ROW WHEN NEW."entryRevision" < OLD."entryRevision"
BEGIN
  SELECT RAISE(ABORT, 'CatalogApp.entryRevision only moves forward');
END;`,
      postgresql: '',
    },
  },
];

/** The past states an applied history holds, each with the migrations it recorded. */
export function pastStatesOf(provider: DatabaseProvider, applied: Map<string, string>): PastState[] {
  const left = new Map(applied);
  const found: PastState[] = [];
  for (const state of PAST_STATES) {
    const names = Object.keys(state.recorded);
    if (!names.every((name) => left.get(name) === state.recorded[name]?.[provider])) continue;
    // Its successor applied as well is no history of main's: refused with the foreign ones.
    if (!names.includes(state.becomes) && left.has(state.becomes)) continue;
    for (const name of names) left.delete(name);
    found.push(state);
  }
  return found;
}

/** Every name the past states recorded: a database holding one in no known state is refused. */
export const RETIRED_NAMES = new Set(PAST_STATES.flatMap((state) => Object.keys(state.recorded)));
