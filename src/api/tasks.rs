//! Background tasks: the shared types, and the server functions behind the task pages.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppError;

/// Where a task is in its life. `Completed`, `Failed` and `Cancelled` are final: nothing leaves
/// them (a retry is a new task).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<TaskStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// A task as the API and the UI show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: Uuid,
    /// The job kind that runs it, e.g. `bulk_analysis`.
    pub kind: String,
    pub name: String,
    /// Username of the owner; `None` for system tasks.
    pub owner: Option<String>,
    #[serde(skip)]
    pub owner_id: Option<i64>,
    pub status: TaskStatus,
    #[serde(flatten)]
    pub progress: TaskProgress,
    pub input: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// The job's latest structured detail (e.g. batch 3 of 8).
    pub detail: Option<Value>,
    pub metadata: Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub priority: i32,
    /// A cancellation was asked for and the job has not stopped yet.
    pub cancel_requested: bool,
    /// The finished task this one retries.
    pub retry_of: Option<Uuid>,
    /// Place in the queue (1 = next to start); only for pending tasks.
    pub queue_position: Option<i64>,
    /// Sequence number of the newest entry in the task's event log.
    pub last_event_seq: i64,
    /// A pending task does not start before this time (a retry's backoff).
    pub run_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
}

/// The fast-changing part of a task: what a progress bar shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskProgress {
    /// 0–100, always clamped.
    pub progress: f64,
    pub total_items: Option<i64>,
    pub processed_items: i64,
    pub current_item: Option<String>,
    pub stage: Option<String>,
    pub message: Option<String>,
}

impl TaskProgress {
    /// The percentage of `processed` out of `total`, clamped to 0–100; 0 while the total is
    /// unknown.
    pub fn percent(processed: i64, total: Option<i64>) -> f64 {
        match total {
            Some(total) if total > 0 => (processed as f64 * 100.0 / total as f64).clamp(0.0, 100.0),
            Some(_) => 100.0,
            None => 0.0,
        }
    }
}

/// Counts of tasks by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl TaskSummary {
    pub fn add(&mut self, status: TaskStatus, count: i64) {
        self.total += count;
        *match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::Running => &mut self.running,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::Cancelled => &mut self.cancelled,
        } += count;
    }
}

/// What an entry of a task's event log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEventKind {
    /// The status changed; `data` has `status` and, when failed, `error`.
    Status,
    /// The job entered a stage; `data` has `stage` and `message`.
    Stage,
    /// The job reported structured detail (batch counters and the like).
    Detail,
    /// The job reported an error it recovered from (one item failed).
    Error,
    /// Somebody asked to cancel the running task.
    CancelRequested,
    /// An attempt failed and another is scheduled; `data` has `attempt`, `error`, `run_after`.
    Retry,
}

impl TaskEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskEventKind::Status => "status",
            TaskEventKind::Stage => "stage",
            TaskEventKind::Detail => "detail",
            TaskEventKind::Error => "error",
            TaskEventKind::CancelRequested => "cancel_requested",
            TaskEventKind::Retry => "retry",
        }
    }

    pub fn parse(text: &str) -> Option<TaskEventKind> {
        [
            TaskEventKind::Status,
            TaskEventKind::Stage,
            TaskEventKind::Detail,
            TaskEventKind::Error,
            TaskEventKind::CancelRequested,
            TaskEventKind::Retry,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One entry of a task's append-only event log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// 1, 2, 3… per task.
    pub seq: i64,
    pub kind: TaskEventKind,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// A live change of a task, as the engine publishes it: the task's current progress and status,
/// and the log entry that caused it (none for a coalesced progress tick).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskUpdate {
    pub task_id: Uuid,
    #[serde(skip)]
    pub owner_id: Option<i64>,
    pub status: TaskStatus,
    pub cancel_requested: bool,
    pub progress: TaskProgress,
    /// The newest event-log sequence number at the time of this update.
    pub seq: i64,
    pub event: Option<TaskEvent>,
}

/// Which tasks a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub kind: Option<String>,
    /// Only the tasks of the user with this username (administrators' listings).
    #[serde(default)]
    pub owner: Option<String>,
    /// Only the tasks whose name or kind contains this text, ignoring case.
    #[serde(default)]
    pub text: Option<String>,
    /// Show only the tasks whose id is older than this one (the previous page's last id).
    pub cursor: Option<Uuid>,
    /// Page size, 1–[`MAX_PAGE_SIZE`]; [`DEFAULT_PAGE_SIZE`] when unset.
    pub limit: Option<u32>,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// A page of tasks, newest first, and the summary of every task the caller may see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<Uuid>,
    pub summary: TaskSummary,
}

