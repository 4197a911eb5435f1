//! What a job is: the [`Job`] trait a task kind implements, its options, its error, and the
//! [`JobContext`] through which it reports progress and learns that it must stop.

use std::{
    future::Future,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{NotificationTypes, RunningTask, Shared};
use crate::{config::Config, db::Database};

/// A kind of background work. Adding a kind is one implementation of this trait and one
/// `register` line in [`crate::jobs::registry`].
///
/// `run` must watch `ctx` for cancellation at its await points ([`JobContext::cancelled`],
/// [`JobContext::guard`]); a job that ignores it is dropped after [`JobOptions::stop_grace`].
pub trait Job: Send + Sync + 'static {
    /// The stable name of the kind, stored with each task (`bulk_analysis`).
    const KIND: &'static str;
    /// The task's input; a task whose input does not parse is refused when it is created.
    type Input: DeserializeOwned + Send;
    /// Stored as the task's result when the job succeeds. A string field `summary` in it is
    /// the message of the owner's notification.
    type Output: Serialize + Send;
    /// The types of the notification the owner gets when a task of this kind completes or
    /// fails.
    const NOTIFICATION_TYPES: NotificationTypes = NotificationTypes::TASK;

    fn options(&self) -> JobOptions {
        JobOptions::default()
    }

    fn run(
        &self,
        ctx: JobContext,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, JobError>> + Send;
}

/// How the engine runs a kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOptions {
    /// A run that takes longer is stopped and fails with a timeout.
    pub timeout: Duration,
    /// 1 for kinds that are not retryable; more lets a failed run be tried again.
    pub max_attempts: u32,
    /// Wait before the second attempt; each further attempt doubles it, up to `max_backoff`,
    /// with jitter so that retries of many tasks spread out.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long a job asked to stop gets before the engine drops it.
    pub stop_grace: Duration,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            timeout: Duration::from_secs(60 * 60),
            max_attempts: 1,
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10 * 60),
            stop_grace: Duration::from_secs(10),
        }
    }
}

impl JobOptions {
    pub fn is_retryable(&self) -> bool {
        self.max_attempts > 1
    }

    /// The wait before the attempt after `attempt` (1-based): exponential, capped, and with
    /// "equal jitter" — half fixed, half random from `random` in `[0, 1)`.
    pub fn retry_delay(&self, attempt: u32, random: f64) -> Duration {
        let exponential = self
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        exponential / 2 + exponential.mul_f64(random.clamp(0.0, 1.0) / 2.0)
    }
}

/// Why a job failed. The message is what users see as the task's error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    message: String,
    permanent: bool,
}

impl JobError {
    /// A failure that another attempt may fix (for kinds that allow retries).
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure that no retry can fix (bad input): the task fails at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            permanent: true,
        }
    }

    /// What a job returns when it stopped because it was asked to.
    pub fn cancelled() -> Self {
        Self::permanent("cancelled")
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl From<crate::db::DbError> for JobError {
    fn from(error: crate::db::DbError) -> Self {
        JobError::new(format!("database error: {error}"))
    }
}

/// Why the engine asked a job to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopReason {
    /// A user cancelled the task.
    Cancelled,
    /// The kind's timeout passed.
    TimedOut,
    /// The server is shutting down.
    Shutdown,
}

/// The stop switch of one running task: the first reason given wins.
#[derive(Debug, Default)]
pub(super) struct StopSignal {
    token: CancellationToken,
    reason: OnceLock<StopReason>,
}

impl StopSignal {
    pub(super) fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub(super) fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }

    pub(super) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// The task a job runs, as the job sees it.
#[derive(Clone, Debug)]
pub struct TaskInfo {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub owner_id: Option<i64>,
    /// 1 on the first run, 2 on the first retry, …
    pub attempt: u32,
    pub max_attempts: u32,
}

/// Handed to a running job: progress reporting, cancellation, child work, the database and the
/// configuration. Cheap to clone into child futures.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    task: TaskInfo,
    engine: Arc<Shared>,
    running: Arc<RunningTask>,
    children: Mutex<Vec<AbortHandle>>,
}

impl JobContext {
    pub(super) fn new(task: TaskInfo, engine: Arc<Shared>, running: Arc<RunningTask>) -> Self {
        JobContext {
            inner: Arc::new(ContextInner {
                task,
                engine,
                running,
                children: Mutex::default(),
            }),
        }
    }

