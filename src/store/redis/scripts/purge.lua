-- Removes what has expired relative to `now` from one user's listed sessions:
-- whole sessions past their absolute expiry, and unused tokens past their own;
-- a listed session Redis already expired (or a purge deleted) leaves the
-- user's set. Every key is one user's (one cluster slot). The work of one call
-- is bounded: token fields are visited with HSCAN steps of at most 128, and the
-- call returns once it has visited about `budget` of them (a step counts one,
-- plus the fields it returned), with where it stopped; the next call resumes
-- there. A big session is so purged over several calls, and Redis serves other
-- clients in between.
-- KEYS: the user's session set, then sessions. ARGV: now, budget (fields to
-- visit, at least 1), HSCAN cursor into KEYS[2] ('0': from the start), then
-- the session ids of KEYS[2..] in order.
-- Returns {token records removed, how many sessions are done, HSCAN cursor
-- into the next one}.
local now = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local cursor = ARGV[3]
local removed, spent = 0, 0

-- Deletes `fields` of hash `k`, 256 per HDEL: how many were there (HSCAN may
-- return a field twice).
local function hdel(k, fields)
  local n = 0
  for i = 1, #fields, 256 do
    n = n + redis.call('HDEL', k, unpack(fields, i, math.min(i + 255, #fields)))
  end
  return n
end

for n = 2, #KEYS do
  local k = KEYS[n]
  local exp = redis.call('HGET', k, 'exp')
  if not exp then
    redis.call('SREM', KEYS[1], ARGV[n + 2])
  else
    -- state::session_purgeable: past its absolute expiry (every token goes).
    local whole = now >= tonumber(exp)
    local live = redis.call('HGET', k, 'live')
    repeat
      if spent >= budget then return {removed, n - 2, cursor} end
      local step = math.min(128, budget - spent)
      local r = redis.call('HSCAN', k, cursor, 'MATCH', 't:*', 'COUNT', step)
      cursor = r[1]
      local fields, doomed = r[2], {}
      -- What the step cost: the fields it returned (a small hash returns all
      -- of them at once, whatever COUNT says), and the step itself.
      spent = spent + 1 + #fields / 2
      for i = 1, #fields, 2 do
        local f, val = fields[i], fields[i + 1]
        -- state::token_purgeable: unused (no ':used_at') and past its expiry.
        if whole or (not string.find(val, ':', 1, true) and now >= tonumber(val)) then
          doomed[#doomed + 1] = f
          if string.sub(f, 3) == live then redis.call('HDEL', k, 'lexp') end
        end
      end
      local deleted = hdel(k, doomed)
      if deleted > 0 then
        removed = removed + deleted
        redis.call('HINCRBY', k, 'v', 1)
      end
    until cursor == '0'
    if whole then
      redis.call('DEL', k)
      redis.call('SREM', KEYS[1], ARGV[n + 2])
    end
  end
  cursor = '0'
end
return {removed, #KEYS - 1, '0'}
