//! The runner of one task: starts its job, supervises it (progress, timeout, cancellation) and
//! records how it ended.

use std::{
    sync::{Arc, atomic::AtomicI64},
    time::Duration,
};

use chrono::Utc;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    Ended, RunningTask, Shared,
    job::{JobContext, JobError, JobOptions, StopReason, StopSignal, TaskInfo},
    notice::{Concluded, task_notice},
    progress::ProgressTracker,
};
use crate::{
    api::tasks::TaskEvent,
    db::{ClaimedTask, Ending, Settlement},
};

/// Live progress updates per task are at most this frequent.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// Progress is saved every this many publish intervals (about once a second).
const TICKS_PER_SAVE: u32 = 10;

/// Registers a claimed task as running here and spawns its runner.
pub(super) fn start(shared: &Arc<Shared>, task: ClaimedTask, claimed: TaskEvent) {
    let running = Arc::new(RunningTask {
        id: task.id,
        owner_id: task.owner_id,
        tracker: ProgressTracker::default(),
        stop: StopSignal::default(),
        last_seq: AtomicI64::new(claimed.seq),
    });
    shared
        .running
        .lock()
        .expect("running lock")
        .insert(task.id, running.clone());
    // Claimed by a round that was under way when shutdown began: stop it like the others.
    if shared.shutdown.is_cancelled() {
        running.stop.stop(StopReason::Shutdown);
    }
    shared.publish_running(&running, Ok(Some(claimed)));
    shared.runners.spawn(run(shared.clone(), task, running));
}

/// How the job's run ended, before it is recorded.
enum Outcome {
    Completed(Value),
    Failed { error: String, retryable: bool },
    Cancelled,
}

async fn run(shared: Arc<Shared>, task: ClaimedTask, running: Arc<RunningTask>) {
    let outcome = match shared.registry.get(&task.kind) {
        None => Outcome::Failed {
            error: format!("no job of kind {:?} is installed on this server", task.kind),
            retryable: false,
        },
        Some(job) => {
            let options = job.options();
            let ctx = JobContext::new(task_info(&task), shared.clone(), running.clone());
            let work = job.run(ctx.clone(), task.input.0.clone());
            let result = supervise(&shared, &running, &options, work).await;
            ctx.abort_children();
            judge(result, running.stop.reason(), &options)
        }
    };
    hand_over(&shared, &task, running, outcome).await;
}

fn task_info(task: &ClaimedTask) -> TaskInfo {
    TaskInfo {
        id: task.id,
        kind: task.kind.clone(),
        name: task.name.clone(),
        owner_id: task.owner_id,
        attempt: u32::try_from(task.attempt).unwrap_or(1),
        max_attempts: u32::try_from(task.max_attempts).unwrap_or(1),
    }
}

