//! Server-rendered pages, the server functions behind them, and the security headers.

use reqwest::{StatusCode, header};

use crate::support::{Backend, Expect, TestServer};

#[tokio::test]
async fn the_home_page_is_rendered_on_the_server_with_its_data() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let response = actors.user_a.get(&server, "/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
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
    // The server status and the user are resolved on the server, not left to the browser.
    assert!(
        html.contains(r#"data-testid="database">sqlite<"#),
        "server facts missing: {html}"
    );
    assert!(html.contains(">Sign out<"), "user menu missing");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let response = actors
        .user_a
        .get(&server, "/no/such/page")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
    server.stop().await;
}

#[tokio::test]
async fn the_system_status_server_function_answers_typed_json() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let response = actors
        .user_b
        .call(&server, "system/status", &[])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status: tidings::api::system::SystemStatus = response.json().await.unwrap();
    assert_eq!(status.database, "sqlite");
    assert_eq!(status.server_version, tidings::VERSION);
    assert!(status.installed_at <= status.started_at);
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "system/status", &[])
        })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_script_nonce() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let response = actors.user_a.get(&server, "/").send().await.unwrap();
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "'wasm-unsafe-eval'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(
            policy.contains(directive),
            "{directive} missing from {policy}"
        );
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    assert!(
        html.contains(&format!(r#"nonce="{nonce}""#)),
        "inline scripts lack the nonce"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    // A fresh nonce per response.
    let again = actors.user_a.get(&server, "/").send().await.unwrap();
    assert_ne!(
        again.headers()[header::CONTENT_SECURITY_POLICY],
        headers[header::CONTENT_SECURITY_POLICY]
    );
    server.stop().await;
}
