-- The absolute expiry (whole seconds, rounded up) of a key, or nil if it has
-- none. Works on Redis before 7 (no EXPIRETIME). Prepended to the scripts that
-- use it.
local function expires_at(k)
  local p = redis.call('PTTL', k)
  if p < 0 then return nil end
  local t = redis.call('TIME')
  return math.ceil((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + p) / 1000)
end
