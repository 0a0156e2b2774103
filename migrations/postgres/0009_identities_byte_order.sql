-- Employee ids sort in byte order, whatever the database's collation: a run
-- reads the identities in id order and merges them with its own ids, sorted
-- the same way (src/store/identities.rs). Ids are codes, not words: the
-- locale's order (which may ignore punctuation or case) never suited them.
ALTER TABLE identities ALTER COLUMN employee_id TYPE TEXT COLLATE "C";
