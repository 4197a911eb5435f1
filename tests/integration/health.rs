use reqwest::StatusCode;
use rstest::rstest;
use serde_json::Value;

use crate::support::{Backend, TestServer};

#[tokio::test]
async fn healthz_answers_while_the_process_lives() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({ "status": "ok" })
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn readyz_reports_the_database(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
    assert!(body["schema_version"].as_i64().unwrap() > 0, "{body}");
    assert_eq!(body["server_version"], tidings::VERSION);
    server.stop().await;
}

#[tokio::test]
async fn readyz_fails_with_503_when_the_database_is_gone() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.state().db.close().await;
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
    assert!(
        body["error"].as_str().unwrap().contains("database"),
        "{body}"
    );
    // Liveness is about the process, not its dependencies.
    assert_eq!(server.get("/healthz").await.status(), StatusCode::OK);
}