/// Drives the job while publishing and saving its progress. Asks it to stop when its time is
/// up; gives up on it (answering `None`) when it has not stopped within its grace period.
async fn supervise(
    shared: &Shared,
    running: &RunningTask,
    options: &JobOptions,
    mut work: BoxFuture<'static, Result<Value, JobError>>,
) -> Option<Result<Value, JobError>> {
    let deadline = tokio::time::sleep(options.timeout);
    tokio::pin!(deadline);
    let mut ticks = tokio::time::interval_at(Instant::now() + PUBLISH_INTERVAL, PUBLISH_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ticks_since_save = 0;
    let mut give_up_at: Option<Instant> = None;
    // The periodic save runs alongside the job, never instead of it: a job may hold the only
    // database connection (SQLite) at an await point, and would never give it back if it
    // were not polled while the save waits for that connection.
    let mut saving: Option<BoxFuture<'_, ()>> = None;
    loop {
        tokio::select! {
            result = &mut work => {
                finish(saving).await;
                return Some(result);
            }
            () = &mut deadline, if running.stop.reason().is_none() => {
                running.stop.stop(StopReason::TimedOut);
            }
            () = running.stop.token().cancelled(), if give_up_at.is_none() => {
                give_up_at = Some(Instant::now() + options.stop_grace);
            }
            () = tokio::time::sleep_until(give_up_at.unwrap_or_else(Instant::now)), if give_up_at.is_some() => {
                tracing::warn!(task = %running.id, "the job did not stop within its grace period; dropped");
                drop(work);
                finish(saving).await;
                return None;
            }
            _ = ticks.tick() => {
                if running.tracker.take_unpublished() {
                    shared.publish_running(running, Ok(None));
                }
                ticks_since_save += 1;
                if ticks_since_save >= TICKS_PER_SAVE && saving.is_none() {
                    ticks_since_save = 0;
                    saving = Some(Box::pin(save_progress(shared, running)));
                }
            }
            () = async { saving.as_mut().expect("guarded by the condition").await }, if saving.is_some() => {
                saving = None;
            }
        }
    }
}

/// Lets a save under way complete: cut short, it could leave a transaction open.
async fn finish(saving: Option<BoxFuture<'_, ()>>) {
    if let Some(saving) = saving {
        saving.await;
    }
}

/// Writes the coalesced progress, and logs the latest detail if the job reported one.
async fn save_progress(shared: &Shared, running: &RunningTask) {
    let Some(changes) = running.tracker.take_unsaved() else {
        return;
    };
    let now = Utc::now();
    if let Err(error) = shared
        .db
        .save_progress(running.id, &changes.progress, now)
        .await
    {
        tracing::warn!(task = %running.id, %error, "could not save task progress");
    }
    log_detail(shared, running, changes.detail).await;
}

/// Logs and publishes the latest structured detail the job reported, if any.
async fn log_detail(shared: &Shared, running: &RunningTask, detail: Option<Value>) {
    if let Some(detail) = detail {
        let logged = shared.db.log_detail(running.id, &detail, Utc::now()).await;
        shared.publish_running(running, logged);
    }
}

/// Turns the job's result and the reason it was stopped (if it was) into an outcome. A job that
/// succeeded has succeeded, even if a stop came too late to matter.
fn judge(
    result: Option<Result<Value, JobError>>,
    stopped: Option<StopReason>,
    options: &JobOptions,
) -> Outcome {
    match (result, stopped) {
        (Some(Ok(value)), _) => Outcome::Completed(value),
        (_, Some(StopReason::Cancelled)) => Outcome::Cancelled,
        (_, Some(StopReason::Shutdown)) => Outcome::Failed {
            error: "interrupted by server shutdown".into(),
            retryable: true,
        },
        (_, Some(StopReason::TimedOut)) => Outcome::Failed {
            error: format!("timed out after {}", describe(options.timeout)),
            retryable: true,
        },
        (Some(Err(error)), None) => Outcome::Failed {
            retryable: !error.is_permanent(),
            error: error.to_string(),
        },
        (None, None) => Outcome::Failed {
            error: "the job stopped without a result".into(),
            retryable: false,
        },
    }
}

fn describe(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{seconds} s")
    }
}

/// Hands the run's ending to the dispatcher, which records it together with other endings and
/// the next claims: the final state, or a retry after a backoff when the kind allows another
/// attempt.
async fn hand_over(
    shared: &Arc<Shared>,
    task: &ClaimedTask,
    running: Arc<RunningTask>,
    outcome: Outcome,
) {
    // Progress is written with the ending; only a pending detail needs its own log entry.
    if let Some(changes) = running.tracker.take_unsaved() {
        log_detail(shared, &running, changes.detail).await;
    }
    let options = shared.registry.get(&task.kind).map(|job| job.options());
    let ending = match outcome {
        Outcome::Completed(result) => Ending::Completed(result),
        Outcome::Cancelled => Ending::Cancelled,
        Outcome::Failed { error, retryable } => match options {
            Some(options) if retryable && task.attempt < task.max_attempts => {
                let attempt = u32::try_from(task.attempt).unwrap_or(u32::MAX);
                let delay = options.retry_delay(attempt, rand::random());
                Ending::Retry {
                    error,
                    run_after: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                }
            }
            _ => Ending::Failed(error),
        },
    };
    let progress = running.tracker.snapshot();
    let notice = task_notice(
        shared.registry.notification_types(&task.kind),
        &Concluded {
            id: task.id,
            name: &task.name,
            owner_id: task.owner_id,
            ending: &ending,
            progress: &progress,
        },
    );
    shared.hand_over(Ended {
        running,
        settlement: Settlement {
            id: task.id,
            ending,
            progress,
            notice,
        },
    });
}

/// Wakes the dispatcher when a retry becomes due.
pub(super) fn schedule_wake(shared: &Arc<Shared>, delay: Duration) {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shared.shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => shared.work_arrived(),
        }
    });
}
