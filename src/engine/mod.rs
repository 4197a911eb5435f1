//! The task engine: a durable queue of background tasks, run by registered [`Job`]s with
//! coalesced progress, cancellation, timeouts, retries and recovery after a crash.
//!
//! - The tasks table is the queue. A dispatcher claims the next due task (priority, then
//!   FIFO) whenever a slot of the global limit is free, honouring the per-user limit.
//! - Each running task has a runner ([`runner`]) that supervises its job: it publishes progress
//!   about ten times a second, saves it about once a second, enforces the timeout, and turns the
//!   job's end into the final state (or a retry).
//! - Claims, heartbeats and event delivery go through [`TaskQueue`] and [`EventBus`], the seams
//!   where a PostgreSQL cluster plugs in.

mod events;
mod job;
mod notice;
mod progress;
mod queue;
mod registry;
mod runner;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

pub use events::{EventBus, LocalEventBus};
pub use job::{Job, JobContext, JobError, JobOptions, TaskInfo};
pub use notice::NotificationTypes;
pub use queue::{SingleNodeQueue, TaskQueue};
pub use registry::JobRegistry;

use crate::{
    api::tasks::{Task, TaskEvent, TaskProgress, TaskStatus, TaskUpdate},
    config::{Config, TaskSettings},
    db::{Database, DbError, Ending, NewTask, Round, Settlement},
    error::AppError,
};
use job::{StopReason, StopSignal};
use notice::{Concluded, task_notice};
use progress::ProgressTracker;

/// How often the dispatcher looks for due tasks without being woken (tasks enqueued by
/// another node, a retry whose wake-up was lost).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often running tasks renew their heartbeat.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// How long a shutdown waits for running jobs to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);
/// Longest accepted task name and input.
const NAME_MAX_CHARS: usize = 200;
const INPUT_MAX_BYTES: usize = 1024 * 1024;

/// A handle on the engine, cheap to clone.
#[derive(Clone)]
pub struct TaskEngine {
    shared: Arc<Shared>,
}

/// What the engine's parts share.
pub(crate) struct Shared {
    db: Database,
    config: Arc<Config>,
    settings: TaskSettings,
    registry: JobRegistry,
    queue: Box<dyn TaskQueue>,
    events: Box<dyn EventBus>,
    /// Wakes the dispatcher: a task was enqueued or a slot freed.
    wake: Notify,
    /// Set when the queue may hold a due task (one was enqueued, a retry came due, the poll
    /// interval passed); cleared before each claim. Spares the dispatcher a claim that would
    /// find nothing each time a slot frees while the queue is empty.
    may_have_work: AtomicBool,
    running: Mutex<HashMap<Uuid, Arc<RunningTask>>>,
    /// New tasks waiting for the dispatcher's next round; `None` while no dispatcher runs
    /// (before `start`, after shutdown), when `enqueue` writes on its own.
    inserts: Mutex<Option<Vec<PendingInsert>>>,
    /// Runners hand the endings of their runs to the dispatcher, which records them in batches.
    ended: mpsc::UnboundedSender<Ended>,
    /// The dispatcher's end of `ended`, until `start` hands it over.
    ended_receiver: Mutex<Option<mpsc::UnboundedReceiver<Ended>>>,
    /// The runners and the dispatcher: shutdown waits for them.
    runners: TaskTracker,
    shutdown: CancellationToken,
}

/// A task to create in the next round, and who waits for its first log entry.
struct PendingInsert {
    task: NewTask,
    reply: oneshot::Sender<Result<TaskEvent, DbError>>,
}

/// A run that ended, waiting to be recorded. Its task keeps its slot until then.
pub(crate) struct Ended {
    running: Arc<RunningTask>,
    settlement: Settlement,
}

/// A task running on this node, shared by its runner, its job's context and the engine.
pub(crate) struct RunningTask {
    id: Uuid,
    owner_id: Option<i64>,
    tracker: ProgressTracker,
    stop: StopSignal,
    /// The newest event-log sequence number, for progress-only updates.
    last_seq: AtomicI64,
}

/// A task to create.
#[derive(Clone, Debug)]
pub struct TaskRequest {
    pub kind: String,
    pub name: String,
    pub owner_id: Option<i64>,
    pub input: Value,
    /// Higher starts first; equal priorities start in creation order.
    pub priority: i32,
    pub retry_of: Option<Uuid>,
}

