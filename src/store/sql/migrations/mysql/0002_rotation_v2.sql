-- tower-jwt-auth schema, version 2 (MySQL 8 / MariaDB 10.5+): rotation with
-- re-delivery, revoke-all to the millisecond, exact user ids. `{p}` is the
-- table prefix. MySQL's DDL commits statement by statement: a run interrupted
-- halfway runs again from the start, so every statement may run twice (a
-- column already added is skipped by the migration runner).
-- A session keeps when it was created to the millisecond (what a revoke-all
-- cutoff is compared with) and its live token's expiry (what a re-delivery
-- answers again, known even once that token's row was purged).
ALTER TABLE `{p}sessions` ADD COLUMN created_at_ms BIGINT NULL;
ALTER TABLE `{p}sessions` ADD COLUMN live_expires_at BIGINT NULL;
UPDATE `{p}sessions` SET created_at_ms = created_at * 1000 WHERE created_at_ms IS NULL;
UPDATE `{p}sessions` s JOIN `{p}refresh_tokens` t ON t.jti = s.live_jti
    SET s.live_expires_at = t.expires_at WHERE s.live_expires_at IS NULL;
-- User ids become bytes, compared exactly: every PAD SPACE collation
-- (utf8mb4_bin included) makes 'bob' equal 'bob '. The utf8mb4 bytes of any
-- VARCHAR(255) value fit in 1020.
ALTER TABLE `{p}sessions` MODIFY created_at_ms BIGINT NOT NULL,
    MODIFY user_id VARBINARY(1020) NOT NULL;
ALTER TABLE `{p}user_cutoffs` MODIFY user_id VARBINARY(1020) NOT NULL;
-- The revoke-all cutoff is in milliseconds from now on. Seconds since the epoch
-- stay below 10^11 until the year 5138, milliseconds are above it since 1973:
-- the guard converts each value once, however often this runs.
UPDATE `{p}user_cutoffs` SET cutoff = cutoff * 1000 WHERE cutoff < 100000000000;
