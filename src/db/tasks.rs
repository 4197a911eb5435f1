//! Background tasks and their event log.
//!
//! Every change of a task's status, stage or detail is one transaction that updates the task
//! row, bumps its `last_event_seq` and appends the matching entry to `task_events`, so the log
//! and the row never disagree. The status guards in the `WHERE` clauses are the state machine:
//! an update that would leave a final status matches no row.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Database, DbError, execute, on_pool};
use crate::api::tasks::{
    Task, TaskEvent, TaskEventKind, TaskFilter, TaskProgress, TaskStatus, TaskSummary,
};

const TASK_COLUMNS: &str = "t.id, t.kind, t.name, t.owner_id, u.username AS owner, t.status, \
     t.progress, t.total_items, t.processed_items, t.current_item, t.stage, t.message, t.input, \
     t.result, t.error, t.detail, t.metadata, t.attempt, t.max_attempts, t.priority, \
     t.cancel_requested, t.retry_of, t.last_event_seq, t.run_after, t.created_at, t.started_at, \
     t.completed_at, t.heartbeat_at";

/// Counts the expressions given (the bound values of a statement).
macro_rules! count {
    () => { 0usize };
    ($head:expr $(, $tail:expr)*) => { 1usize + count!($($tail),*) };
}

/// Runs `$change` — an `INSERT` or guarded `UPDATE` of the task `$1` that bumps its
/// `last_event_seq` — and appends `$event` to the log with that sequence number, atomically
/// and in one round trip to the database (the engine's throughput depends on it). Evaluates to
/// the logged event, or `None` when the guard matched no row.
macro_rules! change_and_log {
    ($database:expr, $event:expr, $change:expr $(, $value:expr)* $(,)?) => {{
        let (kind, data, at): (TaskEventKind, &Value, DateTime<Utc>) = $event;
        let first = count!($($value),*) + 1;
        let seq: Option<i64> = match $database {
            Database::Sqlite(pool) => {
                let sql = sqlite_change_and_log($change, first);
                let query = sqlx::query_scalar(&sql)
                    $(.bind($value))*
                    .bind(kind.as_str())
                    .bind(Json(data))
                    .bind(at);
                let mut connection = pool.acquire().await?;
                let seqs = query.fetch_all(&mut *connection).await;
                abandon_failed_transaction(&mut connection, seqs).await?.into_iter().next()
            }
            Database::Postgres(pool) => {
                let sql = postgres_change_and_log($change, first);
                sqlx::query_scalar(&sql)
                    $(.bind($value))*
                    .bind(kind.as_str())
                    .bind(Json(data))
                    .bind(at)
                    .fetch_optional(pool)
                    .await?
            }
        };
        seq.map(|seq| TaskEvent {
            seq,
            kind,
            data: data.clone(),
            created_at: at,
        })
    }};
}

/// SQLite has no data-modifying CTEs: the change and the log entry are two statements of one
/// explicit transaction, sent together. `changes()` tells whether the guard matched.
fn sqlite_change_and_log(change: &str, first: usize) -> String {
    let (kind, data, at) = (first, first + 1, first + 2);
    format!(
        "BEGIN IMMEDIATE; {change}; \
         INSERT INTO task_events (task_id, seq, kind, data, created_at) \
         SELECT id, last_event_seq, ${kind}, ${data}, ${at} FROM tasks \
         WHERE id = $1 AND changes() = 1 RETURNING seq; \
         COMMIT;"
    )
}

fn postgres_change_and_log(change: &str, first: usize) -> String {
    let (kind, data, at) = (first, first + 1, first + 2);
    format!(
        "WITH changed AS ({change} RETURNING id, last_event_seq) \
         INSERT INTO task_events (task_id, seq, kind, data, created_at) \
         SELECT id, last_event_seq, ${kind}, ${data}, ${at} FROM changed RETURNING seq"
    )
}