/// What the dashboard shows: counts by status, the tasks running or waiting (running first,
/// then the queue in order), and the latest finished tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskOverview {
    pub summary: TaskSummary,
    pub active: Vec<Task>,
    pub recent: Vec<Task>,
}

impl Task {
    /// Applies a live update to this task as the client knows it, following the rule of the
    /// live protocol: an update older than the newest logged event known is stale and ignored;
    /// its event is new only when its sequence number is. Answers the new event, if any.
    pub fn apply(&mut self, update: &TaskUpdate) -> Option<TaskEvent> {
        if update.task_id != self.id || update.seq < self.last_event_seq {
            return None;
        }
        self.status = update.status;
        self.cancel_requested = update.cancel_requested && !update.status.is_finished();
        self.progress = update.progress.clone();
        if self.status != TaskStatus::Pending {
            self.queue_position = None;
        }
        let event = update
            .event
            .as_ref()
            .filter(|event| event.seq > self.last_event_seq)?;
        self.last_event_seq = event.seq;
        self.note_event(event);
        Some(event.clone())
    }

    /// Keeps the fields that a logged event changes (error text, start and end times) in step.
    fn note_event(&mut self, event: &TaskEvent) {
        if event.kind != TaskEventKind::Status {
            return;
        }
        match self.status {
            TaskStatus::Running => {
                self.started_at.get_or_insert(event.created_at);
            }
            status if status.is_finished() => {
                self.completed_at.get_or_insert(event.created_at);
                if let Some(error) = event.data.get("error").and_then(Value::as_str) {
                    self.error = Some(error.to_owned());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
impl Task {
    /// A task with every optional field empty, for unit tests to adjust.
    pub(crate) fn sample(id: Uuid, status: TaskStatus) -> Task {
        Task {
            id,
            kind: "test".into(),
            name: "t".into(),
            owner: None,
            owner_id: None,
            status,
            progress: TaskProgress::default(),
            input: Value::Null,
            result: None,
            error: None,
            detail: None,
            metadata: Value::Null,
            attempt: 1,
            max_attempts: 1,
            priority: 0,
            cancel_requested: false,
            retry_of: None,
            queue_position: None,
            last_event_seq: 0,
            run_after: DateTime::UNIX_EPOCH,
            created_at: DateTime::UNIX_EPOCH,
            started_at: None,
            completed_at: None,
            heartbeat_at: None,
        }
    }
}

#[cfg(feature = "ssr")]
use crate::{auth::CurrentUser, server::AppState, services::tasks};

#[cfg(feature = "ssr")]
fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or(AppError::Internal)
}

/// One task with its queue position; 404 for an unknown task or somebody else's.
#[server(endpoint = "tasks/get")]
pub async fn get_task(id: Uuid) -> Result<Task, AppError> {
    tasks::get(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// A page of the caller's tasks (all tasks for admins).
#[server(endpoint = "tasks/list")]
pub async fn list_tasks(filter: TaskFilter) -> Result<TaskPage, AppError> {
    tasks::list(&state()?, &CurrentUser::from_leptos_context()?, &filter).await
}

/// Counts, running and waiting tasks, and the latest finished ones, for the dashboard.
#[server(endpoint = "tasks/overview")]
pub async fn get_task_overview() -> Result<TaskOverview, AppError> {
    tasks::overview(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// The job kinds this server runs, for the form that starts a task.
#[server(endpoint = "tasks/kinds")]
pub async fn get_job_kinds() -> Result<Vec<String>, AppError> {
    CurrentUser::from_leptos_context()?;
    Ok(tasks::kinds(&state()?))
}

/// Starts a task of `kind`; `input` is its JSON input as text (empty means `{}`).
#[server(endpoint = "tasks/start")]
pub async fn start_task(kind: String, name: String, input: String) -> Result<Task, AppError> {
    tasks::start(
        &state()?,
        &CurrentUser::from_leptos_context()?,
        &kind,
        &name,
        &input,
    )
    .await
}

/// The entries of a task's event log after sequence number `after` (all with 0).
#[server(endpoint = "tasks/events")]
pub async fn get_task_events(id: Uuid, after: i64) -> Result<Vec<TaskEvent>, AppError> {
    tasks::events(&state()?, &CurrentUser::from_leptos_context()?, id, after).await
}

/// Cancels a pending task at once, or asks a running one to stop.
#[server(endpoint = "tasks/cancel")]
pub async fn cancel_task(id: Uuid) -> Result<Task, AppError> {
    tasks::cancel(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Starts a new task with the kind, name and input of a finished one.
#[server(endpoint = "tasks/retry")]
pub async fn retry_task(id: Uuid) -> Result<Task, AppError> {
    tasks::retry(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Deletes finished tasks older than `max_age_hours` (the caller's own; every user's for
/// admins) and answers how many went.
#[server(endpoint = "tasks/cleanup")]
pub async fn cleanup_tasks(max_age_hours: u32) -> Result<u64, AppError> {
    tasks::cleanup(
        &state()?,
        &CurrentUser::from_leptos_context()?,
        max_age_hours,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_clamped_to_0_through_100() {
        assert_eq!(TaskProgress::percent(5, Some(10)), 50.0);
        assert_eq!(TaskProgress::percent(15, Some(10)), 100.0);
        assert_eq!(TaskProgress::percent(-3, Some(10)), 0.0);
        assert_eq!(TaskProgress::percent(7, None), 0.0);
        assert_eq!(TaskProgress::percent(0, Some(0)), 100.0);
    }

    fn running_task() -> Task {
        let mut task = Task::sample(Uuid::from_u128(1), TaskStatus::Running);
        task.last_event_seq = 2;
        task.started_at = Some(DateTime::UNIX_EPOCH);
        task
    }

    fn update(seq: i64, status: TaskStatus, event: Option<TaskEventKind>) -> TaskUpdate {
        TaskUpdate {
            task_id: Uuid::from_u128(1),
            owner_id: None,
            status,
            cancel_requested: false,
            progress: TaskProgress {
                processed_items: seq,
                ..TaskProgress::default()
            },
            seq,
            event: event.map(|kind| TaskEvent {
                seq,
                kind,
                data: serde_json::json!({ "status": status.as_str(), "error": "boom" }),
                created_at: DateTime::UNIX_EPOCH,
            }),
        }
    }

    #[test]
    fn stale_updates_and_replayed_events_are_ignored() {
        let mut task = running_task();
        assert_eq!(task.apply(&update(1, TaskStatus::Pending, None)), None);
        assert_eq!(
            task.status,
            TaskStatus::Running,
            "an older update changes nothing"
        );
        // A tick at the current sequence number moves the bar but logs nothing.
        assert_eq!(task.apply(&update(2, TaskStatus::Running, None)), None);
        assert_eq!(task.progress.processed_items, 2);
        assert_eq!(
            task.apply(&update(2, TaskStatus::Running, Some(TaskEventKind::Stage))),
            None,
            "an event already known is not appended twice"
        );
        let event = task.apply(&update(3, TaskStatus::Running, Some(TaskEventKind::Stage)));
        assert_eq!(event.map(|event| event.seq), Some(3));
        assert_eq!(task.last_event_seq, 3);
    }

    #[test]
    fn a_final_status_event_records_the_error_and_the_end() {
        let mut task = running_task();
        task.cancel_requested = true;
        task.apply(&update(3, TaskStatus::Failed, Some(TaskEventKind::Status)));
        assert_eq!(task.status, TaskStatus::Failed);
        assert_eq!(task.error.as_deref(), Some("boom"));
        assert!(task.completed_at.is_some());
        assert!(!task.cancel_requested);
        assert_eq!(
            task.apply(&update(4, TaskStatus::Running, None)),
            None,
            "an update for another task or a stale one changes nothing"
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskStatus::parse("done"), None);
        assert!(TaskStatus::Cancelled.is_finished());
        assert!(!TaskStatus::Running.is_finished());
    }
}
