-- Applies Decision::Rotate / Decision::RotateWithinGrace (decided in Rust by
-- rotation::decide) if the session's version is still the one the decision was
-- made on.
-- KEYS: session. ARGV: version, old live jti ('' if none), presented jti (the new
-- parent), successor jti, successor expiry, now, EXPIREAT.
-- Returns 1 applied, 0 version changed.
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  local t = redis.call('HGET', KEYS[1], 't:' .. ARGV[2])
  if t then
    local e = string.match(t, '^%d+')
    redis.call('HSET', KEYS[1], 't:' .. ARGV[2], e .. ':' .. ARGV[6])
  end
end
redis.call('HSET', KEYS[1], 't:' .. ARGV[4], ARGV[5], 'live', ARGV[4], 'par', ARGV[3],
  'lexp', ARGV[5], 'rot', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('EXPIREAT', KEYS[1], ARGV[7])
return 1
