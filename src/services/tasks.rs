//! Background tasks as users see them: reading, listing, cancelling, retrying and cleaning up,
//! each scoped by the accounts rule (your own tasks; every task for admins; somebody else's
//! task is "not found"). The runs of the shared ingest jobs are the exception: everyone signed
//! in may open and watch them, as they watch the ingest page; acting on them stays with their
//! owner and administrators.

use chrono::Utc;
use uuid::Uuid;

use crate::{
    api::tasks::{
        DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Task, TaskEvent, TaskFilter, TaskOverview, TaskPage,
        TaskStatus, TaskSummary,
    },
    auth::CurrentUser,
    engine::{Job as _, TaskRequest},
    error::AppError,
    jobs::{auto_ingest::AutoIngest, keyword_check::KeywordCheck},
    server::AppState,
    services::notifications,
};

/// Log entries answered per request; a client pages on with the last `seq` it got.
const EVENTS_PER_PAGE: u32 = 1000;
const KIND_MAX_CHARS: usize = 100;
const SEARCH_MAX_CHARS: usize = 200;
/// Most running and most waiting tasks the overview lists, each.
const OVERVIEW_ACTIVE_LIMIT: u32 = 25;
/// Finished tasks the overview lists.
const OVERVIEW_RECENT_LIMIT: u32 = 10;

/// Whose tasks the caller sees: `None` means everybody's.
fn owner_scope(caller: &CurrentUser) -> Option<i64> {
    (!caller.is_admin()).then(|| caller.id())
}

/// The kinds whose runs work on what all users share (feeds, articles, keyword alerts), and
/// which the ingest page shows to everyone.
const SHARED_KINDS: [&str; 2] = [AutoIngest::KIND, KeywordCheck::KIND];

/// The task if the caller may see it; 404 otherwise, whether it exists or not.
pub(crate) async fn visible_task(
    state: &AppState,
    caller: &CurrentUser,
    id: Uuid,
) -> Result<Task, AppError> {
    match state.db.task(id).await? {
        Some(task)
            if caller.may_access(task.owner_id) || SHARED_KINDS.contains(&task.kind.as_str()) =>
        {
            Ok(task)
        }
        _ => Err(AppError::NotFound),
    }
}

/// The task if the caller may act on it (its owner or an administrator); 403 if they may only
/// watch it, 404 if they may not see it.
async fn own_task(state: &AppState, caller: &CurrentUser, id: Uuid) -> Result<Task, AppError> {
    let task = visible_task(state, caller, id).await?;
    if caller.may_access(task.owner_id) {
        Ok(task)
    } else {
        Err(AppError::Forbidden(
            "only the task's owner or an administrator may cancel or retry it".into(),
        ))
    }
}

/// One task, with its place in the queue when it is waiting, and its live progress when it
/// runs on this node.
pub async fn get(state: &AppState, caller: &CurrentUser, id: Uuid) -> Result<Task, AppError> {
    let mut task = visible_task(state, caller, id).await?;
    match task.status {
        TaskStatus::Pending => task.queue_position = Some(state.db.queue_position(&task).await?),
        TaskStatus::Running => {
            if let Some(progress) = state.engine.live_progress(id) {
                task.progress = progress;
            }
        }
        _ => {}
    }
    Ok(task)
}

/// A page of the caller's tasks, newest first, with the summary of all of them.
pub async fn list(
    state: &AppState,
    caller: &CurrentUser,
    filter: &TaskFilter,
) -> Result<TaskPage, AppError> {
    let limit = filter.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let too_long =
        |text: &Option<String>, max| text.as_ref().is_some_and(|text| text.chars().count() > max);
    if too_long(&filter.kind, KIND_MAX_CHARS) || too_long(&filter.owner, KIND_MAX_CHARS) {
        return Err(AppError::BadRequest(format!(
            "kind and owner must be at most {KIND_MAX_CHARS} characters"
        )));
    }
    if too_long(&filter.text, SEARCH_MAX_CHARS) {
        return Err(AppError::BadRequest(format!(
            "the search text must be at most {SEARCH_MAX_CHARS} characters"
        )));
    }
    let owner = owner_scope(caller);
    // One more than the page tells whether another page follows.
    let mut tasks = state.db.tasks(owner, filter, limit + 1).await?;
    let next_cursor = if tasks.len() > limit as usize {
        tasks.truncate(limit as usize);
        tasks.last().map(|task| task.id)
    } else {
        None
    };
    Ok(TaskPage {
        tasks,
        next_cursor,
        summary: state.db.task_summary(owner).await?,
    })
}

