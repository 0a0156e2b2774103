-- Held requests (issue 6): the would-be requests of a run a guard held, kept
-- in state 'held' so managers can decide them one by one.
ALTER TABLE requests DROP CONSTRAINT requests_state_check;
ALTER TABLE requests ADD CONSTRAINT requests_state_check
    CHECK (state IN ('held', 'pending', 'approved', 'refused', 'superseded', 'expired', 'applied'));

-- Per-field fill counts of a source run (field name -> non-blank cells, JSON),
-- so a column that used to be filled and is now mostly empty rejects the source.
ALTER TABLE source_runs ADD COLUMN field_fill TEXT;
