-- Revokes every listed session of a user and raises the user's cutoff to `now`
-- (milliseconds): from then on a session created before it is revoked where it
-- is created or rotated, and its tokens are refused by the revocation check.
-- The cutoff key lives at least as long as the user's session set (which lives
-- as long as the user's longest session), so it outlives every token it covers.
-- The revoke-all is appended to the revocation log (a stream) in the same
-- step, relevant as long as the cutoff key lives.
-- KEYS: cutoff, user set, revocation log, sessions... ARGV: now (ms), now (s),
-- minimum EXPIREAT, the user id.
-- Returns how many sessions were not revoked before.
local now = tonumber(ARGV[1])
local at = tonumber(ARGV[3])
for i = 1, 2 do
  local e = expires_at(KEYS[i])
  if e and e > at then at = e end
end
-- state::next_cutoff: the cutoff only moves forward.
local old = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local raised = now > old
if raised then old = now end
redis.call('SET', KEYS[1], string.format('%d', old))
redis.call('EXPIREAT', KEYS[1], at)
-- Logged once per cutoff: the store calls this again for the sessions it
-- lists after the cutoff is in place.
if raised then
  redis.call('XADD', KEYS[3], '*', 'u', ARGV[4], 'c', string.format('%d', old), 'e', string.format('%d', at))
end
local n = 0
for i = 4, #KEYS do
  local rev = redis.call('HGET', KEYS[i], 'rev')
  if rev and rev ~= '1' then
    redis.call('HSET', KEYS[i], 'rev', '1', 'rat', ARGV[2])
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    n = n + 1
  end
end
return n
