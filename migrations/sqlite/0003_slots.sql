-- Scheduled slots claimed by daemon instances: the primary key lets exactly
-- one instance of several on one store run a given slot of a source.
CREATE TABLE slots (
    source     TEXT NOT NULL,
    slot_at    TEXT NOT NULL,
    instance   TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (source, slot_at)
);
