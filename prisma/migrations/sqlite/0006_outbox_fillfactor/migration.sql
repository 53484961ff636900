-- Nothing to do on SQLite: PostgreSQL's 0006 sets the outbox table's fillfactor, which SQLite does
-- not have (it updates rows in place). Kept so that both providers number their migrations alike.
SELECT 1;
