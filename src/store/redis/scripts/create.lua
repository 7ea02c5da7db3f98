-- Creates a session: its hash, its first token, its expiry, its user's set. In
-- the same step it reads the user's revoke-all cutoff: a session created before
-- it is recorded revoked (state::predates_cutoff), so a login racing a
-- revoke-all never survives it.
-- KEYS: session, user set, the user's cutoff. ARGV: session id, user, jti,
-- created (s), token expiry (already capped: state::capped_expiry), session
-- expiry, EXPIREAT, has-label, label, created (ms).
-- Returns 1 created (or this very creation ran before: a retry after a lost
-- reply), 0 the session id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'user') == ARGV[2]
    and redis.call('HGET', KEYS[1], 'crm') == ARGV[10]
    and redis.call('HEXISTS', KEYS[1], 't:' .. ARGV[3]) == 1 then return 1 end
  return 0
end
local cut = tonumber(redis.call('GET', KEYS[3]) or '')
local rev = '0'
if cut and tonumber(ARGV[10]) < cut then rev = '1' end
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'rev', rev, 'exp', ARGV[6], 'live', ARGV[3],
  'lexp', ARGV[5], 'cr', ARGV[4], 'crm', ARGV[10], 'rot', ARGV[4], 'v', '0',
  't:' .. ARGV[3], ARGV[5])
if rev == '1' then redis.call('HSET', KEYS[1], 'rat', ARGV[4]) end
if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'lbl', ARGV[9]) end
redis.call('EXPIREAT', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
local at = tonumber(ARGV[7])
local cur = expires_at(KEYS[2])
if not cur or cur < at then redis.call('EXPIREAT', KEYS[2], at) end
return 1
