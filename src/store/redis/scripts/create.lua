-- Creates a session: its hash, its first token, its expiry, its user's set.
-- KEYS: session, user set. ARGV: session id, user, jti, created, token expiry
-- (already capped: state::capped_expiry), session expiry, EXPIREAT, has-label,
-- label. Returns 1 created, 0 the session id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'rev', '0', 'exp', ARGV[6], 'live', ARGV[3],
  'lexp', ARGV[5], 'cr', ARGV[4], 'rot', ARGV[4], 'v', '0', 't:' .. ARGV[3], ARGV[5])
if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'lbl', ARGV[9]) end
redis.call('EXPIREAT', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
local at = tonumber(ARGV[7])
local cur = expires_at(KEYS[2])
if not cur or cur < at then redis.call('EXPIREAT', KEYS[2], at) end
return 1