/// A multi-statement SQLite transaction that failed part-way leaves its `BEGIN` open on the
/// connection; roll it back before the connection goes back to the pool.
async fn abandon_failed_transaction<T>(
    connection: &mut sqlx::SqliteConnection,
    result: Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    if result.is_err() {
        // Fails harmlessly when the failure came before `BEGIN` took effect.
        let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
    }
    result
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    kind: String,
    name: String,
    owner_id: Option<i64>,
    owner: Option<String>,
    status: String,
    progress: f64,
    total_items: Option<i64>,
    processed_items: i64,
    current_item: Option<String>,
    stage: Option<String>,
    message: Option<String>,
    input: Json<Value>,
    result: Option<Json<Value>>,
    error: Option<String>,
    detail: Option<Json<Value>>,
    metadata: Json<Value>,
    attempt: i32,
    max_attempts: i32,
    priority: i32,
    cancel_requested: bool,
    retry_of: Option<Uuid>,
    last_event_seq: i64,
    run_after: DateTime<Utc>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    heartbeat_at: Option<DateTime<Utc>>,
}

impl TaskRow {
    fn into_task(self) -> Result<Task, DbError> {
        Ok(Task {
            status: parse_status(&self.status)?,
            id: self.id,
            kind: self.kind,
            name: self.name,
            owner: self.owner,
            owner_id: self.owner_id,
            progress: TaskProgress {
                progress: self.progress,
                total_items: self.total_items,
                processed_items: self.processed_items,
                current_item: self.current_item,
                stage: self.stage,
                message: self.message,
            },
            input: self.input.0,
            result: self.result.map(|json| json.0),
            error: self.error,
            detail: self.detail.map(|json| json.0),
            metadata: self.metadata.0,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            priority: self.priority,
            cancel_requested: self.cancel_requested,
            retry_of: self.retry_of,
            queue_position: None,
            last_event_seq: self.last_event_seq,
            run_after: self.run_after,
            created_at: self.created_at,
            started_at: self.started_at,
            completed_at: self.completed_at,
            heartbeat_at: self.heartbeat_at,
        })
    }
}

fn parse_status(text: &str) -> Result<TaskStatus, DbError> {
    TaskStatus::parse(text).ok_or_else(|| DbError::Corrupt(format!("task status {text:?}")))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    kind: String,
    data: Json<Value>,
    created_at: DateTime<Utc>,
}

/// A task to create.
pub struct NewTask<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub name: &'a str,
    pub owner_id: Option<i64>,
    pub input: &'a Value,
    pub max_attempts: i32,
    pub priority: i32,
    pub retry_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A task just claimed to run: what the runner needs to start its job.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedTask {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub owner_id: Option<i64>,
    pub input: Json<Value>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub last_event_seq: i64,
}

/// The log entry of a claim, as the claim statement writes it.
fn started_event(task: &ClaimedTask, at: DateTime<Utc>) -> TaskEvent {
    TaskEvent {
        seq: task.last_event_seq,
        kind: TaskEventKind::Status,
        data: json!({ "status": TaskStatus::Running, "attempt": task.attempt }),
        created_at: at,
    }
}

/// A task found `running` by recovery.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InterruptedTask {
    pub id: Uuid,
    pub kind: String,
    pub attempt: i32,
    pub max_attempts: i32,
}

/// How a running task ends.
pub enum Ending<'a> {
    Completed(&'a Value),
    Failed(&'a str),
    Cancelled,
}

impl Ending<'_> {
    fn status(&self) -> TaskStatus {
        match self {
            Ending::Completed(_) => TaskStatus::Completed,
            Ending::Failed(_) => TaskStatus::Failed,
            Ending::Cancelled => TaskStatus::Cancelled,
        }
    }
}

impl Database {
    /// Creates a pending task and the first entry of its log.
    pub async fn insert_task(&self, task: &NewTask<'_>) -> Result<TaskEvent, DbError> {
        let data = json!({ "status": TaskStatus::Pending });
        let id = task.id;
        let logged = (TaskEventKind::Status, &data, task.created_at);
        let event = change_and_log!(
            self,
            logged,
            "INSERT INTO tasks (id, kind, name, owner_id, status, input, max_attempts, priority, \
             retry_of, last_event_seq, run_after, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, 1, $9, $9)",
            id,
            task.kind,
            task.name,
            task.owner_id,
            Json(task.input),
            task.max_attempts,
            task.priority,
            task.retry_of,
            task.created_at,
        );
        event.ok_or_else(|| DbError::Corrupt("an inserted task returned no row".into()))
    }

