-- tower-jwt-auth schema, the current version whole (MySQL 8 / MariaDB
-- 10.5+). `{p}` is the table prefix. An empty database gets this in one step, and every version it
-- contains is recorded. A database on an older version gets the numbered
-- migrations instead. A test upgrades version 1 to the latest and checks it
-- ends with exactly these tables, columns and indexes: change both together.
-- No token text is stored: ids (BINARY(16)), the user id's bytes (compared
-- exactly: no PAD SPACE collation makes 'bob' equal 'bob ') and times (seconds
-- since the epoch, the revoke-all cutoff in milliseconds). Indexes are declared
-- inside CREATE TABLE.
CREATE TABLE IF NOT EXISTS `{p}sessions` (
    session_id BINARY(16) NOT NULL PRIMARY KEY,
    user_id VARBINARY(1020) NOT NULL,
    created_at BIGINT NOT NULL,
    last_rotated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NULL,
    live_jti BINARY(16) NULL,
    live_parent BINARY(16) NULL,
    label TEXT CHARACTER SET utf8mb4 NULL,
    -- when the session was created, to the millisecond (what a revoke-all
    -- cutoff is compared with), and its live token's expiry (what a
    -- re-delivery answers again, known even once that token's row was purged)
    created_at_ms BIGINT NOT NULL,
    live_expires_at BIGINT NULL,
    KEY `{p}sess_user_ix` (user_id),
    KEY `{p}sess_exp_ix` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- live_session is the session id while the token is unused, NULL once used: its
-- unique index holds at most one live refresh token per session (MySQL has no
-- partial indexes).
CREATE TABLE IF NOT EXISTS `{p}refresh_tokens` (
    jti BINARY(16) NOT NULL PRIMARY KEY,
    session_id BINARY(16) NOT NULL,
    parent_jti BINARY(16) NULL,
    successor_jti BINARY(16) NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NULL,
    live_session BINARY(16) AS (IF(used_at IS NULL, session_id, NULL)) STORED,
    KEY `{p}tok_sess_ix` (session_id),
    UNIQUE KEY `{p}tok_live_uq` (live_session),
    KEY `{p}tok_exp_ix` (used_at, expires_at),
    CONSTRAINT `{p}tok_sess_fk` FOREIGN KEY (session_id) REFERENCES `{p}sessions` (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS `{p}user_cutoffs` (
    user_id VARBINARY(1020) NOT NULL PRIMARY KEY,
    cutoff BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- the revocation log the instances' revocation views follow
CREATE TABLE IF NOT EXISTS `{p}revocations` (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    session_id BINARY(16) NULL,
    user_id VARBINARY(1020) NULL,
    cutoff BIGINT NULL,
    expires_at BIGINT NOT NULL,
    KEY `{p}rev_exp_ix` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
