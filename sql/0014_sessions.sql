-- Console sessions: a browser signs in once with an API key and
-- gets an opaque cookie. Only the SHA-256 of the cookie token is stored.
-- A session carries nothing of its own but the key it was opened with: the
-- scope, printer allow-list, enabled flag and expiry are read from the key
-- row on every request, so revoking, disabling or expiring the key ends
-- its sessions at once.
CREATE TABLE sessions (
    token_digest BLOB PRIMARY KEY CHECK (length(token_digest) = 32),
    api_key_id   TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_key ON sessions(api_key_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
