use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::support::{Backend, TestServer};

#[tokio::test]
async fn the_home_page_is_rendered_on_the_server_with_its_data() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = server.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<title>Dashboard · Tidings</title>"),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/pkg/tidings.css""#),
        "stylesheet link missing"
    );
    assert!(html.contains("/pkg/tidings"), "hydration script missing");
    assert!(
        html.contains(r#"data-state="connecting""#),
        "connection indicator missing"
    );
    // The server status is resolved on the server, not left for the browser to fetch.
    assert!(html.contains("sqlite"), "server facts missing: {html}");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = server.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
    server.stop().await;
}

#[tokio::test]
async fn the_system_status_server_function_answers_typed_json() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = server
        .http
        .post(server.url("/api/system/status"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status: tidings::api::system::SystemStatus = response.json().await.unwrap();
    assert_eq!(status.database, "sqlite");
    assert_eq!(status.server_version, tidings::VERSION);
    assert!(status.installed_at <= status.started_at);
    let _: Value = serde_json::to_value(status).unwrap();
    server.stop().await;
}
