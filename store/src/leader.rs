//! Leader election between pipewatch instances on one database, for work that exactly one of
//! them must do at a time (detection jobs, rule evaluation).
//!
//! A [`Leadership`] holds a PostgreSQL session-level advisory lock on a connection of its own,
//! taken out of the pool. PostgreSQL releases the lock when that session ends, so an instance
//! that dies (or loses its connection) hands leadership on without any lease bookkeeping: the
//! next [`Store::try_lead`] by another instance succeeds. The holder checks
//! [`Leadership::still_leading`] before each round, because a broken connection means the lock
//! may already belong to someone else.

use crate::error::DbContext;
use crate::{Store, StoreError};
use sqlx::{Connection, PgConnection};

/// Advisory-lock keys of the jobs that elect a leader. One namespace for all of them, so two
/// kinds of work never share a key by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderRole {
    /// Anomaly detection and drift jobs (`server::analysis`).
    Analysis,
    /// Alerting rule evaluation and the alert lifecycle.
    Alerting,
}

impl LeaderRole {
    /// The lock key: a fixed prefix ("pw" in ASCII) and a small number per role, so that
    /// other applications' advisory locks on a shared database are unlikely to collide.
    pub fn key(self) -> i64 {
        const PREFIX: i64 = 0x7077_0000_0000;
        PREFIX
            + match self {
                LeaderRole::Analysis => 1,
                LeaderRole::Alerting => 2,
            }
    }
}

/// The leadership of one role, held for as long as this value lives and its session is up.
pub struct Leadership {
    role: LeaderRole,
    conn: Option<PgConnection>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("role", &self.role)
            .field("held", &self.conn.is_some())
            .finish()
    }
}

impl Store {
    /// Takes the leadership of `role` if no other session holds it; `None` when another one
    /// does. Never waits.
    pub async fn try_lead(&self, role: LeaderRole) -> Result<Option<Leadership>, StoreError> {
        // Detached from the pool: the lock lives as long as the session, and a pooled
        // connection would be handed to other work (and keep the lock) when returned.
        let mut conn = self
            .pool()
            .acquire()
            .await
            .context("taking a connection for leader election")?
            .detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(role.key())
            .fetch_one(&mut conn)
            .await
            .context("trying the leader lock")?;
        if got {
            Ok(Some(Leadership {
                role,
                conn: Some(conn),
            }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

impl Leadership {
    pub fn role(&self) -> LeaderRole {
        self.role
    }

    /// Whether the lock's session is still up (a round trip on it). After `false` the
    /// leadership is gone for good: drop this value and call [`Store::try_lead`] again.
    pub async fn still_leading(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        if conn.ping().await.is_ok() {
            return true;
        }
        self.conn = None;
        false
    }

    /// Gives the leadership up now (instead of when the session ends).
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.role.key())
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::fresh_database_url;
    use crate::StoreConfig;

    #[tokio::test]
    async fn one_leader_per_role_and_a_dead_leader_hands_over() {
        let url = fresh_database_url().await;
        let a = Store::connect(&url, StoreConfig::default()).await.unwrap();
        let b = Store::connect(&url, StoreConfig::default()).await.unwrap();

        let mut lead_a = a
            .try_lead(LeaderRole::Analysis)
            .await
            .unwrap()
            .expect("first takes it");
        assert!(b.try_lead(LeaderRole::Analysis).await.unwrap().is_none());
        // Another role is independent.
        let lead_b_alerting = b.try_lead(LeaderRole::Alerting).await.unwrap();
        assert!(lead_b_alerting.is_some());
        assert!(lead_a.still_leading().await);

        // The leader's session dies (as when its instance is killed): PostgreSQL releases the
        // lock and the other instance takes over.
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(lead_a.conn.as_mut().unwrap())
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(b.pool())
            .await
            .unwrap();
        // pg_terminate_backend only signals the backend: wait until it is gone (bounded), or
        // the ping below may still be answered under load.
        for _ in 0..100 {
            let alive: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(b.pool())
                    .await
                    .unwrap();
            if alive == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(!lead_a.still_leading().await);
        let mut lead_b = b
            .try_lead(LeaderRole::Analysis)
            .await
            .unwrap()
            .expect("handed over");
        assert!(lead_b.still_leading().await);

        // Released explicitly, it is free at once.
        lead_b.release().await;
        assert!(a.try_lead(LeaderRole::Analysis).await.unwrap().is_some());
    }
}