/// What a cancellation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancellation {
    /// The task had not started and is now cancelled.
    Cancelled,
    /// The task is running and has been asked to stop; it ends `cancelled` once its job has.
    Stopping,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown task kind {0:?}")]
    UnknownKind(String),
    #[error("{0}")]
    InvalidTask(String),
    #[error("the task is already {}", .0.as_str())]
    AlreadyFinished(TaskStatus),
    #[error("no such task")]
    NotFound,
    #[error("the task engine is stopping")]
    Stopped,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownKind(_) | EngineError::InvalidTask(_) => {
                AppError::BadRequest(error.to_string())
            }
            EngineError::AlreadyFinished(_) => AppError::Conflict(error.to_string()),
            EngineError::NotFound => AppError::NotFound,
            EngineError::Stopped => AppError::Unavailable(error.to_string()),
            EngineError::Db(error) => error.into(),
        }
    }
}

impl TaskEngine {
    /// An engine on one node: the database is the queue, events stay in this process.
    pub fn new(db: Database, registry: JobRegistry, config: Arc<Config>) -> Self {
        let queue = Box::new(SingleNodeQueue::new(db.clone()));
        Self::with_parts(
            db,
            registry,
            config,
            queue,
            Box::new(LocalEventBus::default()),
        )
    }

    pub fn with_parts(
        db: Database,
        registry: JobRegistry,
        config: Arc<Config>,
        queue: Box<dyn TaskQueue>,
        events: Box<dyn EventBus>,
    ) -> Self {
        let (ended, ended_receiver) = mpsc::unbounded_channel();
        TaskEngine {
            shared: Arc::new(Shared {
                db,
                settings: config.tasks.clone(),
                config,
                registry,
                queue,
                events,
                wake: Notify::new(),
                may_have_work: AtomicBool::new(true),
                running: Mutex::default(),
                inserts: Mutex::default(),
                ended,
                ended_receiver: Mutex::new(Some(ended_receiver)),
                runners: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Recovers the tasks a previous run left `running`, then starts dispatching, heartbeats
    /// and retention. Answers how many tasks were recovered.
    pub async fn start(&self) -> Result<usize, DbError> {
        let recovered = self
            .shared
            .recover_orphans("interrupted by server restart")
            .await?;
        let ended = self
            .shared
            .ended_receiver
            .lock()
            .expect("receiver lock")
            .take()
            .expect("the engine starts once");
        *self.shared.inserts.lock().expect("inserts lock") = Some(Vec::new());
        self.shared
            .runners
            .spawn(dispatch(self.shared.clone(), ended));
        tokio::spawn(heartbeat(self.shared.clone()));
        tokio::spawn(prune_periodically(self.shared.clone()));
        Ok(recovered)
    }

    /// Stops claiming, asks running jobs to stop and waits (boundedly) until they have: each
    /// ends re-queued if its kind is retryable, else failed as interrupted.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        shared.shutdown.cancel();
        for task in shared.running.lock().expect("running lock").values() {
            task.stop.stop(StopReason::Shutdown);
        }
        shared.runners.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, shared.runners.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "running tasks did not stop in time; they will be recovered at the next start"
            );
        }
    }

    pub fn registry(&self) -> &JobRegistry {
        &self.shared.registry
    }

    /// Live updates of every task, for the live layer to filter and forward.
    pub fn subscribe(&self) -> broadcast::Receiver<TaskUpdate> {
        self.shared.events.subscribe()
    }

    /// The progress of a task running on this node, as its job reports it now (the database
    /// has it as of the last periodic save, up to a second older).
    pub fn live_progress(&self, id: Uuid) -> Option<TaskProgress> {
        self.shared
            .running_task(id)
            .map(|running| running.tracker.snapshot())
    }

    /// How many tasks run on this node now.
    pub fn running_count(&self) -> usize {
        self.shared.running_count()
    }

    /// Validates and stores a new pending task, and wakes the dispatcher. Answers its id.
    pub async fn enqueue(&self, request: TaskRequest) -> Result<Uuid, EngineError> {
        let job = self
            .shared
            .registry
            .get(&request.kind)
            .ok_or_else(|| EngineError::UnknownKind(request.kind.clone()))?;
        check_request(&request)?;
        job.check_input(&request.input)
            .map_err(|reason| EngineError::InvalidTask(format!("invalid input: {reason}")))?;
        let id = Uuid::now_v7();
        let task = NewTask {
            id,
            kind: request.kind,
            name: request.name.trim().to_owned(),
            owner_id: request.owner_id,
            input: request.input,
            max_attempts: i32::try_from(job.options().max_attempts).unwrap_or(i32::MAX),
            priority: request.priority,
            retry_of: request.retry_of,
            created_at: Utc::now(),
        };
        self.shared.insert(task).await?;
        Ok(id)
    }

    /// Cancels a pending task at once; asks a running one to stop. Fails for a finished task.
    pub async fn cancel(&self, task: &Task) -> Result<Cancellation, EngineError> {
        let shared = &self.shared;
        // A task can move on between the steps (pending → running, or a retry back to pending),
        // so each step is a guarded update and the loop tries again after a miss.
        for _ in 0..3 {
            let now = Utc::now();
            if let Some(event) = shared.db.cancel_pending_task(task.id, now).await? {
                shared.publish(
                    task.id,
                    task.owner_id,
                    TaskStatus::Cancelled,
                    task.progress.clone(),
                    event,
                );
                return Ok(Cancellation::Cancelled);
            }
            // Recorded before the job is told, so that the job cannot finish first and make
            // the cancellation look refused.
            let requested = shared.db.request_task_cancel(task.id, now).await?;
            let local = shared.running_task(task.id);
            if let Some(running) = &local {
                running.stop.stop(StopReason::Cancelled);
            }
            if let Some(event) = requested {
                match &local {
                    Some(running) => shared.publish_running(running, Ok(Some(event))),
                    None => shared.events.publish(TaskUpdate {
                        task_id: task.id,
                        owner_id: task.owner_id,
                        status: TaskStatus::Running,
                        cancel_requested: true,
                        progress: task.progress.clone(),
                        seq: event.seq,
                        event: Some(event),
                    }),
                }
                return Ok(Cancellation::Stopping);
            }
            match shared.db.task(task.id).await?.map(|task| task.status) {
                None => return Err(EngineError::NotFound),
                Some(TaskStatus::Running) => return Ok(Cancellation::Stopping),
                Some(status) if status.is_finished() => {
                    return Err(EngineError::AlreadyFinished(status));
                }
                Some(_) => continue,
            }
        }
        Err(EngineError::InvalidTask(
            "the task changed state while cancelling; try again".into(),
        ))
    }

    /// Deletes the finished tasks that completed before `cutoff` (of one owner, or everybody's).
    pub async fn prune(
        &self,
        owner_id: Option<i64>,
        cutoff: chrono::DateTime<Utc>,
    ) -> Result<u64, DbError> {
        self.shared.db.delete_finished_tasks(owner_id, cutoff).await
    }
}

/// Refuses names and inputs that no UI could show sensibly.
fn check_request(request: &TaskRequest) -> Result<(), EngineError> {
    let name = request.name.trim();
    if name.is_empty()
        || name.chars().count() > NAME_MAX_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(EngineError::InvalidTask(format!(
            "a task name must be 1–{NAME_MAX_CHARS} characters without control characters"
        )));
    }
    let input_size = serde_json::to_vec(&request.input).map_or(usize::MAX, |bytes| bytes.len());
    if input_size > INPUT_MAX_BYTES {
        return Err(EngineError::InvalidTask(format!(
            "a task input must be at most {} KiB of JSON",
            INPUT_MAX_BYTES / 1024
        )));
    }
    Ok(())
}