    /// Moves the next due pending task to `running` (highest priority first, then oldest),
    /// skipping owners who already run `per_user_limit` tasks, and logs the start — in one
    /// round trip. On PostgreSQL the row is taken with `FOR UPDATE SKIP LOCKED`, so several
    /// nodes can claim from one queue.
    pub async fn claim_next_task(
        &self,
        now: DateTime<Utc>,
        per_user_limit: Option<i64>,
    ) -> Result<Option<(ClaimedTask, TaskEvent)>, DbError> {
        const CANDIDATE: &str = "SELECT id FROM tasks AS t WHERE status = 'pending' \
             AND run_after <= $1 AND ($2 IS NULL OR owner_id IS NULL OR \
             (SELECT COUNT(*) FROM tasks AS r WHERE r.owner_id = t.owner_id AND r.status = 'running') < $2) \
             ORDER BY priority DESC, id LIMIT 1";
        const CLAIM: &str = "UPDATE tasks SET status = 'running', attempt = attempt + 1, \
             started_at = $1, heartbeat_at = $1, cancel_requested = FALSE, claim_token = $3, \
             last_event_seq = last_event_seq + 1";
        const CLAIMED: &str =
            "id, kind, name, owner_id, input, attempt, max_attempts, last_event_seq";
        // The log entry's data, built from the claimed row; mirrored by `started_event`.
        const LOG_START: &str = "INSERT INTO task_events (task_id, seq, kind, data, created_at) \
             SELECT id, last_event_seq, 'status', {data}, $1";
        let token = Uuid::new_v4();
        let claimed: Option<ClaimedTask> = match self {
            Database::Sqlite(pool) => {
                let log = LOG_START.replace(
                    "{data}",
                    "json_object('status', 'running', 'attempt', attempt)",
                );
                // The claim token finds the row just claimed: SQLite cannot feed one
                // statement's RETURNING into the next.
                let sql = format!(
                    "BEGIN IMMEDIATE; {CLAIM} WHERE id = ({CANDIDATE}) RETURNING {CLAIMED}; \
                     {log} FROM tasks WHERE status = 'running' AND claim_token = $3 \
                     AND changes() = 1; COMMIT;"
                );
                let query = sqlx::query_as(&sql)
                    .bind(now)
                    .bind(per_user_limit)
                    .bind(token);
                let mut connection = pool.acquire().await?;
                let rows = query.fetch_all(&mut *connection).await;
                abandon_failed_transaction(&mut connection, rows)
                    .await?
                    .into_iter()
                    .next()
            }
            Database::Postgres(pool) => {
                let log = LOG_START.replace(
                    "{data}",
                    "jsonb_build_object('status', 'running', 'attempt', attempt)",
                );
                let sql = format!(
                    "WITH claimed AS ({CLAIM} WHERE id = ({CANDIDATE} FOR UPDATE SKIP LOCKED) \
                     RETURNING {CLAIMED}), logged AS ({log} FROM claimed) SELECT * FROM claimed"
                );
                sqlx::query_as(&sql)
                    .bind(now)
                    .bind(per_user_limit)
                    .bind(token)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(claimed.map(|task| {
            let event = started_event(&task, now);
            (task, event)
        }))
    }

    /// Writes a running task's progress (the coalesced, unlogged part) and its heartbeat.
    pub async fn save_progress(
        &self,
        id: Uuid,
        progress: &TaskProgress,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        execute!(
            self,
            "UPDATE tasks SET progress = $2, total_items = $3, processed_items = $4, \
             current_item = $5, heartbeat_at = $6 WHERE id = $1 AND status = 'running'",
            id,
            progress.progress,
            progress.total_items,
            progress.processed_items,
            progress.current_item.as_deref(),
            now,
        )?;
        Ok(())
    }

    /// Records that a running task entered a stage. `None` when it is not running any more.
    pub async fn log_stage(
        &self,
        id: Uuid,
        stage: &str,
        message: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        let data = json!({ "stage": stage, "message": message });
        Ok(change_and_log!(
            self,
            (TaskEventKind::Stage, &data, now),
            "UPDATE tasks SET stage = $2, message = $3, last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'running'",
            id,
            stage,
            message,
        ))
    }

    /// Stores a running task's latest structured detail and logs it.
    pub async fn log_detail(
        &self,
        id: Uuid,
        detail: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        Ok(change_and_log!(
            self,
            (TaskEventKind::Detail, detail, now),
            "UPDATE tasks SET detail = $2, last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'running'",
            id,
            Json(detail),
        ))
    }

    /// Logs an error a running task recovered from (one item of many failed).
    pub async fn log_item_error(
        &self,
        id: Uuid,
        data: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        Ok(change_and_log!(
            self,
            (TaskEventKind::Error, data, now),
            "UPDATE tasks SET last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'running'",
            id,
        ))
    }

    /// Cancels a task that has not started. `None` when it is not pending (any more).
    pub async fn cancel_pending_task(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        let data = json!({ "status": TaskStatus::Cancelled });
        Ok(change_and_log!(
            self,
            (TaskEventKind::Status, &data, now),
            "UPDATE tasks SET status = 'cancelled', completed_at = $2, \
             last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'pending'",
            id,
            now,
        ))
    }

    /// Marks a running task as asked to stop. `None` when it is not running or was already
    /// asked.
    pub async fn request_task_cancel(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        Ok(change_and_log!(
            self,
            (TaskEventKind::CancelRequested, &json!({}), now),
            "UPDATE tasks SET cancel_requested = TRUE, last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'running' AND NOT cancel_requested \
            ",
            id,
        ))
    }

    /// Ends a running task with its final progress. `None` when it was not running.
    pub async fn finish_task(
        &self,
        id: Uuid,
        ending: &Ending<'_>,
        progress: &TaskProgress,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        let status = ending.status();
        let (result, error) = match ending {
            Ending::Completed(result) => (Some(Json(*result)), None),
            Ending::Failed(error) => (None, Some(*error)),
            Ending::Cancelled => (None, None),
        };
        let percent = match ending {
            Ending::Completed(_) => 100.0,
            _ => progress.progress,
        };
        let data = match error {
            Some(error) => json!({ "status": status, "error": error }),
            None => json!({ "status": status }),
        };
        Ok(change_and_log!(
            self,
            (TaskEventKind::Status, &data, now),
            "UPDATE tasks SET status = $2, result = $3, error = $4, progress = $5, \
             total_items = $6, processed_items = $7, current_item = $8, completed_at = $9, \
             heartbeat_at = $9, last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'running'",
            id,
            status.as_str(),
            result,
            error,
            percent,
            progress.total_items,
            progress.processed_items,
            progress.current_item.as_deref(),
            now,
        ))
    }

    /// Puts a running task back in the queue for another attempt after `run_after`.
    pub async fn requeue_task(
        &self,
        id: Uuid,
        error: &str,
        run_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<TaskEvent>, DbError> {
        let data = json!({ "status": TaskStatus::Pending, "error": error, "run_after": run_after });
        Ok(change_and_log!(
            self,
            (TaskEventKind::Retry, &data, now),
            "UPDATE tasks SET status = 'pending', error = $2, run_after = $3, \
             cancel_requested = FALSE, last_event_seq = last_event_seq + 1 \
             WHERE id = $1 AND status = 'running'",
            id,
            error,
            run_after,
        ))
    }

    /// Every task left `running`, e.g. by a crash (`stale_before = None`), or whose heartbeat
    /// is older than `stale_before`.
    pub async fn running_tasks(
        &self,
        stale_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<InterruptedTask>, DbError> {
        let tasks = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, attempt, max_attempts FROM tasks WHERE status = 'running' \
                 AND ($1 IS NULL OR heartbeat_at < $1) ORDER BY id",
            )
            .bind(stale_before)
            .fetch_all(pool)
            .await
        })?;
        Ok(tasks)
    }

    /// Refreshes the heartbeat of the given running tasks and answers which of them somebody
    /// asked to cancel (so that a cancellation reaches the node running the task).
    pub async fn heartbeat_tasks(
        &self,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, DbError> {
        let mut cancel_requested = Vec::new();
        for &id in ids {
            let requested: Option<bool> = on_pool!(self, |pool| {
                sqlx::query_scalar(
                    "UPDATE tasks SET heartbeat_at = $2 WHERE id = $1 AND status = 'running' \
                     RETURNING cancel_requested",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(pool)
                .await
            })?;
            if requested == Some(true) {
                cancel_requested.push(id);
            }
        }
        Ok(cancel_requested)
    }

    pub async fn task(&self, id: Uuid) -> Result<Option<Task>, DbError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks AS t LEFT JOIN users AS u ON u.id = t.owner_id \
             WHERE t.id = $1"
        );
        let row: Option<TaskRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(TaskRow::into_task).transpose()
    }

    /// Tasks newest first, of one owner (or everybody's with `owner_id = None`), filtered.
    pub async fn tasks(
        &self,
        owner_id: Option<i64>,
        filter: &TaskFilter,
        limit: u32,
    ) -> Result<Vec<Task>, DbError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks AS t LEFT JOIN users AS u ON u.id = t.owner_id \
             WHERE ($1 IS NULL OR t.owner_id = $1) AND ($2 IS NULL OR t.status = $2) \
             AND ($3 IS NULL OR t.kind = $3) AND ($4 IS NULL OR t.id < $4) \
             ORDER BY t.id DESC LIMIT $5"
        );
        let rows: Vec<TaskRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(owner_id)
                .bind(filter.status.map(TaskStatus::as_str))
                .bind(filter.kind.as_deref())
                .bind(filter.cursor)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TaskRow::into_task).collect()
    }

    /// Counts of tasks by status, of one owner or of everybody.
    pub async fn task_summary(&self, owner_id: Option<i64>) -> Result<TaskSummary, DbError> {
        let counts: Vec<(String, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM tasks WHERE ($1 IS NULL OR owner_id = $1) \
                 GROUP BY status",
            )
            .bind(owner_id)
            .fetch_all(pool)
            .await
        })?;
        let mut summary = TaskSummary::default();
        for (status, count) in counts {
            summary.add(parse_status(&status)?, count);
        }
        Ok(summary)
    }

    /// 1 for the next pending task to start, 2 for the one after, …
    pub async fn queue_position(&self, task: &Task) -> Result<i64, DbError> {
        let ahead: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM tasks WHERE status = 'pending' \
                 AND (priority > $1 OR (priority = $1 AND id < $2))",
            )
            .bind(task.priority)
            .bind(task.id)
            .fetch_one(pool)
            .await
        })?;
        Ok(ahead + 1)
    }

    /// Log entries of a task after sequence number `after`, oldest first, at most `limit`.
    pub async fn task_events(
        &self,
        id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TaskEvent>, DbError> {
        let rows: Vec<EventRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, kind, data, created_at FROM task_events \
                 WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|row| {
                let kind = TaskEventKind::parse(&row.kind)
                    .ok_or_else(|| DbError::Corrupt(format!("task event kind {:?}", row.kind)))?;
                Ok(TaskEvent {
                    seq: row.seq,
                    kind,
                    data: row.data.0,
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    /// Deletes finished tasks (and their logs) completed before `cutoff`, of one owner or of
    /// everybody. Answers how many went.
    pub async fn delete_finished_tasks(
        &self,
        owner_id: Option<i64>,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        Ok(execute!(
            self,
            "DELETE FROM tasks WHERE completed_at < $1 AND ($2 IS NULL OR owner_id = $2) \
             AND status IN ('completed', 'failed', 'cancelled')",
            cutoff,
            owner_id,
        )?)
    }
}
