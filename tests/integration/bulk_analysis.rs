//! `POST /api/background-tasks/bulk-analysis` and the `bulk_analysis` job against pages served by
//! a fixture server started by each test: results, per-URL failures, the owner's notification,
//! the shared queue's isolation between tasks, its back-pressure (503) and cancellation.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, extract::State, http::header::CONTENT_TYPE, routing::get};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::api::tasks::TaskStatus;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::support::{
    Actors, Backend, Expect, TestServer,
    notifications::newest_of,
    tasks::{cancel, wait_for, wait_until},
};

const PATH: &str = "/api/background-tasks/bulk-analysis";

fn page(title: &str, text: &str) -> String {
    format!(
        "<html><head><title>{title}</title></head><body><nav>Menu</nav>\
         <article><p>{text}</p></article></body></html>"
    )
}

/// What the fixture server saw, and the gate its held pages wait at (closed until opened).
#[derive(Clone)]
struct Fixture {
    hits: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            hits: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }
}

impl Fixture {
    /// Lets every held page answer, now and later.
    fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

/// Serves `/rust/{n}` (about Rust), `/garden/{n}` (about gardening), `/missing` (404) and
/// `/held/{n}` (answers once released), and answers its base URL.
async fn serve_pages(fixture: Fixture) -> String {
    let app = Router::new()
        .route(
            "/rust/{n}",
            get(|| async {
                html(page(
                    "Rust async runtimes compared",
                    "Rust programmers choose between async runtimes. The Rust compiler checks \
                     ownership; async Rust code runs on tokio.",
                ))
            }),
        )
        .route(
            "/garden/{n}",
            get(|| async {
                html(page(
                    "Pruning roses in autumn",
                    "Gardeners prune roses after the first frost and mulch the beds.",
                ))
            }),
        )
        .route(
            "/held/{n}",
            get(|State(fixture): State<Fixture>| async move {
                fixture.hits.fetch_add(1, Ordering::SeqCst);
                let _passed = fixture.gate.acquire().await.unwrap();
                html(page("Held", "Rust, eventually."))
            }),
        )
        .with_state(fixture);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn html(body: String) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

async fn request(server: &TestServer, actors: &Actors, body: Value) -> (StatusCode, Value) {
    actors.user_a.post_json(server, PATH, &body).await
}

async fn start(server: &TestServer, actors: &Actors, urls: Vec<String>, topic: &str) -> Uuid {
    let (status, body) = request(server, actors, json!({ "urls": urls, "topic": topic })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["task_id"].as_str().unwrap().parse().unwrap()
}

fn urls_of(result: &Value, list: &str) -> Vec<String> {
    let mut urls: Vec<String> = result[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["url"].as_str().unwrap().to_owned())
        .collect();
    urls.sort();
    urls
}

#[rstest]
#[tokio::test]
async fn pages_are_analysed_stored_and_failures_listed(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let base = serve_pages(Fixture::default()).await;
    let urls = vec![
        format!("{base}/rust/1"),
        format!("{base}/garden/1"),
        format!("{base}/missing"),
    ];
    let id = start(&server, &actors, urls, "Rust async").await;
    let task = wait_for(&server, id, TaskStatus::Completed).await;
    let result = task.result.unwrap();
    assert_eq!(urls_of(&result, "articles").len(), 2, "{result}");
    assert_eq!(urls_of(&result, "failures"), [format!("{base}/missing")]);
    assert!(
        result["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{result}"
    );
    let score = |path: &str| {
        result["articles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|article| article["url"].as_str().unwrap().ends_with(path))
            .unwrap()["relevance_score"]
            .as_f64()
            .unwrap()
    };
    assert!(score("/rust/1") > score("/garden/1"), "{result}");
    assert_eq!(task.progress.processed_items, 3);

    let notices = newest_of(&server, "ann").await;
    assert_eq!(notices[0].kind, "task_complete");
    assert_eq!(
        notices[0].message,
        "2 of 3 URLs analysed for “Rust async”, 1 failed"
    );
}

#[rstest]
#[tokio::test]
async fn a_task_whose_every_url_fails_fails(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let base = serve_pages(Fixture::default()).await;
    let id = start(&server, &actors, vec![format!("{base}/missing")], "Rust").await;
    let task = wait_for(&server, id, TaskStatus::Failed).await;
    assert!(task.error.unwrap().starts_with("every URL failed (1)"));
}

#[tokio::test]
async fn concurrent_analyses_get_only_their_own_results() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let base = serve_pages(Fixture::default()).await;
    let first: Vec<String> = (0..6).map(|n| format!("{base}/rust/{n}")).collect();
    let second: Vec<String> = (0..6).map(|n| format!("{base}/garden/{n}")).collect();
    let (a, b) = (
        start(&server, &actors, first.clone(), "Rust").await,
        start(&server, &actors, second.clone(), "Gardening").await,
    );
    for (id, mut expected) in [(a, first), (b, second)] {
        let result = wait_for(&server, id, TaskStatus::Completed)
            .await
            .result
            .unwrap();
        expected.sort();
        assert_eq!(urls_of(&result, "articles"), expected);
    }
}

#[tokio::test]
async fn a_full_queue_refuses_with_503_and_bad_requests_with_400() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.analysis.queue_capacity = 2;
        config.analysis.workers = 1;
        config.analysis.max_urls = 3;
    })
    .await;
    let actors = Actors::sign_up(&server).await;
    let fixture = Fixture::default();
    let base = serve_pages(fixture.clone()).await;
    let held = vec![format!("{base}/held/1"), format!("{base}/held/2")];
    let id = start(&server, &actors, held, "Rust").await;
    wait_until(&server, id, "running", |task| {
        task.status == TaskStatus::Running
    })
    .await;
    while fixture.hits.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let (status, body) = request(
        &server,
        &actors,
        json!({ "urls": [format!("{base}/rust/1")], "topic": "Rust" }),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("queue is full"),
        "{body}"
    );

    let bad = [
        (
            json!({ "urls": [], "topic": "Rust" }),
            "urls: must not be empty",
        ),
        (
            json!({ "urls": ["https://a.b/1", "https://a.b/2", "https://a.b/3", "https://a.b/4"], "topic": "Rust" }),
            "urls: at most 3",
        ),
        (
            json!({ "urls": ["javascript:alert(1)"], "topic": "Rust" }),
            "urls[0]",
        ),
        (json!({ "urls": ["https://a.b"], "topic": "  " }), "topic:"),
    ];
    for (body, message) in bad {
        let (status, answer) = request(&server, &actors, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
    let (status, _) = request(&server, &actors, json!({ "urls": ["https://a.b"] })).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the topic is required"
    );

    fixture.open();
    wait_for(&server, id, TaskStatus::Completed).await;
}

#[tokio::test]
async fn cancelling_stops_fetching_the_remaining_urls() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.analysis.workers = 1;
    })
    .await;
    let actors = Actors::sign_up(&server).await;
    let fixture = Fixture::default();
    let base = serve_pages(fixture.clone()).await;
    let urls: Vec<String> = (0..10).map(|n| format!("{base}/held/{n}")).collect();
    let id = start(&server, &actors, urls, "Rust").await;
    while fixture.hits.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    cancel(&server, &actors.user_a, id).await;
    assert_eq!(
        fixture.hits.load(Ordering::SeqCst),
        1,
        "with one worker, only the first page was ever asked for"
    );
    assert_eq!(
        server.state().analysis.queue.free_places(),
        100,
        "its places were freed"
    );
}

#[tokio::test]
async fn only_signed_in_callers_may_start_an_analysis() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let base = serve_pages(Fixture::default()).await;
    let body = json!({ "urls": [format!("{base}/rust/1")], "topic": "Rust" });
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.request(&server, Method::POST, PATH).json(&body)
        })
        .await;
}
