-- How many times the current attachments of each structure were replaced
-- (`import-current`). A run reads the current state beside its sources, in
-- a read snapshot, before its write transaction; inside that transaction it
-- compares the generations the snapshot saw with these, and reads the
-- current state again when a structure was replaced in between. No row is
-- generation 0.
CREATE TABLE current_generations (
    structure  TEXT    PRIMARY KEY,
    generation INTEGER NOT NULL
);
