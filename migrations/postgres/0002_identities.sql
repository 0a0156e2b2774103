-- Employee id → the e-mail address a source last gave it, so that a changed
-- address is reported (email_changed) instead of a detach plus an attach.
CREATE TABLE identities (
    employee_id TEXT NOT NULL PRIMARY KEY,
    email       TEXT NOT NULL,
    seen_at     TEXT NOT NULL
);
