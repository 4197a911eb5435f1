//! `POST /api/background-tasks/bulk-save` and the `bulk_save` job: articles validated one by one,
//! stored by URL (saved, then updated), rejections with their reasons, the owner notified, and
//! requests refused before any task exists.

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::api::tasks::TaskStatus;
use uuid::Uuid;

use crate::support::{
    Actors, Backend, Expect, TestServer, notifications::newest_of, tasks::wait_for,
};

const PATH: &str = "/api/background-tasks/bulk-save";

async fn post(server: &TestServer, actors: &Actors, body: Value) -> (StatusCode, Value) {
    actors.user_a.post_json(server, PATH, &body).await
}

async fn save(server: &TestServer, actors: &Actors, articles: Value) -> Value {
    let (status, body) = post(server, actors, json!({ "articles": articles })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let id: Uuid = body["task_id"].as_str().unwrap().parse().unwrap();
    let task = wait_for(server, id, TaskStatus::Completed).await;
    task.result.expect("a completed task has a result")
}

#[rstest]
#[tokio::test]
async fn articles_are_saved_then_updated_and_bad_ones_rejected_with_a_reason(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let result = save(
        &server,
        &actors,
        json!([
            { "url": "https://example.com/a", "title": "A", "text": "about rust", "relevance_score": 0.8 },
            { "url": "https://example.com/b", "title": "B", "quality_score": 7 },
            { "url": "https://example.com/c", "title": "C", "published_at": "2026-11-01T08:00:00Z" },
        ]),
    )
    .await;
    assert_eq!(result["saved"], 2);
    assert_eq!(result["updated"], 0);
    assert_eq!(
        result["rejected"],
        json!([{ "index": 1, "url": "https://example.com/b",
                 "reason": "quality_score: must be between 0 and 1" }])
    );
    assert_eq!(result["summary"], "2 saved, 0 updated, 1 rejected");

    let result = save(
        &server,
        &actors,
        json!([{ "url": "https://example.com/a", "title": "A, revised" }]),
    )
    .await;
    assert_eq!(
        (&result["saved"], &result["updated"]),
        (&json!(0), &json!(1))
    );

    let notices = newest_of(&server, "ann").await;
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].kind, "task_complete");
    assert_eq!(notices[0].message, "0 saved, 1 updated, 0 rejected");
}

#[rstest]
#[tokio::test]
async fn bad_requests_start_no_task(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let cases = [
        (
            json!({ "articles": [] }),
            StatusCode::BAD_REQUEST,
            "articles: must not be empty",
        ),
        (
            json!({ "articles": [{ "url": "https://a.b", "title": "t" }, { "url": "https://a.b/2" }] }),
            StatusCode::BAD_REQUEST,
            "articles[1].title: missing",
        ),
        (
            json!({ "articles": [{ "title": "no url" }] }),
            StatusCode::BAD_REQUEST,
            "articles[0].url: missing",
        ),
        (
            json!({ "articles": "nope" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, ""),
    ];
    for (body, expected, message) in cases {
        let (status, answer) = post(&server, &actors, body.clone()).await;
        assert_eq!(status, expected, "{body} → {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
    let too_many: Vec<Value> = (0..1001)
        .map(|n| json!({ "url": format!("https://a.b/{n}"), "title": "t" }))
        .collect();
    let (status, _) = post(&server, &actors, json!({ "articles": too_many })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let tasks = server.state().db.task_summary(None).await.unwrap();
    assert_eq!(tasks.total, 0, "no task was created");

    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor
                .request(&server, Method::POST, PATH)
                .json(&json!({ "articles": [{ "url": "https://a.b", "title": "t" }] }))
        })
        .await;
}
