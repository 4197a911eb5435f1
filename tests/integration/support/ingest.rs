//! Ingestion through its public surfaces: the server functions under `/api/ingest/…` (topics,
//! sources, keyword groups, articles, alerts) and the REST API under `/api/auto-ingest`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tidings::api::tasks::TaskStatus;
use uuid::Uuid;

use super::{
    Actor, TestServer,
    notifications::{call, json_of},
    tasks::wait_for,
};

/// The REST API of auto-ingest.
pub const REST: &str = "/api/auto-ingest";

/// Calls the server function `ingest/{function}` as `actor`; it must succeed.
pub async fn call_ok(
    server: &TestServer,
    actor: &Actor,
    function: &str,
    form: &[(&str, &str)],
) -> Value {
    let (status, body) = call(server, actor, &format!("ingest/{function}"), form).await;
    assert_eq!(status, StatusCode::OK, "ingest/{function} {form:?}: {body}");
    body
}

/// Sends a REST request (`path` under [`REST`]) as `actor`, with `body` as JSON when given.
pub async fn rest(
    server: &TestServer,
    actor: &Actor,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = actor.request(server, method, &format!("{REST}{path}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    json_of(request.send().await.expect("an answer")).await
}

/// Creates a topic as `admin` and answers its id.
pub async fn create_topic(
    server: &TestServer,
    admin: &Actor,
    name: &str,
    description: &str,
    keywords: &str,
) -> i64 {
    let topic = call_ok(
        server,
        admin,
        "save-topic",
        &[
            ("topic[name]", name),
            ("topic[description]", description),
            ("topic[keywords]", keywords),
        ],
    )
    .await;
    topic["id"].as_i64().expect("a topic id")
}

/// Creates an enabled source as `admin` and answers its id.
pub async fn create_source(
    server: &TestServer,
    admin: &Actor,
    name: &str,
    feed_url: &str,
    topic_id: Option<i64>,
) -> i64 {
    let topic_id = topic_id.map(|id| id.to_string());
    let mut form = vec![("source[name]", name), ("source[feed_url]", feed_url)];
    form.extend(topic_id.as_deref().map(|id| ("source[topic_id]", id)));
    let source = call_ok(server, admin, "save-source", &form).await;
    assert_eq!(source["enabled"], true, "{source}");
    source["id"].as_i64().expect("a source id")
}

/// Creates a keyword group as `admin` and answers its id.
pub async fn create_keyword_group(
    server: &TestServer,
    admin: &Actor,
    name: &str,
    topic: Option<&str>,
    keywords: &str,
) -> i64 {
    let mut form = vec![("group[name]", name), ("group[keywords]", keywords)];
    form.extend(topic.map(|topic| ("group[topic]", topic)));
    let group = call_ok(server, admin, "save-keyword-group", &form).await;
    group["id"].as_i64().expect("a group id")
}

/// Changes the auto-ingest configuration through `POST /api/auto-ingest/config` as `admin`.
pub async fn configure(server: &TestServer, admin: &Actor, changes: Value) -> Value {
    let (status, body) = rest(server, admin, Method::POST, "/config", Some(&changes)).await;
    assert_eq!(status, StatusCode::OK, "{changes} → {body}");
    body["config"].clone()
}

/// The configuration as `GET /api/auto-ingest/config` answers it.
pub async fn config(server: &TestServer, actor: &Actor) -> Value {
    let (status, body) = rest(server, actor, Method::GET, "/config", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    body["config"].clone()
}

/// Starts a run through `POST /api/auto-ingest/run` as `actor` and answers its task id.
pub async fn start_run(server: &TestServer, actor: &Actor) -> Uuid {
    let (status, body) = rest(server, actor, Method::POST, "/run", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true, "{body}");
    let id: Uuid = body["task_id"]
        .as_str()
        .expect("a task id")
        .parse()
        .unwrap();
    assert_eq!(
        body["status_url"],
        format!("/api/background-tasks/task/{id}")
    );
    assert!(
        body.get("total_articles")
            .is_some_and(|total| total.is_null() || total.is_u64()),
        "{body}"
    );
    id
}

/// Every stored article (at most 200), newest first, through the server function.
pub async fn articles(server: &TestServer, actor: &Actor) -> Vec<Value> {
    let page = call_ok(server, actor, "articles", &[("filter[limit]", "200")]).await;
    page["articles"].as_array().expect("articles").clone()
}

/// Stores `articles` through a `bulk_save` task started by `actor`; waits until it completes.
pub async fn bulk_save(server: &TestServer, actor: &Actor, articles: Value) {
    let (status, body) = actor
        .post_json(
            server,
            "/api/background-tasks/bulk-save",
            &json!({ "articles": articles }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id: Uuid = body["task_id"].as_str().unwrap().parse().unwrap();
    let result = wait_for(server, id, TaskStatus::Completed)
        .await
        .result
        .unwrap();
    assert_eq!(result["rejected"], json!([]), "{result}");
}
