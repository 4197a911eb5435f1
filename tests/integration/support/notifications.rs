//! Sending, listing and inspecting notifications through the REST API, the server functions
//! and, for what no endpoint shows, the database itself.

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidings::{api::notifications::UnreadCount, db::Database};

use super::{Actor, TestServer};

/// The REST API of notifications.
pub const REST: &str = "/api/notifications";

/// Answers the status and JSON body of a response (`Null` when the body is not JSON).
pub async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends a REST request (`path` under [`REST`]) as `actor` and answers status and body.
pub async fn rest(
    server: &TestServer,
    actor: &Actor,
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    let response = actor
        .request(server, method, &format!("{REST}{path}"))
        .send()
        .await
        .expect("an answer");
    json_of(response).await
}

/// Calls a server function as `actor` and answers status and body.
pub async fn call(
    server: &TestServer,
    actor: &Actor,
    function: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = actor
        .call(server, function, form)
        .send()
        .await
        .expect("an answer");
    json_of(response).await
}

/// `POST /api/notifications/create` as `actor` with `body`.
pub async fn create(server: &TestServer, actor: &Actor, body: &Value) -> (StatusCode, Value) {
    let response = actor
        .request(server, Method::POST, &format!("{REST}/create"))
        .json(body)
        .send()
        .await
        .expect("an answer");
    json_of(response).await
}

/// Sends a notification as `actor` (an administrator, or the recipient) to `username` and
/// answers its id.
pub async fn notify(server: &TestServer, actor: &Actor, username: &str, title: &str) -> i64 {
    sent(
        create(
            server,
            actor,
            &json!({ "username": username, "type": "note", "title": title, "message": "m" }),
        )
        .await,
    )
}

/// Broadcasts a notification as `admin` and answers its id.
pub async fn broadcast(server: &TestServer, admin: &Actor, title: &str) -> i64 {
    sent(
        create(
            server,
            admin,
            &json!({ "broadcast": true, "type": "announcement", "title": title, "message": "m" }),
        )
        .await,
    )
}

fn sent((status, body): (StatusCode, Value)) -> i64 {
    assert_eq!(status, StatusCode::OK, "{body}");
    body["notification_id"].as_i64().expect("an id")
}

/// `GET /api/notifications{query}` as `actor`; must succeed.
pub async fn list(server: &TestServer, actor: &Actor, query: &str) -> Value {
    let (status, body) = rest(server, actor, Method::GET, query).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

/// The ids of a listing's notifications, in its order.
pub fn ids(page: &Value) -> Vec<i64> {
    page["notifications"]
        .as_array()
        .expect("a list of notifications")
        .iter()
        .map(|notification| notification["id"].as_i64().unwrap())
        .collect()
}

/// `(id, read)` of each notification `actor` sees, newest first (at most 200).
pub async fn seen(server: &TestServer, actor: &Actor) -> Vec<(i64, bool)> {
    let page = list(server, actor, "?limit=200").await;
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_i64().unwrap(), n["read"].as_bool().unwrap()))
        .collect()
}

/// The notification `id` as `actor` sees it, if they do.
pub async fn find(server: &TestServer, actor: &Actor, id: i64) -> Option<Value> {
    let page = list(server, actor, "?limit=200").await;
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|notification| notification["id"] == id)
        .cloned()
}

/// `GET /api/notifications/unread-count` as `actor`.
pub async fn unread(server: &TestServer, actor: &Actor) -> UnreadCount {
    let (status, body) = rest(server, actor, Method::GET, "/unread-count").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).expect("a count and its version")
}

/// Runs one statement on the server's database and answers the rows it affected.
macro_rules! execute {
    ($db:expr, $sql:expr $(, $value:expr)* $(,)?) => {
        match $db {
            Database::Sqlite(pool) => sqlx::query($sql)$(.bind($value))*
                .execute(pool).await.unwrap().rows_affected(),
            Database::Postgres(pool) => sqlx::query($sql)$(.bind($value))*
                .execute(pool).await.unwrap().rows_affected(),
        }
    };
}

/// Reads one integer with a query on the server's database.
macro_rules! scalar {
    ($db:expr, $sql:expr $(, $value:expr)* $(,)?) => {
        match $db {
            Database::Sqlite(pool) => sqlx::query_scalar::<_, i64>($sql)$(.bind($value))*
                .fetch_one(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_scalar::<_, i64>($sql)$(.bind($value))*
                .fetch_one(pool).await.unwrap(),
        }
    };
}

/// How many notifications are stored, for everyone.
pub async fn stored(db: &Database) -> i64 {
    scalar!(db, "SELECT COUNT(*) FROM notifications")
}

/// How many notifications about `task` are stored, for anyone.
pub async fn stored_about(db: &Database, task: uuid::Uuid) -> i64 {
    scalar!(
        db,
        "SELECT COUNT(*) FROM notifications WHERE task_id = $1",
        task
    )
}

/// Moves notification `id` into the past.
pub async fn backdate(db: &Database, id: i64, created_at: DateTime<Utc>) {
    let rows = execute!(
        db,
        "UPDATE notifications SET created_at = $1 WHERE id = $2",
        created_at,
        id
    );
    assert_eq!(rows, 1, "notification {id} exists");
}

/// Replaces a task's input, as if whoever started it had fixed what made it fail.
pub async fn set_task_input(db: &Database, task: uuid::Uuid, input: Value) {
    let rows = execute!(
        db,
        "UPDATE tasks SET input = $1 WHERE id = $2",
        sqlx::types::Json(input.clone()),
        task
    );
    assert_eq!(rows, 1, "task {task} exists");
}

/// `username`'s newest notifications as the database has them, newest first.
pub async fn newest_of(
    server: &TestServer,
    username: &str,
) -> Vec<tidings::api::notifications::Notification> {
    let db = &server.state().db;
    let user = db
        .user_by_username(username)
        .await
        .unwrap()
        .expect("the user exists");
    db.notifications_page(user.id, false, None, 10)
        .await
        .unwrap()
}
