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
                let query = sqlx::query_as::<_, (Uuid, i64)>(&sql)
                    $(.bind($value))*
                    .bind(kind.as_str())
                    .bind(Json(data))
                    .bind(at);
                let mut connection = pool.acquire().await?;
                let logged = query.fetch_all(&mut *connection).await;
                let logged = abandon_failed_transaction(&mut connection, logged).await?;
                logged.into_iter().next().map(|(_, seq)| seq)
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
/// explicit transaction, sent together.
fn sqlite_change_and_log(change: &str, first: usize) -> String {
    format!(
        "BEGIN IMMEDIATE; {} COMMIT;",
        sqlite_log_after(change, 1, first)
    )
}

/// `change` to the task `$id`, then its log entry with the three parameters from `first`;
/// `changes()` tells whether the change's guard matched. Answers `(task_id, seq)`.
fn sqlite_log_after(change: &str, id: usize, first: usize) -> String {
    let (kind, data, at) = (first, first + 1, first + 2);
    format!(
        "{change}; INSERT INTO task_events (task_id, seq, kind, data, created_at) \
         SELECT id, last_event_seq, ${kind}, ${data}, ${at} FROM tasks \
         WHERE id = ${id} AND changes() = 1 RETURNING task_id, seq; "
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
    pub priority: i32,
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

/// What [`Database::settle_and_claim`] did.
pub struct Settled {
    /// Per settlement, in order: its log entry, or `None` if the task was not running.
    pub events: Vec<Option<TaskEvent>>,
    pub claimed: Vec<(ClaimedTask, TaskEvent)>,
}

/// A task and the sequence number of the log entry just written for it.
type LoggedSeq = (Uuid, i64);

/// Sorts the rows of SQLite's settle-and-claim statements: `(task_id, seq)` from the logged
/// settlements, whole tasks from the claim.
fn split_settled_and_claimed(
    rows: &[sqlx::sqlite::SqliteRow],
) -> Result<(Vec<LoggedSeq>, Vec<ClaimedTask>), sqlx::Error> {
    use sqlx::{FromRow, Row};
    let mut events = Vec::new();
    let mut claimed = Vec::new();
    for row in rows {
        if row.columns().len() == 2 {
            events.push((row.try_get("task_id")?, row.try_get("seq")?));
        } else {
            claimed.push(ClaimedTask::from_row(row)?);
        }
    }
    Ok((events, claimed))
}

/// A task found `running` by recovery.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InterruptedTask {
    pub id: Uuid,
    pub kind: String,
    pub attempt: i32,
    pub max_attempts: i32,
}

/// How a run of a task ends: a final state, or back to the queue for another attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    Completed(Value),
    Failed(String),
    Cancelled,
    Retry {
        error: String,
        run_after: DateTime<Utc>,
    },
}

impl Ending {
    pub fn status(&self) -> TaskStatus {
        match self {
            Ending::Completed(_) => TaskStatus::Completed,
            Ending::Failed(_) => TaskStatus::Failed,
            Ending::Cancelled => TaskStatus::Cancelled,
            Ending::Retry { .. } => TaskStatus::Pending,
        }
    }

    /// The log entry this ending writes.
    fn logged(&self) -> (TaskEventKind, Value) {
        let status = self.status();
        match self {
            Ending::Completed(_) | Ending::Cancelled => {
                (TaskEventKind::Status, json!({ "status": status }))
            }
            Ending::Failed(error) => (
                TaskEventKind::Status,
                json!({ "status": status, "error": error }),
            ),
            Ending::Retry { error, run_after } => (
                TaskEventKind::Retry,
                json!({ "status": status, "error": error, "run_after": run_after }),
            ),
        }
    }
}

/// A run that ended, to be recorded: the task, how it ended and its last progress.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub id: Uuid,
    pub ending: Ending,
    pub progress: TaskProgress,
}

/// Parameters of [`settle_sql`]; the three of its log entry follow.
const SETTLE_PARAMS: usize = 11;

