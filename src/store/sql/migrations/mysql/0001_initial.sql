-- tower-jwt-auth schema, version 1 (MySQL 8 / MariaDB 10.5+). `{p}` is the table prefix.
-- No token text is stored: ids (BINARY(16)), the user id value (compared
-- byte-exact) and times (seconds since the epoch). Indexes are declared inside
-- CREATE TABLE so that the whole migration is idempotent on both servers.
CREATE TABLE IF NOT EXISTS `{p}sessions` (
    session_id BINARY(16) NOT NULL PRIMARY KEY,
    user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT NOT NULL,
    last_rotated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NULL,
    live_jti BINARY(16) NULL,
    live_parent BINARY(16) NULL,
    label TEXT CHARACTER SET utf8mb4 NULL,
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
    user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    cutoff BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
