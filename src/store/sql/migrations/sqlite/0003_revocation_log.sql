-- tower-jwt-auth schema, version 3 (SQLite): the revocation log the
-- instances' revocation views follow. Every revocation is appended in the
-- transaction that makes it; entries go when what they revoke has expired.
-- AUTOINCREMENT: a sequence number is never used twice, even after the
-- newest entry was deleted. What was revoked before is logged once here.
CREATE TABLE IF NOT EXISTS "{p}revocations" (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BLOB,
    user_id VARCHAR(255),
    cutoff INTEGER,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "{p}rev_exp_ix" ON "{p}revocations" (expires_at);
INSERT INTO "{p}revocations" (session_id, expires_at)
    SELECT session_id, expires_at FROM "{p}sessions" WHERE revoked_at IS NOT NULL;
INSERT INTO "{p}revocations" (user_id, cutoff, expires_at)
    SELECT user_id, cutoff, cutoff / 1000 + 2592000 FROM "{p}user_cutoffs" WHERE cutoff > 0;
