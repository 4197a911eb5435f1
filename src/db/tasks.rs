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

use super::{
    Database, DbError, TaskNotice, execute,
    notifications::{
        BUMP_NOTIFICATION_CLOCK, TASK_NOTICE_PARAMS, bind_task_notice, task_notification_sql,
    },
    on_pool,
};
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
#[derive(Clone, Debug)]
pub struct NewTask {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub owner_id: Option<i64>,
    pub input: Value,
    pub max_attempts: i32,
    pub priority: i32,
    pub retry_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl NewTask {
    /// The first entry of its log.
    fn logged(&self) -> (TaskEventKind, Value) {
        (
            TaskEventKind::Status,
            json!({ "status": TaskStatus::Pending }),
        )
    }
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

/// What one round of the engine writes: see [`Database::commit_round`].
#[derive(Default)]
pub struct Round<'a> {
    pub inserts: &'a [NewTask],
    pub settlements: &'a [Settlement],
    /// How many due tasks to claim.
    pub claim: usize,
    pub per_user_limit: Option<i64>,
}

/// What a round did.
pub struct RoundDone {
    /// Per new task, in order: its first log entry.
    pub inserted: Vec<Option<TaskEvent>>,
    /// Per settlement, in order: its log entry, or `None` if the task was not running.
    pub settled: Vec<Option<TaskEvent>>,
    pub claimed: Vec<(ClaimedTask, TaskEvent)>,
}

/// A task and the sequence number of the log entry just written for it.
type LoggedSeq = (Uuid, i64);

/// Sorts the rows of SQLite's round: `(task_id, seq)` from the logged inserts and
/// settlements, whole tasks from the claim.
fn split_logged_and_claimed(
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
    /// The owner's notification of a final ending, written in the same transaction: a task
    /// that is recorded as ended has its notification.
    pub notice: Option<TaskNotice>,
}

/// `$first`, `$first + 1`, … — `count` numbered SQL parameters.
fn placeholders(first: usize, count: usize) -> Vec<String> {
    (first..first + count).map(|n| format!("${n}")).collect()
}

/// Parameters of [`settle_sql`]; the three of its log entry follow.
const SETTLE_PARAMS: usize = 11;

/// Records a settlement, guarded by `status = 'running'`: a final state with its result, or a
/// return to the queue (`completed_at` stays empty, `run_after` moves). Its parameters are
/// numbered from `first`, so that several fit in one multi-statement query.
fn settle_sql(first: usize) -> String {
    let p = placeholders(first, SETTLE_PARAMS);
    format!(
        "UPDATE tasks SET status = {}, result = {}, error = {}, progress = {}, \
         total_items = {}, processed_items = {}, current_item = {}, completed_at = {}, \
         run_after = COALESCE({}, run_after), heartbeat_at = {}, cancel_requested = FALSE, \
         last_event_seq = last_event_seq + 1 WHERE id = {} AND status = 'running'",
        p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[0]
    )
}

/// Parameters of [`insert_sql`]; the three of its log entry follow.
const INSERT_PARAMS: usize = 9;

/// Creates a pending task, with parameters numbered from `first`.
fn insert_sql(first: usize) -> String {
    let p = placeholders(first, INSERT_PARAMS);
    format!(
        "INSERT INTO tasks (id, kind, name, owner_id, status, input, max_attempts, priority, \
         retry_of, last_event_seq, run_after, created_at) \
         VALUES ({}, {}, {}, {}, 'pending', {}, {}, {}, {}, 1, {}, {})",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[8]
    )
}

/// Binds the values of a new task to `$query` in [`insert_sql`]'s order, then those of its
/// log entry.
macro_rules! bind_insert {
    ($query:expr, $task:expr, $event:expr) => {{
        let task: &NewTask = $task;
        let (kind, data): &(TaskEventKind, Value) = $event;
        $query
            .bind(task.id)
            .bind(task.kind.as_str())
            .bind(task.name.as_str())
            .bind(task.owner_id)
            .bind(Json(&task.input))
            .bind(task.max_attempts)
            .bind(task.priority)
            .bind(task.retry_of)
            .bind(task.created_at)
            .bind(kind.as_str())
            .bind(Json(data))
            .bind(task.created_at)
    }};
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
    pub async fn insert_task(&self, task: &NewTask) -> Result<TaskEvent, DbError> {
        let round = Round {
            inserts: std::slice::from_ref(task),
            ..Round::default()
        };
        let done = self.commit_round(&round, Utc::now()).await?;
        done.inserted
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| DbError::Corrupt("an inserted task returned no row".into()))
    }

