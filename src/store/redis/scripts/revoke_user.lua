-- Revokes every listed session of a user and raises the user's cutoff to `now`
-- (milliseconds): from then on a session created before it is revoked where it
-- is created or rotated, and its tokens are refused by the revocation check.
-- The cutoff key lives at least as long as the user's session set (which lives
-- as long as the user's longest session), so it outlives every token it covers.
-- The store has appended the revoke-all to the log before this runs (see
-- log.rs). Every key is the user's (one cluster slot).
-- KEYS: cutoff, user set, sessions... ARGV: now (ms), now (s), minimum EXPIREAT.
-- Returns how many sessions were not revoked before.
local now = tonumber(ARGV[1])
local at = tonumber(ARGV[3])
for i = 1, 2 do
  local e = expires_at(KEYS[i])
  if e and e > at then at = e end
end
-- state::next_cutoff: the cutoff only moves forward.
local old = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if now > old then old = now end
redis.call('SET', KEYS[1], string.format('%d', old))
redis.call('EXPIREAT', KEYS[1], at)
local n = 0
for i = 3, #KEYS do
  local rev = redis.call('HGET', KEYS[i], 'rev')
  if rev and rev ~= '1' then
    redis.call('HSET', KEYS[i], 'rev', '1', 'rat', ARGV[2])
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    n = n + 1
  end
end
return n
