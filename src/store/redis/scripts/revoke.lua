-- Revokes a session of a user. For Decision::Revoke, only if the session and its
-- user's cutoff are still as the decision read them; for a logout, whatever
-- they are. The store has appended the revocation to the log before this runs
-- (see log.rs).
-- KEYS: session [, the user's cutoff]. ARGV: version ('' = any), now, cutoff as
-- read ('' if none; only with a version), the user id.
-- Returns 1 revoked, 0 changed since the read, -1 unknown (or another user's),
-- -2 already revoked.
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[4] then return -1 end
if ARGV[1] ~= '' and not unchanged(KEYS[1], ARGV[1], KEYS[2], ARGV[3]) then return 0 end
if redis.call('HGET', KEYS[1], 'rev') == '1' then return -2 end
redis.call('HSET', KEYS[1], 'rev', '1', 'rat', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