/// What the dashboard shows: counts, the running tasks, the queue in order with positions,
/// and the latest finished tasks.
pub async fn overview(state: &AppState, caller: &CurrentUser) -> Result<TaskOverview, AppError> {
    let owner = owner_scope(caller);
    let listed = |status| TaskFilter {
        status: Some(status),
        ..TaskFilter::default()
    };
    let mut active = state
        .db
        .tasks(owner, &listed(TaskStatus::Running), OVERVIEW_ACTIVE_LIMIT)
        .await?;
    let mut pending = state
        .db
        .tasks(owner, &listed(TaskStatus::Pending), OVERVIEW_ACTIVE_LIMIT)
        .await?;
    for task in &mut pending {
        task.queue_position = Some(state.db.queue_position(task).await?);
    }
    pending.sort_by_key(|task| task.queue_position);
    active.extend(pending);
    let mut recent = Vec::new();
    for status in [
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ] {
        recent.extend(
            state
                .db
                .tasks(owner, &listed(status), OVERVIEW_RECENT_LIMIT)
                .await?,
        );
    }
    recent.sort_by(|a, b| b.completed_at.cmp(&a.completed_at).then(b.id.cmp(&a.id)));
    recent.truncate(OVERVIEW_RECENT_LIMIT as usize);
    Ok(TaskOverview {
        summary: state.db.task_summary(owner).await?,
        active,
        recent,
    })
}

/// The job kinds this server runs.
pub fn kinds(state: &AppState) -> Vec<String> {
    state
        .engine
        .registry()
        .kinds()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Starts a task for the caller; `input` is JSON text (empty for `{}`).
pub async fn start(
    state: &AppState,
    caller: &CurrentUser,
    kind: &str,
    name: &str,
    input: &str,
) -> Result<Task, AppError> {
    let input = match input.trim() {
        "" => serde_json::json!({}),
        text => serde_json::from_str(text).map_err(|error| {
            AppError::BadRequest(format!("the input is not valid JSON: {error}"))
        })?,
    };
    let name = match name.trim() {
        "" => kind,
        name => name,
    };
    start_job(state, caller, kind, name, input).await
}

/// Starts a task of `kind` owned by the caller, with an input already parsed.
pub async fn start_job(
    state: &AppState,
    caller: &CurrentUser,
    kind: &str,
    name: &str,
    input: serde_json::Value,
) -> Result<Task, AppError> {
    let id = state
        .engine
        .enqueue(TaskRequest {
            kind: kind.to_owned(),
            name: name.to_owned(),
            owner_id: Some(caller.id()),
            input,
            priority: 0,
            retry_of: None,
        })
        .await?;
    get(state, caller, id).await
}

/// Counts of the caller's tasks by status.
pub async fn summary(state: &AppState, caller: &CurrentUser) -> Result<TaskSummary, AppError> {
    Ok(state.db.task_summary(owner_scope(caller)).await?)
}

/// The task's log after sequence number `after`.
pub async fn events(
    state: &AppState,
    caller: &CurrentUser,
    id: Uuid,
    after: i64,
) -> Result<Vec<TaskEvent>, AppError> {
    if after < 0 {
        return Err(AppError::BadRequest("after must be 0 or more".into()));
    }
    visible_task(state, caller, id).await?;
    Ok(state.db.task_events(id, after, EVENTS_PER_PAGE).await?)
}

/// Cancels a pending task, or asks a running one to stop; 409 for a finished task. Answers the
/// task as it is now (`cancel_requested` while its job is stopping).
pub async fn cancel(state: &AppState, caller: &CurrentUser, id: Uuid) -> Result<Task, AppError> {
    let task = own_task(state, caller, id).await?;
    state.engine.cancel(&task).await?;
    get(state, caller, id).await
}

/// Starts a new task like a finished one (same kind, name and input), linked to it.
pub async fn retry(state: &AppState, caller: &CurrentUser, id: Uuid) -> Result<Task, AppError> {
    let task = own_task(state, caller, id).await?;
    if !task.status.is_finished() {
        return Err(AppError::Conflict(format!(
            "only a finished task can be retried; this one is {}",
            task.status.as_str()
        )));
    }
    let retry = state
        .engine
        .enqueue(TaskRequest {
            kind: task.kind,
            name: task.name,
            owner_id: task.owner_id,
            input: task.input,
            priority: task.priority,
            retry_of: Some(task.id),
        })
        .await?;
    notifications::follow_retry(state, task.id, retry).await?;
    get(state, caller, retry).await
}

/// Deletes the caller's finished tasks (everybody's for admins) that completed more than
/// `max_age_hours` ago; answers how many went.
pub async fn cleanup(
    state: &AppState,
    caller: &CurrentUser,
    max_age_hours: u32,
) -> Result<u64, AppError> {
    let cutoff = Utc::now() - chrono::Duration::hours(i64::from(max_age_hours));
    Ok(state.engine.prune(owner_scope(caller), cutoff).await?)
}
