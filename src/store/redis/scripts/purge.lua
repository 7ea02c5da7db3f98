-- Removes what has expired relative to `now` from the listed sessions: whole
-- sessions past their absolute expiry, and unused tokens past their own.
-- KEYS: sessions. ARGV: now. Returns the token records removed, then for each
-- session deleted its position in KEYS and its user (to drop it from the user's set).
local now = tonumber(ARGV[1])
local removed = 0
local gone = {}
for n, k in ipairs(KEYS) do
  local exp = redis.call('HGET', k, 'exp')
  if exp then
    local all = redis.call('HGETALL', k)
    -- state::session_purgeable: past its absolute expiry.
    if now >= tonumber(exp) then
      for i = 1, #all, 2 do
        if string.sub(all[i], 1, 2) == 't:' then removed = removed + 1 end
      end
      gone[#gone + 1] = tostring(n)
      gone[#gone + 1] = redis.call('HGET', k, 'user') or ''
      redis.call('DEL', k)
    else
      local live = redis.call('HGET', k, 'live')
      local changed = false
      for i = 1, #all, 2 do
        local f, val = all[i], all[i + 1]
        -- state::token_purgeable: unused (no ':used_at') and past its expiry.
        if string.sub(f, 1, 2) == 't:' and not string.find(val, ':', 1, true)
            and now >= tonumber(val) then
          redis.call('HDEL', k, f)
          if string.sub(f, 3) == live then redis.call('HDEL', k, 'lexp') end
          removed = removed + 1
          changed = true
        end
      end
      if changed then redis.call('HINCRBY', k, 'v', 1) end
    end
  end
end
table.insert(gone, 1, tostring(removed))
return gone