    /// One round of the engine in one transaction, so that a busy engine commits many changes
    /// at once: creates the new tasks, records the runs that ended, then moves up to `claim`
    /// due pending tasks to `running` (highest priority first, then oldest; owners already
    /// running `per_user_limit` tasks are skipped), logging every change. A settlement of a
    /// task that is no longer running changes nothing and answers `None`.
    ///
    /// SQLite gets all of it as one multi-statement round trip. PostgreSQL takes the claimed
    /// rows with `FOR UPDATE SKIP LOCKED`, so several nodes can claim from one queue.
    pub async fn commit_round(
        &self,
        round: &Round<'_>,
        now: DateTime<Utc>,
    ) -> Result<RoundDone, DbError> {
        let inserts: Vec<(TaskEventKind, Value)> =
            round.inserts.iter().map(NewTask::logged).collect();
        let settlements: Vec<(TaskEventKind, Value)> = round
            .settlements
            .iter()
            .map(|settlement| settlement.ending.logged())
            .collect();
        let (insert_size, settle_size) = (INSERT_PARAMS + 3, SETTLE_PARAMS + 3);
        let settle_base = round.inserts.len() * insert_size;
        let notices: Vec<(Uuid, &TaskNotice)> = round
            .settlements
            .iter()
            .filter_map(|settlement| Some((settlement.id, settlement.notice.as_ref()?)))
            .collect();
        let notice_base = settle_base + round.settlements.len() * settle_size;
        // Parameters after those of the inserts, settlements and notices: the claim's.
        let claim_base = notice_base + notices.len() * TASK_NOTICE_PARAMS + 1;
        let token = Uuid::now_v7();
        let limit = i64::try_from(round.claim).unwrap_or(i64::MAX);
        let (logged, claimed) = match self {
            Database::Sqlite(pool) => {
                let mut sql = String::from("BEGIN IMMEDIATE; ");
                for index in 0..round.inserts.len() {
                    let first = index * insert_size + 1;
                    sql += &sqlite_log_after(&insert_sql(first), first, first + INSERT_PARAMS);
                }
                for index in 0..round.settlements.len() {
                    let first = settle_base + index * settle_size + 1;
                    sql += &sqlite_log_after(&settle_sql(first), first, first + SETTLE_PARAMS);
                }
                if !notices.is_empty() {
                    sql += BUMP_NOTIFICATION_CLOCK;
                    sql += "; ";
                }
                for index in 0..notices.len() {
                    let first = notice_base + index * TASK_NOTICE_PARAMS + 1;
                    for statement in task_notification_sql(first) {
                        sql += &statement;
                        sql += "; ";
                    }
                }
                if round.claim > 0 {
                    let log = log_claims_sql(
                        claim_base,
                        "json_object('status', 'running', 'attempt', attempt)",
                    );
                    // The claim token finds the rows just claimed: SQLite cannot feed one
                    // statement's RETURNING into the next.
                    sql += &format!(
                        "{}; {log} FROM tasks WHERE status = 'running' AND claim_token = ${} \
                         AND changes() > 0; ",
                        claim_sql(claim_base, ""),
                        claim_base + 3,
                    );
                }
                sql += "COMMIT;";
                let mut query = sqlx::query(&sql);
                for (task, event) in round.inserts.iter().zip(&inserts) {
                    query = bind_insert!(query, task, event);
                }
                for (settlement, event) in round.settlements.iter().zip(&settlements) {
                    query = bind_settlement!(query, settlement, event, now);
                }
                for (task, notice) in &notices {
                    query = bind_task_notice!(query, task, now, notice);
                }
                if round.claim > 0 {
                    query = query
                        .bind(now)
                        .bind(limit)
                        .bind(round.per_user_limit)
                        .bind(token);
                }
                let mut connection = pool.acquire().await?;
                let rows = query.fetch_all(&mut *connection).await;
                let rows = abandon_failed_transaction(&mut connection, rows).await?;
                split_logged_and_claimed(&rows)?
            }
            Database::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                let mut logged = Vec::new();
                for (task, event) in round.inserts.iter().zip(&inserts) {
                    let sql = postgres_change_and_log(&insert_sql(1), INSERT_PARAMS + 1);
                    let query = bind_insert!(sqlx::query_scalar(&sql), task, event);
                    let seq: Option<i64> = query.fetch_optional(&mut *transaction).await?;
                    logged.extend(seq.map(|seq| (task.id, seq)));
                }
                for (settlement, event) in round.settlements.iter().zip(&settlements) {
                    let sql = postgres_change_and_log(&settle_sql(1), SETTLE_PARAMS + 1);
                    let query = bind_settlement!(sqlx::query_scalar(&sql), settlement, event, now);
                    let seq: Option<i64> = query.fetch_optional(&mut *transaction).await?;
                    logged.extend(seq.map(|seq| (settlement.id, seq)));
                }
                if !notices.is_empty() {
                    sqlx::query(BUMP_NOTIFICATION_CLOCK)
                        .execute(&mut *transaction)
                        .await?;
                }
                for (task, notice) in &notices {
                    for statement in task_notification_sql(1) {
                        bind_task_notice!(sqlx::query(&statement), *task, now, notice)
                            .execute(&mut *transaction)
                            .await?;
                    }
                }
                let mut claimed = Vec::new();
                if round.claim > 0 {
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
                        .bind(limit)
                        .bind(round.per_user_limit)
                        .bind(token)
                        .fetch_all(&mut *transaction)
                        .await?;
                }
                transaction.commit().await?;
                (logged, claimed)
            }
        };
        let event = |id: Uuid, (kind, data): (TaskEventKind, Value), created_at| {
            let seq = logged.iter().find(|(logged_id, _)| *logged_id == id)?.1;
            Some(TaskEvent {
                seq,
                kind,
                data,
                created_at,
            })
        };
        let inserted = round
            .inserts
            .iter()
            .zip(inserts)
            .map(|(task, logged)| event(task.id, logged, task.created_at))
            .collect();
        let settled = round
            .settlements
            .iter()
            .zip(settlements)
            .map(|(settlement, logged)| event(settlement.id, logged, now))
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
        Ok(RoundDone {
            inserted,
            settled,
            claimed,
        })
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

    /// Every task left `running` (after a crash, all of them: no runner survived it).
    pub async fn running_tasks(&self) -> Result<Vec<InterruptedTask>, DbError> {
        let tasks = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, attempt, max_attempts FROM tasks WHERE status = 'running' \
                 ORDER BY id",
            )
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
             AND ($6 IS NULL OR u.username = $6) \
             AND ($7 IS NULL OR LOWER(t.name) LIKE $7 ESCAPE '\\' \
                  OR LOWER(t.kind) LIKE $7 ESCAPE '\\') \
             ORDER BY t.id DESC LIMIT $5"
        );
        let pattern = filter.text.as_deref().map(contains_pattern);
        let rows: Vec<TaskRow> = on_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(owner_id)
                .bind(filter.status.map(TaskStatus::as_str))
                .bind(filter.kind.as_deref())
                .bind(filter.cursor)
                .bind(i64::from(limit))
                .bind(filter.owner.as_deref())
                .bind(pattern.as_deref())
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

/// A `LIKE` pattern (with `\` as the escape character) matching text that contains `text`,
/// ignoring case: the user's `%`, `_` and `\` match themselves.
pub(super) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}