/// Records a settlement, guarded by `status = 'running'`: a final state with its result, or a
/// return to the queue (`completed_at` stays empty, `run_after` moves). Its parameters are
/// numbered from `first`, so that several fit in one multi-statement query.
fn settle_sql(first: usize) -> String {
    let p: Vec<String> = (first..first + SETTLE_PARAMS)
        .map(|n| format!("${n}"))
        .collect();
    format!(
        "UPDATE tasks SET status = {}, result = {}, error = {}, progress = {}, \
         total_items = {}, processed_items = {}, current_item = {}, completed_at = {}, \
         run_after = COALESCE({}, run_after), heartbeat_at = {}, cancel_requested = FALSE, \
         last_event_seq = last_event_seq + 1 WHERE id = {} AND status = 'running'",
        p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[0]
    )
}

/// Claims up to `$limit` due pending tasks for the run `$token`, with parameters `$at`,
/// `$limit`, `$per_user`, `$token` numbered from `first`; `lock` follows the candidate query.
fn claim_sql(first: usize, lock: &str) -> String {
    let (at, limit, per_user, token) = (first, first + 1, first + 2, first + 3);
    format!(
        "UPDATE tasks SET status = 'running', attempt = attempt + 1, started_at = ${at}, \
         heartbeat_at = ${at}, cancel_requested = FALSE, claim_token = ${token}, \
         last_event_seq = last_event_seq + 1 WHERE id IN (\
         SELECT id FROM tasks AS t WHERE status = 'pending' AND run_after <= ${at} \
         AND (${per_user} IS NULL OR owner_id IS NULL OR (SELECT COUNT(*) FROM tasks AS r \
         WHERE r.owner_id = t.owner_id AND r.status = 'running') < ${per_user}) \
         ORDER BY priority DESC, id LIMIT ${limit}{lock}) \
         RETURNING id, kind, name, owner_id, input, attempt, max_attempts, priority, last_event_seq"
    )
}

/// The log entries of a claim, built from the claimed rows with `data` (an SQL expression;
/// mirrored by `started_event`) at `$at`.
fn log_claims_sql(at: usize, data: &str) -> String {
    format!(
        "INSERT INTO task_events (task_id, seq, kind, data, created_at) \
         SELECT id, last_event_seq, 'status', {data}, ${at}"
    )
}

