-- chorus-sync store, PostgreSQL flavour. Keep in step with migrations/sqlite.
-- Created in the first schema of the connection's search_path.
-- Timestamps are RFC 3339 UTC text (second precision, 'Z'), so text order is time order.
-- Only types the sqlx Any driver maps: TEXT, INTEGER, BIGINT.

CREATE TABLE runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  TEXT   NOT NULL,
    finished_at TEXT   NOT NULL,
    sources     TEXT   NOT NULL,                -- JSON array of source names
    outcome     TEXT   NOT NULL CHECK (outcome IN ('done', 'held', 'rejected')),
    forced_by   TEXT,
    message     TEXT,
    report_dir  TEXT,
    attach      BIGINT NOT NULL DEFAULT 0,
    detach      BIGINT NOT NULL DEFAULT 0,
    moves       BIGINT NOT NULL DEFAULT 0,
    rights      BIGINT NOT NULL DEFAULT 0,
    raised      BIGINT NOT NULL DEFAULT 0,
    superseded  BIGINT NOT NULL DEFAULT 0,
    anomalies   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE source_runs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     BIGINT NOT NULL REFERENCES runs (id),
    source     TEXT   NOT NULL,
    origin     TEXT   NOT NULL,
    rows_read  BIGINT NOT NULL,
    valid_rows BIGINT NOT NULL,
    rejected   TEXT,                            -- why, when the source was rejected
    sha256     TEXT
);
-- last_accepted_source_run: latest run of one source.
CREATE INDEX source_runs_source_run ON source_runs (source, run_id);
CREATE INDEX source_runs_run ON source_runs (run_id);

CREATE TABLE requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          BIGINT  NOT NULL REFERENCES runs (id),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'refused', 'superseded', 'expired', 'applied')),
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
-- `approvals list --structure X --state S` and the run's open/refused look-ups
-- (structure IN .. AND state IN ..), already in id order.
CREATE INDEX requests_structure_state ON requests (structure, state, id);
-- `approvals list --state S` across structures, and `approvals export`.
CREATE INDEX requests_state ON requests (state, id);
-- `approvals list --manager M [--state S]`.
CREATE INDEX requests_manager_state ON requests (manager, state, id);
CREATE INDEX requests_run ON requests (run_id);

CREATE TABLE request_history (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES requests (id),
    at         TEXT   NOT NULL,
    actor      TEXT,                            -- who made the transition ("by")
    from_state TEXT,                            -- NULL for the creation entry
    to_state   TEXT   NOT NULL,
    comment    TEXT
);
CREATE INDEX request_history_request ON request_history (request_id, id);

-- The history is evidence of who decided what: append-only.
CREATE FUNCTION request_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'request_history is append-only';
END
$$;
CREATE TRIGGER request_history_no_update_delete BEFORE UPDATE OR DELETE ON request_history
    FOR EACH ROW EXECUTE FUNCTION request_history_append_only();
CREATE TRIGGER request_history_no_truncate BEFORE TRUNCATE ON request_history
    FOR EACH STATEMENT EXECUTE FUNCTION request_history_append_only();

-- The portal's attachments as last imported. service '' = structure level, so
-- the primary key works the same on both backends (NULLs are never equal).
CREATE TABLE current_attachments (
    structure   TEXT NOT NULL,
    email       TEXT NOT NULL,
    service     TEXT NOT NULL DEFAULT '',
    rights      TEXT NOT NULL DEFAULT '',
    last_name   TEXT,
    first_name  TEXT,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (structure, email, service)
);

CREATE TABLE absences (
    structure   TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    missed_runs INTEGER NOT NULL CHECK (missed_runs >= 0),
    PRIMARY KEY (structure, email)
);
