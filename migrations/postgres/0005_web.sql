-- The web console: managers' passwords (argon2 PHC strings) and sign-in
-- sessions. A session is stored under the SHA-256 of its cookie value, so a
-- copy of the store does not hand out live sessions.
CREATE TABLE web_users (
    email         TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
-- The console's queue: sorted by date by default, searched by e-mail.
CREATE INDEX requests_created ON requests (created_at, id);
CREATE INDEX requests_email ON requests (email);