/// Binds the values of one settlement to `$query` in [`settle_sql`]'s order, then those of its log
/// entry.
macro_rules! bind_settlement {
    ($query:expr, $settlement:expr, $event:expr, $now:expr) => {{
        let settlement: &Settlement = $settlement;
        let (kind, data): &(TaskEventKind, Value) = $event;
        let (result, error, run_after) = match &settlement.ending {
            Ending::Completed(result) => (Some(Json(result)), None, None),
            Ending::Failed(error) => (None, Some(error.as_str()), None),
            Ending::Cancelled => (None, None, None),
            Ending::Retry { error, run_after } => (None, Some(error.as_str()), Some(*run_after)),
        };
        let percent = match settlement.ending {
            Ending::Completed(_) => 100.0,
            _ => settlement.progress.progress,
        };
        let completed_at = run_after.is_none().then_some($now);
        $query
            .bind(settlement.id)
            .bind(settlement.ending.status().as_str())
            .bind(result)
            .bind(error)
            .bind(percent)
            .bind(settlement.progress.total_items)
            .bind(settlement.progress.processed_items)
            .bind(settlement.progress.current_item.as_deref())
            .bind(completed_at)
            .bind(run_after)
            .bind($now)
            .bind(kind.as_str())
            .bind(Json(data))
            .bind($now)
    }};
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

    /// Records the runs that ended, then moves up to `claim` due pending tasks to `running`
    /// (highest priority first, then oldest; owners already running `per_user_limit` tasks are
    /// skipped) and logs every change — in one transaction, so that a busy engine commits many
    /// changes at once. Answers the logged event of each settlement (`None` for a task that
    /// was no longer running) and the claimed tasks.
    ///
    /// SQLite gets all of it as one multi-statement round trip. PostgreSQL takes the claimed
    /// rows with `FOR UPDATE SKIP LOCKED`, so several nodes can claim from one queue.
    pub async fn settle_and_claim(
        &self,
        settlements: &[Settlement],
        claim: usize,
        per_user_limit: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Settled, DbError> {
        let logged: Vec<(TaskEventKind, Value)> = settlements
            .iter()
            .map(|settlement| settlement.ending.logged())
            .collect();
        let per_record = SETTLE_PARAMS + 3;
        // Parameters after those of the settlements: the claim's.
        let next = settlements.len() * per_record + 1;
        let token_value = Uuid::now_v7();
        let limit_value = i64::try_from(claim).unwrap_or(i64::MAX);
        let (events, claimed) = match self {
            Database::Sqlite(pool) => {
                let mut sql = String::from("BEGIN IMMEDIATE; ");
                for index in 0..settlements.len() {
                    let first = index * per_record + 1;
                    sql += &sqlite_log_after(&settle_sql(first), first, first + SETTLE_PARAMS);
                }
                if claim > 0 {
                    let log = log_claims_sql(
                        next,
                        "json_object('status', 'running', 'attempt', attempt)",
                    );
                    // The claim token finds the rows just claimed: SQLite cannot feed one
                    // statement's RETURNING into the next.
                    let token = next + 3;
                    sql += &format!(
                        "{}; {log} FROM tasks WHERE status = 'running' AND claim_token = ${token} \
                         AND changes() > 0; ",
                        claim_sql(next, "")
                    );
                }
                sql += "COMMIT;";
                let mut query = sqlx::query(&sql);
                for (settlement, event) in settlements.iter().zip(&logged) {
                    query = bind_settlement!(query, settlement, event, now);
                }
                let query = query
                    .bind(now)
                    .bind(limit_value)
                    .bind(per_user_limit)
                    .bind(token_value);
                let mut connection = pool.acquire().await?;
                let rows = query.fetch_all(&mut *connection).await;
                let rows = abandon_failed_transaction(&mut connection, rows).await?;
                split_settled_and_claimed(&rows)?
            }
            Database::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                let mut events = Vec::new();
                for (settlement, event) in settlements.iter().zip(&logged) {
                    let sql = postgres_change_and_log(&settle_sql(1), SETTLE_PARAMS + 1);
                    let query = bind_settlement!(sqlx::query_scalar(&sql), settlement, event, now);
                    let seq: Option<i64> = query.fetch_optional(&mut *transaction).await?;
                    events.extend(seq.map(|seq| (settlement.id, seq)));
                }
                let mut claimed = Vec::new();
                if claim > 0 {
                    let log = log_claims_sql(
                        1,
                        "jsonb_build_object('status', 'running', 'attempt', attempt)",
                    );
                    let sql = format!(
                        "WITH claimed AS ({}), logged AS ({log} FROM claimed) SELECT * FROM claimed",
                        claim_sql(1, " FOR UPDATE SKIP LOCKED")
                    );
                    claimed = sqlx::query_as(&sql)
                        .bind(now)
                        .bind(limit_value)
                        .bind(per_user_limit)
                        .bind(token_value)
                        .fetch_all(&mut *transaction)
                        .await?;
                }
                transaction.commit().await?;
                (events, claimed)
            }
        };
        let events = settlements
            .iter()
            .zip(logged)
            .map(|(settlement, (kind, data))| {
                let seq = events.iter().find(|(id, _)| *id == settlement.id)?.1;
                Some(TaskEvent {
                    seq,
                    kind,
                    data,
                    created_at: now,
                })
            })
            .collect();
        // A claim's rows come back in no particular order: start them in queue order.
        let mut claimed = claimed;
        claimed.sort_by_key(|task: &ClaimedTask| (std::cmp::Reverse(task.priority), task.id));
        let claimed = claimed
            .into_iter()
            .map(|task| {
                let event = started_event(&task, now);
                (task, event)
            })
            .collect();
        Ok(Settled { events, claimed })
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
