-- The web console, continued: OpenID Connect sign-ins under way, and failed
-- password sign-ins, in the store so that every instance on one database
-- sees the same (a callback may reach another instance than the start; a
-- lockout must hold on all of them).
--
-- A flow is stored under the SHA-256 of the browser's `chorus_oidc` cookie,
-- taken (read and deleted) once by the callback, and useless after
-- `expires_at`.
CREATE TABLE web_oidc_flows (
    id_hash       TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX web_oidc_flows_expires ON web_oidc_flows (expires_at);

-- Failed password sign-ins in a row, per address as typed (trimmed,
-- lower-cased); a success deletes the row.
CREATE TABLE web_sign_in_failures (
    email   TEXT PRIMARY KEY,
    count   BIGINT NOT NULL,
    last_at TEXT NOT NULL
);
