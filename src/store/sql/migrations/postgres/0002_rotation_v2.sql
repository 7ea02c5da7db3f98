-- tower-jwt-auth schema, version 2 (PostgreSQL): rotation with re-delivery,
-- revoke-all to the millisecond. `{p}` is the table prefix.
-- A session keeps when it was created to the millisecond (what a revoke-all
-- cutoff is compared with) and its live token's expiry (what a re-delivery
-- answers again, known even once that token's row was purged).
ALTER TABLE "{p}sessions" ADD COLUMN IF NOT EXISTS created_at_ms BIGINT;
UPDATE "{p}sessions" SET created_at_ms = created_at * 1000 WHERE created_at_ms IS NULL;
ALTER TABLE "{p}sessions" ALTER COLUMN created_at_ms SET NOT NULL;
ALTER TABLE "{p}sessions" ADD COLUMN IF NOT EXISTS live_expires_at BIGINT;
UPDATE "{p}sessions" s SET live_expires_at = t.expires_at FROM "{p}refresh_tokens" t
    WHERE t.jti = s.live_jti AND s.live_expires_at IS NULL;
-- The revoke-all cutoff is in milliseconds from now on. Seconds since the epoch
-- stay below 10^11 until the year 5138, milliseconds are above it since 1973:
-- the guard converts each value once, however often this runs.
UPDATE "{p}user_cutoffs" SET cutoff = cutoff * 1000 WHERE cutoff < 100000000000;
