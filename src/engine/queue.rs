//! Where the engine claims tasks and keeps them alive: a small interface, so that a PostgreSQL
//! cluster (claims with `FOR UPDATE SKIP LOCKED`, leases that expire with a node) can replace
//! the single-node behaviour without touching jobs or handlers.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::db::{Database, DbError, InterruptedTask, Round, RoundDone};

pub trait TaskQueue: Send + Sync + 'static {
    /// Commits one round of this node: new tasks, the runs that ended here, and up to
    /// `round.claim` due tasks to run here, honouring the per-user limit, with their log
    /// entries.
    fn commit_round<'a>(
        &'a self,
        round: &'a Round<'a>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<RoundDone, DbError>>;

    /// Renews the lease of the tasks running here; answers those somebody asked to cancel.
    fn heartbeat<'a>(
        &'a self,
        running: &'a [Uuid],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Uuid>, DbError>>;

    /// Tasks marked running whose runner is gone. On a single node that is every running task
    /// at start-up; in a cluster it would be those whose lease expired.
    fn orphaned(&self) -> BoxFuture<'_, Result<Vec<InterruptedTask>, DbError>>;
}

/// The queue of a single node: the tasks table is the queue, and at start-up no other runner
/// can exist.
pub struct SingleNodeQueue {
    db: Database,
}

impl SingleNodeQueue {
    pub fn new(db: Database) -> Self {
        SingleNodeQueue { db }
    }
}

impl TaskQueue for SingleNodeQueue {
    fn commit_round<'a>(
        &'a self,
        round: &'a Round<'a>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<RoundDone, DbError>> {
        Box::pin(self.db.commit_round(round, now))
    }

    fn heartbeat<'a>(
        &'a self,
        running: &'a [Uuid],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<Uuid>, DbError>> {
        Box::pin(self.db.heartbeat_tasks(running, now))
    }

    fn orphaned(&self) -> BoxFuture<'_, Result<Vec<InterruptedTask>, DbError>> {
        Box::pin(self.db.running_tasks())
    }
}