    pub fn task(&self) -> &TaskInfo {
        &self.inner.task
    }

    pub fn db(&self) -> &Database {
        &self.inner.engine.db
    }

    pub fn config(&self) -> &Config {
        &self.inner.engine.config
    }

    /// Sets how many items the task will process; progress is `processed / total`.
    pub fn set_total(&self, total: u64) {
        self.inner.running.tracker.set_total(total);
    }

    /// Counts `count` more items as processed, `current_item` being the one now in hand. Cheap
    /// enough for a tight loop: the engine writes and publishes the result at its own pace.
    pub fn advance(&self, count: u64, current_item: Option<&str>) {
        self.inner.running.tracker.advance(count, current_item);
    }

    /// Structured detail of the work (e.g. `{"batch": 3, "batches": 8}`); the latest value is
    /// stored and logged about once a second.
    pub fn set_detail(&self, detail: Value) {
        self.inner.running.tracker.set_detail(detail);
    }

    /// Enters a stage (`fetching`, `saving`…): stored, logged and published at once.
    pub async fn set_stage(&self, stage: &str, message: Option<&str>) {
        self.inner.running.tracker.set_stage(stage, message);
        let task = self.inner.task.id;
        let result = self
            .db()
            .log_stage(task, stage, message, chrono::Utc::now())
            .await;
        self.inner
            .engine
            .publish_running(&self.inner.running, result);
    }

    /// Records an error the job recovered from, such as one item of many failing.
    pub async fn record_error(&self, item: Option<&str>, message: &str) {
        let task = self.inner.task.id;
        let data = json!({ "item": item, "message": message });
        let result = self
            .db()
            .log_item_error(task, &data, chrono::Utc::now())
            .await;
        self.inner
            .engine
            .publish_running(&self.inner.running, result);
    }

    /// Whether the job has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.running.stop.token().is_cancelled()
    }

    /// Resolves when the job is asked to stop.
    pub async fn cancelled(&self) {
        self.inner.running.stop.token().cancelled().await;
    }

    /// A token cancelled with the task, for code that takes one.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.running.stop.token().clone()
    }

    /// Runs `work` unless the task is asked to stop first, in which case it is dropped and the
    /// result is [`JobError::cancelled`].
    pub async fn guard<T>(&self, work: impl Future<Output = T>) -> Result<T, JobError> {
        tokio::select! {
            biased;
            () = self.cancelled() => Err(JobError::cancelled()),
            output = work => Ok(output),
        }
    }

    /// Like [`JobContext::guard`], and fails with a timeout error naming `what` after `limit`
    /// (the per-item timeout).
    pub async fn guard_timeout<T>(
        &self,
        limit: std::time::Duration,
        what: &str,
        work: impl Future<Output = T>,
    ) -> Result<T, JobError> {
        match tokio::time::timeout(limit, self.guard(work)).await {
            Ok(result) => result,
            Err(_) => Err(JobError::new(format!(
                "{what} timed out after {} s",
                limit.as_secs_f64()
            ))),
        }
    }

    /// Spawns child work that belongs to the task: it is aborted when the task ends, however
    /// it ends, so nothing the task started outlives it.
    pub fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        let handle = tokio::spawn(work);
        let mut children = self.inner.children.lock().expect("children lock");
        children.retain(|child| !child.is_finished());
        children.push(handle.abort_handle());
        handle
    }

    /// Aborts the children still running; the runner calls it when the job returns.
    pub(super) fn abort_children(&self) {
        for child in self.inner.children.lock().expect("children lock").drain(..) {
            child.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_up_to_the_cap() {
        let options = JobOptions {
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
            ..JobOptions::default()
        };
        assert_eq!(options.retry_delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(options.retry_delay(1, 1.0), Duration::from_secs(2));
        assert_eq!(options.retry_delay(2, 0.0), Duration::from_secs(2));
        assert_eq!(options.retry_delay(3, 0.5), Duration::from_secs(6));
        assert_eq!(options.retry_delay(30, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn the_first_stop_reason_wins() {
        let signal = StopSignal::default();
        assert_eq!(signal.reason(), None);
        signal.stop(StopReason::TimedOut);
        signal.stop(StopReason::Cancelled);
        assert_eq!(signal.reason(), Some(StopReason::TimedOut));
        assert!(signal.token().is_cancelled());
    }
}
