-- tower-jwt-auth schema, the current version whole (PostgreSQL). `{p}` is the table
-- prefix. An empty database gets this in one step, and every version it
-- contains is recorded. A database on an older version gets the numbered
-- migrations instead. A test upgrades version 1 to the latest and checks it
-- ends with exactly these tables, columns and indexes: change both together.
-- No token text is stored: ids, the user id value and times (seconds since
-- the epoch, the revoke-all cutoff in milliseconds).
CREATE TABLE IF NOT EXISTS "{p}sessions" (
    session_id UUID PRIMARY KEY,
    user_id VARCHAR(255) NOT NULL,
    created_at BIGINT NOT NULL,
    last_rotated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    live_jti UUID,
    live_parent UUID,
    label TEXT,
    -- when the session was created, to the millisecond (what a revoke-all
    -- cutoff is compared with), and its live token's expiry (what a
    -- re-delivery answers again, known even once that token's row was purged)
    created_at_ms BIGINT NOT NULL,
    live_expires_at BIGINT
);
-- revoke-all and session lists
CREATE INDEX IF NOT EXISTS "{p}sess_user_ix" ON "{p}sessions" (user_id);
-- purge of sessions past their absolute expiry
CREATE INDEX IF NOT EXISTS "{p}sess_exp_ix" ON "{p}sessions" (expires_at);
CREATE TABLE IF NOT EXISTS "{p}refresh_tokens" (
    jti UUID PRIMARY KEY,
    session_id UUID NOT NULL,
    parent_jti UUID,
    successor_jti UUID,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    CONSTRAINT "{p}tok_sess_fk" FOREIGN KEY (session_id) REFERENCES "{p}sessions" (session_id)
);
-- purge of a session's rows
CREATE INDEX IF NOT EXISTS "{p}tok_sess_ix" ON "{p}refresh_tokens" (session_id);
-- at most one live (unused) refresh token per session: a fork is an error, never silent
CREATE UNIQUE INDEX IF NOT EXISTS "{p}tok_live_uq" ON "{p}refresh_tokens" (session_id) WHERE used_at IS NULL;
-- purge of unused tokens past their own expiry
CREATE INDEX IF NOT EXISTS "{p}tok_exp_ix" ON "{p}refresh_tokens" (expires_at) WHERE used_at IS NULL;
CREATE TABLE IF NOT EXISTS "{p}user_cutoffs" (
    user_id VARCHAR(255) PRIMARY KEY,
    cutoff BIGINT NOT NULL
);
-- the revocation log the instances' revocation views follow
CREATE TABLE IF NOT EXISTS "{p}revocations" (
    seq BIGSERIAL PRIMARY KEY,
    session_id UUID,
    user_id VARCHAR(255),
    cutoff BIGINT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS "{p}rev_exp_ix" ON "{p}revocations" (expires_at);
