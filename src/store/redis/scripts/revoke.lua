-- Revokes a session. For Decision::Revoke, only if the session and its user's
-- cutoff are still as the decision read them; for a logout, whatever they are.
-- The revocation is appended to the revocation log (a stream) in the same step.
-- KEYS: session, revocation log [, the user's cutoff]. ARGV: version ('' =
-- any), now, cutoff as read ('' if none; only with a version).
-- Returns 1 revoked, 0 changed since the read, -1 unknown, -2 already revoked.
if not redis.call('HGET', KEYS[1], 'v') then return -1 end
if ARGV[1] ~= '' and not unchanged(KEYS[1], ARGV[1], KEYS[3], ARGV[3]) then return 0 end
if redis.call('HGET', KEYS[1], 'rev') == '1' then return -2 end
redis.call('HSET', KEYS[1], 'rev', '1', 'rat', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('XADD', KEYS[2], '*', 's', string.match(KEYS[1], ':s:([^:]+)$'),
  'e', redis.call('HGET', KEYS[1], 'exp') or ARGV[2])
return 1
