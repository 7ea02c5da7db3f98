-- Applies Decision::Rotate (decided in Rust by rotation::decide) if the session
-- and its user's cutoff are still as the decision read them: marks the presented
-- (live) token used, writes the successor, and makes it the live token.
-- KEYS: session, the user's cutoff. ARGV: version, cutoff as read ('' if none),
-- presented jti, successor jti, successor expiry, now, EXPIREAT.
-- Returns 1 applied, 0 changed since the read.
if not unchanged(KEYS[1], ARGV[1], KEYS[2], ARGV[2]) then return 0 end
local t = redis.call('HGET', KEYS[1], 't:' .. ARGV[3])
if t then
  local e = string.match(t, '^%d+')
  redis.call('HSET', KEYS[1], 't:' .. ARGV[3], e .. ':' .. ARGV[6])
end
redis.call('HSET', KEYS[1], 't:' .. ARGV[4], ARGV[5], 'live', ARGV[4], 'par', ARGV[3],
  'lexp', ARGV[5], 'rot', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('EXPIREAT', KEYS[1], ARGV[7])
return 1