impl Shared {
    /// A task may be due: wake the dispatcher to claim it.
    fn work_arrived(&self) {
        self.may_have_work.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Stores a new task: in the dispatcher's next round, together with whatever else it
    /// writes, or on its own when no dispatcher runs. Whoever writes it publishes it — the
    /// dispatcher before it starts the task, so that "pending" never follows "running".
    async fn insert(&self, task: NewTask) -> Result<TaskEvent, EngineError> {
        let (reply, answer) = oneshot::channel();
        let unqueued = match self.inserts.lock().expect("inserts lock").as_mut() {
            Some(queue) => {
                queue.push(PendingInsert { task, reply });
                None
            }
            None => Some(task),
        };
        if let Some(task) = unqueued {
            return Ok(self.insert_alone(&task).await?);
        }
        self.work_arrived();
        Ok(answer.await.map_err(|_| EngineError::Stopped)??)
    }

    /// The tasks enqueued since the last round.
    fn take_inserts(&self) -> Vec<PendingInsert> {
        self.inserts
            .lock()
            .expect("inserts lock")
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Stops queueing new tasks for rounds (they are written on their own from now on) and
    /// writes those that arrived last.
    async fn close_inserts(&self) {
        let last = self
            .inserts
            .lock()
            .expect("inserts lock")
            .take()
            .unwrap_or_default();
        for insert in last {
            let _ = insert.reply.send(self.insert_alone(&insert.task).await);
        }
    }

    /// Writes one new task outside a round, and publishes it.
    async fn insert_alone(&self, task: &NewTask) -> Result<TaskEvent, DbError> {
        let event = self.db.insert_task(task).await?;
        self.publish_inserted(task, &event);
        Ok(event)
    }

    fn publish_inserted(&self, task: &NewTask, event: &TaskEvent) {
        self.publish(
            task.id,
            task.owner_id,
            TaskStatus::Pending,
            TaskProgress::default(),
            event.clone(),
        );
    }

    /// Queues a run's ending for the dispatcher to record.
    fn hand_over(&self, ended: Ended) {
        if self.ended.send(ended).is_err() {
            tracing::error!("the dispatcher is gone; the task will be recovered at the next start");
        }
    }

    /// Publishes a recorded ending and frees the task's slot.
    fn conclude(self: &Arc<Self>, ended: Ended, event: Option<TaskEvent>) {
        let Ended {
            running,
            settlement,
        } = ended;
        self.running
            .lock()
            .expect("running lock")
            .remove(&running.id);
        let Some(event) = event else {
            tracing::warn!(task = %running.id, "the task was no longer running when it ended");
            return;
        };
        let mut progress = settlement.progress;
        if let Ending::Completed(_) = settlement.ending {
            progress.progress = 100.0;
        }
        if let Ending::Retry { run_after, .. } = settlement.ending {
            let delay = (run_after - Utc::now()).to_std().unwrap_or_default();
            runner::schedule_wake(self, delay);
        }
        let status = settlement.ending.status();
        self.publish(running.id, running.owner_id, status, progress, event);
    }

    fn running_task(&self, id: Uuid) -> Option<Arc<RunningTask>> {
        self.running.lock().expect("running lock").get(&id).cloned()
    }

    fn running_count(&self) -> usize {
        self.running.lock().expect("running lock").len()
    }

    /// Publishes a change of a task that does not run here (or no longer does).
    fn publish(
        &self,
        task_id: Uuid,
        owner_id: Option<i64>,
        status: TaskStatus,
        progress: TaskProgress,
        event: TaskEvent,
    ) {
        self.events.publish(TaskUpdate {
            task_id,
            owner_id,
            status,
            cancel_requested: false,
            progress,
            seq: event.seq,
            event: Some(event),
        });
    }

    /// Publishes the state of a task running here, with the event just logged, if any. A
    /// failed log write is reported and the live update still goes out.
    fn publish_running(&self, task: &RunningTask, logged: Result<Option<TaskEvent>, DbError>) {
        let event = match logged {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(task = %task.id, %error, "could not log a task event");
                None
            }
        };
        if let Some(event) = &event {
            task.last_seq.fetch_max(event.seq, Ordering::Relaxed);
        }
        // This update carries the progress as it is now: the runner's next tick need not send
        // it again.
        task.tracker.take_unpublished();
        self.events.publish(TaskUpdate {
            task_id: task.id,
            owner_id: task.owner_id,
            status: TaskStatus::Running,
            cancel_requested: task.stop.reason() == Some(StopReason::Cancelled),
            progress: task.tracker.snapshot(),
            seq: task.last_seq.load(Ordering::Relaxed),
            event,
        });
    }

    /// Ends the tasks left running by a runner that is gone: re-queued when their kind allows
    /// another attempt, else failed with `reason`.
    async fn recover_orphans(&self, reason: &str) -> Result<usize, DbError> {
        let orphans = self.queue.orphaned().await?;
        let now = Utc::now();
        let mut settlements = Vec::new();
        let mut owners = Vec::new();
        for orphan in &orphans {
            let Some(task) = self.db.task(orphan.id).await? else {
                continue;
            };
            let retryable = self
                .registry
                .get(&orphan.kind)
                .is_some_and(|job| job.options().is_retryable());
            let ending = if retryable && orphan.attempt < orphan.max_attempts {
                Ending::Retry {
                    error: reason.to_owned(),
                    run_after: now,
                }
            } else {
                Ending::Failed(reason.to_owned())
            };
            owners.push(task.owner_id);
            let types = self.registry.notification_types(&orphan.kind);
            let notice = task_notice(
                types,
                &Concluded {
                    id: orphan.id,
                    name: &task.name,
                    owner_id: task.owner_id,
                    ending: &ending,
                    progress: &task.progress,
                },
            );
            settlements.push(Settlement {
                id: orphan.id,
                ending,
                progress: task.progress,
                notice,
            });
        }
        let settled = self
            .queue
            .commit_round(
                &Round {
                    settlements: &settlements,
                    ..Round::default()
                },
                now,
            )
            .await?;
        for ((settlement, owner_id), event) in
            settlements.into_iter().zip(owners).zip(settled.settled)
        {
            if let Some(event) = event {
                let status = settlement.ending.status();
                self.publish(settlement.id, owner_id, status, settlement.progress, event);
            }
        }
        if !orphans.is_empty() {
            tracing::warn!(count = orphans.len(), reason, "recovered interrupted tasks");
        }
        Ok(orphans.len())
    }
}

/// Writes the engine's rounds: the tasks enqueued meanwhile, the runs that ended, and claims
/// of due tasks for the slots that are free — one transaction per round. After shutdown it
/// claims nothing and returns once every running task has been recorded.
async fn dispatch(shared: Arc<Shared>, mut ended: mpsc::UnboundedReceiver<Ended>) {
    let per_user_limit = shared.settings.max_per_user.map(i64::from);
    let mut batch: Vec<Ended> = Vec::new();
    loop {
        while let Ok(one) = ended.try_recv() {
            batch.push(one);
        }
        let inserts = shared.take_inserts();
        let stopping = shared.shutdown.is_cancelled();
        let still_running = shared.running_count().saturating_sub(batch.len());
        let free = (shared.settings.max_concurrent as usize).saturating_sub(still_running);
        let claim = if !stopping && free > 0 && shared.may_have_work.swap(false, Ordering::AcqRel) {
            // Claims of one statement cannot see each other against the per-user limit.
            if per_user_limit.is_some() { 1 } else { free }
        } else {
            0
        };
        if batch.is_empty() && inserts.is_empty() && claim == 0 {
            if stopping && still_running == 0 {
                shared.close_inserts().await;
                return;
            }
            tokio::select! {
                () = shared.shutdown.cancelled(), if !stopping => {}
                () = shared.wake.notified() => {}
                Some(one) = ended.recv() => batch.push(one),
                () = tokio::time::sleep(POLL_INTERVAL) => shared.may_have_work.store(true, Ordering::Release),
            }
            continue;
        }
        let new_tasks: Vec<NewTask> = inserts.iter().map(|insert| insert.task.clone()).collect();
        let settlements: Vec<Settlement> = batch.iter().map(|one| one.settlement.clone()).collect();
        let round = Round {
            inserts: &new_tasks,
            settlements: &settlements,
            claim,
            per_user_limit,
        };
        match shared.queue.commit_round(&round, Utc::now()).await {
            Ok(done) => {
                for (insert, event) in inserts.into_iter().zip(done.inserted) {
                    if let Some(event) = &event {
                        shared.publish_inserted(&insert.task, event);
                    }
                    let answer = event
                        .ok_or_else(|| DbError::Corrupt("an inserted task returned no row".into()));
                    let _ = insert.reply.send(answer);
                }
                let freed = !batch.is_empty();
                for (one, event) in batch.drain(..).zip(done.settled) {
                    shared.conclude(one, event);
                }
                // A full claim may have left more behind; with a per-user limit, a finished
                // task may have unblocked its owner's next one.
                if (claim > 0 && done.claimed.len() == claim) || (freed && per_user_limit.is_some())
                {
                    shared.may_have_work.store(true, Ordering::Release);
                }
                for (task, event) in done.claimed {
                    runner::start(&shared, task, event);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not write a round of the task engine; retrying shortly");
                // New tasks are written one by one, so that one bad task cannot hold back the
                // others; endings are tried again in the next round.
                for insert in inserts {
                    let _ = insert.reply.send(shared.insert_alone(&insert.task).await);
                }
                shared.may_have_work.store(true, Ordering::Release);
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

/// Renews the heartbeat of the tasks running here and passes on cancellations asked for
/// elsewhere.
async fn heartbeat(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let running: Vec<Uuid> = shared
            .running
            .lock()
            .expect("running lock")
            .keys()
            .copied()
            .collect();
        if running.is_empty() {
            continue;
        }
        match shared.queue.heartbeat(&running, Utc::now()).await {
            Ok(cancelled) => {
                for id in cancelled {
                    if let Some(task) = shared.running_task(id) {
                        task.stop.stop(StopReason::Cancelled);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not renew task heartbeats"),
        }
    }
}

/// Deletes finished tasks older than the retention period, on a schedule.
async fn prune_periodically(shared: Arc<Shared>) {
    let retention = chrono::Duration::hours(i64::from(shared.settings.retention_hours));
    let mut ticks = tokio::time::interval(Duration::from_secs(shared.settings.prune_interval_secs));
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match shared
            .db
            .delete_finished_tasks(None, Utc::now() - retention)
            .await
        {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "finished tasks past retention deleted"),
            Err(error) => tracing::warn!(%error, "could not prune finished tasks"),
        }
    }
}
