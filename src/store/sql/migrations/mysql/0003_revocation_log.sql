-- tower-jwt-auth schema, version 3 (MySQL 8 / MariaDB 10.5+): the revocation
-- log the instances' revocation views follow. Every revocation is appended in
-- the transaction that makes it; entries go when what they revoke has
-- expired (the newest always stays, so the sequence never goes back). What
-- was revoked before is logged here (run twice, an entry is logged twice,
-- which readers take as once).
CREATE TABLE IF NOT EXISTS `{p}revocations` (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    session_id BINARY(16) NULL,
    user_id VARBINARY(1020) NULL,
    cutoff BIGINT NULL,
    expires_at BIGINT NOT NULL,
    KEY `{p}rev_exp_ix` (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO `{p}revocations` (session_id, expires_at)
    SELECT session_id, expires_at FROM `{p}sessions` WHERE revoked_at IS NOT NULL;
INSERT INTO `{p}revocations` (user_id, cutoff, expires_at)
    SELECT user_id, cutoff, cutoff DIV 1000 + 2592000 FROM `{p}user_cutoffs` WHERE cutoff > 0;
