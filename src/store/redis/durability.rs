//! The store's writes, and how durable they are made before they are answered.
//!
//! Redis replicates asynchronously: a write the primary acknowledged can be
//! lost if the primary dies before its replica has it and the replica is
//! promoted. With [`RedisStoreBuilder::replica_acks`] each write (a session
//! created, a rotation, a revocation, a log entry) is followed, in the same
//! pipeline and so on the same node, by `WAIT n timeout`: it is answered only
//! once `n` replicas have it, and fails with a [`StoreError`] (503) otherwise.
//! The client then retries, which the rotation rules make safe (the same
//! successor within the reuse window). What it costs is measured in
//! `docs/redis.md`.
//!
//! [`RedisStoreBuilder::replica_acks`]: super::RedisStoreBuilder::replica_acks

use std::time::Duration;

use ::redis::{Cmd, ErrorKind, FromRedisValue, RedisError, ScriptInvocation, ServerErrorKind};

use super::connection::Connection;
use super::redis_err;
use super::store::RedisStore;
use crate::error::StoreError;

/// How many replicas must have a write before it is answered, and how long to
/// wait for them.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReplicaAcks {
    pub(super) replicas: u32,
    pub(super) timeout: Duration,
}

impl RedisStore {
    /// Runs a writing script, then waits for the replicas if asked to. A
    /// script missing from Redis's cache (`NOSCRIPT`) is loaded and run again.
    pub(super) async fn write_script<T: FromRedisValue>(
        &self,
        con: &mut Connection,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let Some(acks) = self.replica_acks else {
            return self.call(invocation.invoke_async(con)).await;
        };
        let mut pipe = ::redis::pipe();
        pipe.invoke_script(invocation);
        match self.acked(con, &pipe, acks).await {
            Err(e) if is_no_script(&e) => {
                self.call(invocation.load_async(con)).await?;
                self.acked(con, &pipe, acks).await.map_err(redis_err)
            }
            answer => answer.map_err(redis_err),
        }
    }

    /// Sends a writing command, then waits for the replicas if asked to.
    pub(super) async fn write<T: FromRedisValue>(
        &self,
        con: &mut Connection,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let Some(acks) = self.replica_acks else {
            return self.call(cmd.query_async(con)).await;
        };
        let mut pipe = ::redis::pipe();
        pipe.add_command(cmd.clone());
        self.acked(con, &pipe, acks).await.map_err(redis_err)
    }

    /// `pipe` (one write) and `WAIT`, in one round trip to the write's node:
    /// the write's answer once enough replicas have it.
    async fn acked<T: FromRedisValue>(
        &self,
        con: &mut Connection,
        pipe: &::redis::Pipeline,
        acks: ReplicaAcks,
    ) -> Result<T, RedisError> {
        let mut pipe = pipe.clone();
        let wait_ms = u64::try_from(acks.timeout.as_millis()).unwrap_or(u64::MAX);
        pipe.cmd("WAIT").arg(acks.replicas).arg(wait_ms.max(1));
        let limit = self.response_timeout + acks.timeout;
        let (answer, acked): (T, u32) =
            match tokio::time::timeout(limit, pipe.query_async(con)).await {
                Ok(reply) => reply?,
                Err(_) => return Err(timed_out()),
            };
        if acked < acks.replicas {
            return Err(RedisError::from((
                ErrorKind::Io,
                "the write was not acknowledged by enough replicas in time",
            )));
        }
        Ok(answer)
    }
}

/// Redis's `NOSCRIPT`.
fn is_no_script(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// No answer within the response timeout plus the replicas' wait.
fn timed_out() -> RedisError {
    RedisError::from((
        ErrorKind::Io,
        "Redis did not answer within the response timeout",
    ))
}
