-- Revokes a session. With a version (Decision::RevokeForReuse), only if the
-- session is still at that version.
-- KEYS: session. ARGV: version ('' = any), now.
-- Returns 1 revoked, 0 version changed, -1 unknown, -2 already revoked.
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if ARGV[1] ~= '' and v ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'rev') == '1' then return -2 end
redis.call('HSET', KEYS[1], 'rev', '1', 'rat', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
