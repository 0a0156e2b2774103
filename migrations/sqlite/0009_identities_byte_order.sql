-- Employee ids sort in byte order: SQLite's default binary collation does
-- already (PostgreSQL's migration 0009 sets "C"). Kept so that both stores
-- carry the same migration numbers.
SELECT 1;
