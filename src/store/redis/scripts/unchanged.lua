-- Whether a session is still as a rotation read it: at version `v`, and its
-- user's revoke-all cutoff still `cut` ('' when there was none). The cutoff is
-- another key, which no write to the session moves: a decision made on an older
-- cutoff must not be applied. Prepended to the scripts that use it.
local function unchanged(session, v, cutoff_key, cut)
  if redis.call('HGET', session, 'v') ~= v then return false end
  return (redis.call('GET', cutoff_key) or '') == cut
end
