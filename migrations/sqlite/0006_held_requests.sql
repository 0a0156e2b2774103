-- no-transaction
-- Held requests (issue 6): the would-be requests of a run a guard held, kept
-- in state 'held' so managers can decide them one by one. SQLite cannot alter
-- a CHECK constraint, so `requests` is rebuilt (sqlite.org/lang_altertable.html,
-- the 12 steps): foreign keys off, outside sqlx's transaction, because dropping
-- the old table would otherwise delete-check every request_history row.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE requests_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    state           TEXT    NOT NULL CHECK (state IN ('held', 'pending', 'approved', 'refused', 'superseded', 'expired', 'applied')),
    kind            TEXT    NOT NULL CHECK (kind IN ('attach', 'detach', 'move', 'rights')),
    structure       TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    -- A placement is (service, rights); *_present = 0 means no placement at all,
    -- a NULL service with *_present = 1 means the structure level.
    before_present  INTEGER NOT NULL CHECK (before_present IN (0, 1)),
    before_service  TEXT,
    before_rights   TEXT,                       -- canonical Rights text, '' = portal defaults
    after_present   INTEGER NOT NULL CHECK (after_present IN (0, 1)),
    after_service   TEXT,
    after_rights    TEXT,
    last_name       TEXT,
    first_name      TEXT,
    reason          TEXT    NOT NULL,
    reason_category TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    requester       TEXT    NOT NULL,
    structure_name  TEXT    NOT NULL,
    manager         TEXT    NOT NULL,
    origin          TEXT,
    created_at      TEXT    NOT NULL,
    decided_by      TEXT,
    decided_at      TEXT,
    motive          TEXT,
    comment         TEXT,
    CHECK ((before_present = 1 AND before_rights IS NOT NULL) OR (before_present = 0 AND before_service IS NULL AND before_rights IS NULL)),
    CHECK ((after_present = 1 AND after_rights IS NOT NULL) OR (after_present = 0 AND after_service IS NULL AND after_rights IS NULL))
);

INSERT INTO requests_new SELECT * FROM requests;
DROP TABLE requests;
ALTER TABLE requests_new RENAME TO requests;
-- `approvals list --structure X --state S` and the run's open/refused look-ups
-- (structure IN .. AND state IN ..), already in id order.
CREATE INDEX requests_structure_state ON requests (structure, state, id);
-- `approvals list --state S` across structures, and `approvals export`.
CREATE INDEX requests_state ON requests (state, id);
-- `approvals list --manager M [--state S]`.
CREATE INDEX requests_manager_state ON requests (manager, state, id);
CREATE INDEX requests_run ON requests (run_id);
-- The web console's queue (0005): by date, and searched by e-mail.
CREATE INDEX requests_created ON requests (created_at, id);
CREATE INDEX requests_email ON requests (email);

-- Per-field fill counts of a source run (field name -> non-blank cells, JSON),
-- so a column that used to be filled and is now mostly empty rejects the source.
ALTER TABLE source_runs ADD COLUMN field_fill TEXT;

COMMIT;
PRAGMA foreign_keys = ON;
