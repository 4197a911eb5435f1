//! The live layer's logic: who may subscribe to what, and the snapshot a subscription starts
//! with. The WebSocket handlers register the route with the hub *before* asking for the
//! snapshot, so that every update is either in the snapshot or delivered after it.

use uuid::Uuid;

use crate::{
    api::tasks::{Task, TaskFilter, TaskStatus},
    auth::CurrentUser,
    error::AppError,
    live::Route,
    protocol::{SNAPSHOT_EVENTS_LIMIT, ServerMessage, Topic},
    server::AppState,
    services::tasks,
};

/// Most running and most waiting tasks a [`Topic::Tasks`] snapshot lists, each.
const ACTIVE_LIMIT: u32 = 25;
/// Finished tasks a [`Topic::Tasks`] snapshot lists.
const RECENT_LIMIT: u32 = 10;

/// The hub route that carries `topic`'s updates for `caller`. A task's route is only granted
/// together with its snapshot ([`snapshot`] checks access).
pub fn route(caller: &CurrentUser, topic: Topic) -> Route {
    match topic {
        Topic::Task { id } => Route::Task(id),
        Topic::Tasks if caller.is_admin() => Route::All,
        Topic::Tasks => Route::Owner(caller.id()),
    }
}

/// The current state of `topic` as `caller` may see it. For a task, `after` is the newest
/// event the client has: it gets the events since, or the newest ones when that gap is too
/// long to replay. Somebody else's task is "not found".
pub async fn snapshot(
    state: &AppState,
    caller: &CurrentUser,
    topic: Topic,
    after: Option<i64>,
) -> Result<ServerMessage, AppError> {
    match topic {
        Topic::Task { id } => task_snapshot(state, caller, id, after).await,
        Topic::Tasks => tasks_snapshot(state, caller).await,
    }
}

async fn task_snapshot(
    state: &AppState,
    caller: &CurrentUser,
    id: Uuid,
    after: Option<i64>,
) -> Result<ServerMessage, AppError> {
    if after.is_some_and(|after| after < 0) {
        return Err(AppError::BadRequest("after must be 0 or more".into()));
    }
    let task = tasks::get(state, caller, id).await?;
    let limit = i64::from(SNAPSHOT_EVENTS_LIMIT);
    let newest = task.last_event_seq;
    let (from, replaces_timeline) = match after {
        Some(after) if after <= newest && newest - after <= limit => (after, false),
        _ => ((newest - limit).max(0), true),
    };
    let events = state
        .db
        .task_events(id, from, SNAPSHOT_EVENTS_LIMIT)
        .await?;
    Ok(ServerMessage::TaskSnapshot {
        task: Box::new(task),
        events,
        replaces_timeline,
    })
}

async fn tasks_snapshot(state: &AppState, caller: &CurrentUser) -> Result<ServerMessage, AppError> {
    let owner = tasks::owner_scope(caller);
    let listed = |status| TaskFilter {
        status: Some(status),
        ..TaskFilter::default()
    };
    let mut active = state
        .db
        .tasks(owner, &listed(TaskStatus::Running), ACTIVE_LIMIT)
        .await?;
    let pending = state
        .db
        .tasks(owner, &listed(TaskStatus::Pending), ACTIVE_LIMIT)
        .await?;
    active.extend(with_queue_positions(state, pending).await?);
    let mut recent = Vec::new();
    for status in [
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ] {
        recent.extend(state.db.tasks(owner, &listed(status), RECENT_LIMIT).await?);
    }
    recent.sort_by(|a, b| b.completed_at.cmp(&a.completed_at).then(b.id.cmp(&a.id)));
    recent.truncate(RECENT_LIMIT as usize);
    Ok(ServerMessage::TasksSnapshot {
        summary: state.db.task_summary(owner).await?,
        active,
        recent,
    })
}

/// Waiting tasks in the order they will start, each with its place in the queue.
async fn with_queue_positions(
    state: &AppState,
    mut pending: Vec<Task>,
) -> Result<Vec<Task>, AppError> {
    for task in &mut pending {
        task.queue_position = Some(state.db.queue_position(task).await?);
    }
    pending.sort_by_key(|task| task.queue_position);
    Ok(pending)
}
