-- tower-jwt-auth schema, version 2 (MySQL 8 / MariaDB 10.5+). `{p}` is the table prefix.
-- A session's creation time to the millisecond, and the revoke-all cutoff in
-- milliseconds: a login racing a revoke-all in the same second is judged by
-- them (state::predates_cutoff).
ALTER TABLE `{p}sessions` ADD COLUMN created_at_ms BIGINT NOT NULL DEFAULT 0,
    ADD KEY `{p}sess_user_created_ix` (user_id, created_at_ms);
UPDATE `{p}sessions` SET created_at_ms = created_at * 1000;
UPDATE `{p}user_cutoffs` SET cutoff = cutoff * 1000;
