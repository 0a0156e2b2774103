-- Reminder mails sent, one row per person and local day: the primary key
-- makes "at most one reminder a day" hold across daemon instances.
CREATE TABLE reminders (
    manager TEXT NOT NULL,
    day     TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (manager, day)
);
