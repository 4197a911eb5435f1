//! REST endpoints of notifications (`/api/notifications`), compatible with the original
//! system's clients. The browser UI uses the server functions of `api::notifications`.

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    extract::{ApiJson, ApiPath, ApiQuery},
};
use crate::{
    api::notifications::{NewNotification, NotificationFilter, Recipient},
    auth::CurrentUser,
    error::AppError,
    services::notifications,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/unread-count", get(unread_count))
        .route("/mark-all-read", post(mark_all_read))
        .route("/read", delete(delete_read))
        .route("/create", post(create))
        .route("/{id}/mark-read", post(mark_read))
        .route("/{id}", delete(delete_one))
        .fallback(delete(not_found).get(not_found).post(not_found))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    unread_only: bool,
    limit: Option<u32>,
    before: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let filter = NotificationFilter {
        unread_only: query.unread_only,
        before: query.before,
        limit: query.limit,
    };
    let page = notifications::list(&state, &caller, &filter).await?;
    Ok(Json(json!({
        "count": page.notifications.len(),
        "notifications": page.notifications,
        "next_cursor": page.next_cursor,
        "unread_count": page.unread.count,
    })))
}

async fn unread_count(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let unread = notifications::unread_count(&state, &caller).await?;
    Ok(Json(
        json!({ "count": unread.count, "version": unread.version }),
    ))
}

async fn mark_read(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let unread = notifications::mark_read(&state, &caller, id).await?;
    Ok(Json(
        json!({ "success": true, "unread_count": unread.count }),
    ))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkAllRead {
    up_to_id: Option<i64>,
}

/// `up_to_id` may come in the query or in an optional JSON body.
async fn mark_all_read(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiQuery(query): ApiQuery<MarkAllRead>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        MarkAllRead::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| AppError::BadRequest(format!("invalid JSON body: {error}")))?
    };
    let up_to = match (query.up_to_id, from_body.up_to_id) {
        (Some(a), Some(b)) if a != b => {
            return Err(AppError::BadRequest(
                "up_to_id: the query and the body disagree".into(),
            ));
        }
        (query, body) => query.or(body),
    };
    let changed = notifications::mark_all_read(&state, &caller, up_to).await?;
    Ok(Json(
        json!({ "count": changed.count, "unread_count": changed.unread.count }),
    ))
}

async fn delete_one(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let unread = notifications::delete(&state, &caller, id).await?;
    Ok(Json(
        json!({ "success": true, "unread_count": unread.count }),
    ))
}

async fn delete_read(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let changed = notifications::delete_read(&state, &caller).await?;
    Ok(Json(
        json!({ "count": changed.count, "unread_count": changed.unread.count }),
    ))
}

/// The original's create body: no username and no broadcast notifies the caller.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: Option<String>,
    #[serde(default)]
    broadcast: bool,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    message: String,
    link: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Json<Value>, AppError> {
    let recipient = match (body.username, body.broadcast) {
        (Some(_), true) => {
            return Err(AppError::BadRequest(
                "username: give a username or broadcast, not both".into(),
            ));
        }
        (Some(username), false) => Recipient::User(username),
        (None, true) => Recipient::Everyone,
        (None, false) => Recipient::Myself,
    };
    let new = NewNotification {
        recipient,
        kind: body.kind,
        title: body.title,
        message: body.message,
        link: body.link,
    };
    let id = notifications::create(&state, &caller, &new).await?;
    Ok(Json(json!({ "success": true, "notification_id": id })))
}
