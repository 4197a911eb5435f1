//! The live layer's logic: who may subscribe to what, and the snapshot a subscription starts
//! with. The WebSocket handlers [authorize] first, then register the route with the hub
//! *before* asking for the snapshot, so that every update is either in the snapshot or
//! delivered after it.

use uuid::Uuid;

use crate::{
    api::tasks::TaskOverview,
    auth::CurrentUser,
    error::AppError,
    live::Route,
    protocol::{SNAPSHOT_EVENTS_LIMIT, ServerMessage, Topic},
    server::AppState,
    services::{notifications, tasks},
};

/// The hub route that carries `topic`'s updates for `caller`. Grant a task's route only
/// after [`authorize`] allowed it.
pub fn route(caller: &CurrentUser, topic: Topic) -> Route {
    match topic {
        Topic::Task { id } => Route::Task(id),
        Topic::Tasks if caller.is_admin() => Route::All,
        Topic::Tasks => Route::Owner(caller.id()),
        Topic::Notifications => Route::Inbox(caller.id()),
    }
}

/// Whether `caller` may subscribe to `topic` (somebody else's task is "not found"), with a
/// valid `after`. Checked before the route is registered: a route registered first would carry
/// updates of somebody else's task to the caller while the check runs.
pub async fn authorize(
    state: &AppState,
    caller: &CurrentUser,
    topic: Topic,
    after: Option<i64>,
) -> Result<(), AppError> {
    check_after(after)?;
    match topic {
        Topic::Task { id } => tasks::visible_task(state, caller, id).await.map(drop),
        Topic::Tasks | Topic::Notifications => Ok(()),
    }
}

fn check_after(after: Option<i64>) -> Result<(), AppError> {
    match after {
        Some(after) if after < 0 => Err(AppError::BadRequest("after must be 0 or more".into())),
        _ => Ok(()),
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
        Topic::Notifications => notifications::snapshot(state, caller).await,
    }
}

async fn task_snapshot(
    state: &AppState,
    caller: &CurrentUser,
    id: Uuid,
    after: Option<i64>,
) -> Result<ServerMessage, AppError> {
    check_after(after)?;
    let task = tasks::get(state, caller, id).await?;
    let limit = i64::from(SNAPSHOT_EVENTS_LIMIT);
    let newest = task.last_event_seq;
    let (from, replaces_timeline) = match after {
        Some(after) if after <= newest && newest - after <= limit => (after, false),
        _ => ((newest - limit).max(0), true),
    };
    // Only the entries the task row counts: one logged since it was read belongs to an update
    // that follows the snapshot, and the client takes the row's `last_event_seq` as known.
    let count = u32::try_from(newest - from).unwrap_or(0);
    let events = state
        .db
        .task_events(id, from, count.min(SNAPSHOT_EVENTS_LIMIT))
        .await?;
    Ok(ServerMessage::TaskSnapshot {
        task: Box::new(task),
        events,
        replaces_timeline,
    })
}

async fn tasks_snapshot(state: &AppState, caller: &CurrentUser) -> Result<ServerMessage, AppError> {
    let TaskOverview {
        summary,
        active,
        recent,
    } = tasks::overview(state, caller).await?;
    Ok(ServerMessage::TasksSnapshot {
        summary,
        active,
        recent,
    })
}
