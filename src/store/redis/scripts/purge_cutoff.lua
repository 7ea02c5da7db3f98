-- Deletes a user's revoke-all cutoff if it is still the value the purge found no
-- stored session under (state::cutoff_purgeable, decided in Rust): a cutoff
-- moved since by a revoke-all stays.
-- KEYS: the cutoff. ARGV: its value as read. Returns 1 deleted, 0 kept.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
