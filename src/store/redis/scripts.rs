//! The Lua scripts, one file each under `scripts/`, hashed once per store: each
//! runs as one atomic step in Redis. Every file starts with its contract (`KEYS`,
//! `ARGV`, the reply); where a script applies a state rule it names the function
//! of [`state`](crate::store::state) it translates.

use ::redis::Script;

/// The `expires_at(key)` Lua function, prepended to the scripts that call it.
const EXPIRES_AT: &str = include_str!("scripts/expires_at.lua");

/// The `unchanged(session, v, cutoff_key, cut)` Lua function: the check that
/// a rotation's decision still holds, prepended to the scripts that apply one.
const UNCHANGED: &str = include_str!("scripts/unchanged.lua");

/// The scripts, hashed once per store.
pub(super) struct Scripts {
    /// Creates a session (`scripts/create.lua`).
    pub(super) create: Script,
    /// Applies a rotation at a version and cutoff (`scripts/rotate.lua`).
    pub(super) rotate: Script,
    /// Revokes a session, at a version and cutoff or at any
    /// (`scripts/revoke.lua`).
    pub(super) revoke: Script,
    /// Revokes every session of a user and raises their cutoff
    /// (`scripts/revoke_user.lua`).
    pub(super) revoke_user: Script,
    /// Removes what has expired from some sessions, a bounded amount of work
    /// per call (`scripts/purge.lua`).
    pub(super) purge: Script,
    /// Deletes a cutoff if it is unchanged (`scripts/purge_cutoff.lua`).
    pub(super) purge_cutoff: Script,
}

impl Scripts {
    /// Hashes every script.
    pub(super) fn new() -> Self {
        Scripts {
            create: with_prelude(EXPIRES_AT, include_str!("scripts/create.lua")),
            rotate: with_prelude(UNCHANGED, include_str!("scripts/rotate.lua")),
            revoke: with_prelude(UNCHANGED, include_str!("scripts/revoke.lua")),
            revoke_user: with_prelude(EXPIRES_AT, include_str!("scripts/revoke_user.lua")),
            purge: Script::new(include_str!("scripts/purge.lua")),
            purge_cutoff: Script::new(include_str!("scripts/purge_cutoff.lua")),
        }
    }

    /// Every script, to load them all.
    pub(super) fn all(&self) -> [&Script; 6] {
        [
            &self.create,
            &self.rotate,
            &self.revoke,
            &self.revoke_user,
            &self.purge,
            &self.purge_cutoff,
        ]
    }
}

/// A script whose body calls the Lua function that `prelude` defines.
fn with_prelude(prelude: &str, body: &str) -> Script {
    Script::new(&format!("{prelude}{body}"))
}
