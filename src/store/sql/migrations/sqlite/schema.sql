-- tower-jwt-auth schema, the current version whole (SQLite). `{p}` is the table
-- prefix. An empty database gets this in one step, and every version it
-- contains is recorded. A database on an older version gets the numbered
-- migrations instead. A test upgrades version 1 to the latest and checks it
-- ends with exactly these tables, columns and indexes: change both together.
-- No token text is stored: ids (16-byte blobs), the user id value and times
-- (seconds since the epoch, the revoke-all cutoff in milliseconds).
CREATE TABLE IF NOT EXISTS "{p}sessions" (
    session_id BLOB PRIMARY KEY NOT NULL,
    user_id VARCHAR(255) NOT NULL,
    created_at INTEGER NOT NULL,
    last_rotated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    live_jti BLOB,
    live_parent BLOB,
    label TEXT,
    -- when the session was created, to the millisecond (what a revoke-all
    -- cutoff is compared with, the default only mirrors what the upgrade adds),
    -- and its live token's expiry (what a re-delivery answers again, known
    -- even once that token's row was purged)
    created_at_ms INTEGER NOT NULL DEFAULT 0,
    live_expires_at INTEGER
);
-- revoke-all and session lists
CREATE INDEX IF NOT EXISTS "{p}sess_user_ix" ON "{p}sessions" (user_id);
-- purge of sessions past their absolute expiry
CREATE INDEX IF NOT EXISTS "{p}sess_exp_ix" ON "{p}sessions" (expires_at);
CREATE TABLE IF NOT EXISTS "{p}refresh_tokens" (
    jti BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL,
    parent_jti BLOB,
    successor_jti BLOB,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    CONSTRAINT "{p}tok_sess_fk" FOREIGN KEY (session_id) REFERENCES "{p}sessions" (session_id)
);
-- purge of a session's rows
CREATE INDEX IF NOT EXISTS "{p}tok_sess_ix" ON "{p}refresh_tokens" (session_id);
-- at most one live (unused) refresh token per session: a fork is an error, never silent
CREATE UNIQUE INDEX IF NOT EXISTS "{p}tok_live_uq" ON "{p}refresh_tokens" (session_id) WHERE used_at IS NULL;
-- purge of unused tokens past their own expiry
CREATE INDEX IF NOT EXISTS "{p}tok_exp_ix" ON "{p}refresh_tokens" (expires_at) WHERE used_at IS NULL;
CREATE TABLE IF NOT EXISTS "{p}user_cutoffs" (
    user_id VARCHAR(255) PRIMARY KEY NOT NULL,
    cutoff INTEGER NOT NULL
);
-- the revocation log the instances' revocation views follow
CREATE TABLE IF NOT EXISTS "{p}revocations" (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BLOB,
    user_id VARCHAR(255),
    cutoff INTEGER,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "{p}rev_exp_ix" ON "{p}revocations" (expires_at);
