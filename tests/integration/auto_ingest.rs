//! `POST /api/auto-ingest/run` and the `auto_ingest` job against RSS and Atom feeds served by a
//! fixture server started by each test: every verdict (approved, below the relevance
//! threshold, refused by quality control, duplicate, error) stored and logged, known articles
//! skipped by the next run, one run at a time, cancellation, failing feeds, and the
//! original's WebSocket following a run batch by batch.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode as FixtureStatus, header::CONTENT_TYPE},
    response::IntoResponse,
    routing::get,
};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::api::tasks::TaskStatus;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::support::{
    Actor, Actors, Backend, TestServer,
    ingest::{articles, call_ok, configure, create_source, create_topic, rest, start_run},
    notifications::newest_of,
    tasks::{cancel, enqueue, wait_for},
};

/// Pages listed by `/held.xml`; each waits at the fixture's gate.
const HELD_PAGES: usize = 4;
/// Copies of `/rust/1` listed by `/copies.xml`.
const MIRRORS: usize = 8;

const TOPIC: &str = "Rust async runtimes";

/// Sentences about Rust's async runtimes; each relevant page is built from all of them.
const RUST_SENTENCES: &[&str] = &[
    "Async Rust code does nothing until an executor polls it, so every async program picks a \
     runtime before its first future can make progress.",
    "Tokio is the most widely used runtime, with a work-stealing scheduler, a timer wheel and \
     a reactor built on the operating system's readiness events.",
    "Smol and async-std offer smaller runtimes that favour simplicity over configurability and \
     start quickly in command-line tools.",
    "The executor decides which task runs next on which worker thread, and a fair executor \
     keeps one busy task from starving the others.",
    "Blocking inside an async task stalls the executor, which is why runtimes offer a separate \
     pool of threads for blocking work.",
    "The reactor waits on epoll, kqueue or io_uring and wakes exactly the tasks whose sockets \
     became ready.",
    "Benchmarks of async runtimes measure latency under load as much as raw throughput, since \
     a server spends most of its life waiting.",
    "Structured concurrency keeps tasks scoped, so that cancelling a parent task cancels its \
     children as well.",
    "Choosing between tokio and smol often comes down to the libraries a project already \
     depends on.",
    "Rust futures are state machines that the compiler generates from async functions, and \
     they are polled again only after a waker fires.",
];

/// A long article (well over 300 words) about Rust's async runtimes; `n` makes its text
/// differ from every other page's.
fn rust_paragraphs(n: usize) -> Vec<String> {
    (1..=3)
        .map(|part| format!("Report {n}, part {part}. {}", RUST_SENTENCES.join(" ")))
        .collect()
}

const GARDEN_SENTENCES: &[&str] = &[
    "Gardeners prune roses after the first frost and mulch the beds with compost and leaves.",
    "Tulip bulbs go into the ground in autumn, a hand's width deep, pointed end up.",
    "A hedge of hornbeam keeps its brown leaves through the winter and shelters small birds.",
    "Tomatoes ripen best against a sunny wall, watered at the roots and never on the leaves.",
    "Slugs avoid beds edged with copper tape, crushed shells or coarse sand.",
    "Rhubarb crowns are divided every few years, in early spring, before the leaves unfurl.",
    "Lavender prefers poor, well-drained soil and a sunny place sheltered from cold winds.",
    "Fallen apples attract wasps, so gardeners gather them daily in late summer.",
];

fn garden_paragraphs() -> Vec<String> {
    (1..=4)
        .map(|part| format!("Season note {part}. {}", GARDEN_SENTENCES.join(" ")))
        .collect()
}

/// A cookie wall: the only thing a crawler gets to see of the article.
const COOKIE_WALL: &str = "We use cookies to improve your experience. By clicking Accept all \
    you consent to our use of cookies as described in our Privacy Policy. You can manage \
    preferences at any time. Please enable JavaScript in your browser to continue.";

fn page(title: &str, paragraphs: &[String]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    format!(
        "<html><head><title>{title}</title></head><body><nav>Home | Archive | About</nav>\
         <article>{body}</article><footer>© Fixture</footer></body></html>"
    )
}

/// The fixture server: its base URL, how often its held pages were asked for, and the gate
/// they wait at (closed until opened).
#[derive(Clone)]
struct Fixture {
    base: String,
    held_hits: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Fixture {
    /// Serves, on an ephemeral port:
    /// - `/rss.xml` (RSS 2.0): `/rust/1`, `/copy/1` (the text of `/rust/1`), `/rust/2`,
    ///   `/garden` (long, irrelevant), `/short` (relevant, too short), `/cookie` (a cookie
    ///   wall) and `/missing` (404);
    /// - `/atom.xml` (Atom): `/rust/3`, `/rust/4` and `/rust/1` again;
    /// - `/held.xml` (RSS): `/held/0` … `/held/{HELD_PAGES - 1}`, relevant pages that answer
    ///   once the gate opens;
    /// - `/copies.xml` (RSS): `/rust/1` and its copies `/mirror/0` … `/mirror/{MIRRORS - 1}`;
    /// - `/broken.xml` (malformed XML) and `/failing.xml` (HTTP 500).
    async fn serve() -> Fixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fixture = Fixture {
            base: format!("http://{}", listener.local_addr().unwrap()),
            held_hits: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        };
        let app = Router::new()
            .route("/rss.xml", get(rss_feed))
            .route("/atom.xml", get(atom_feed))
            .route("/held.xml", get(held_feed))
            .route("/copies.xml", get(copies_feed))
            .route("/broken.xml", get(broken_feed))
            .route("/failing.xml", get(failing_feed))
            .route("/rust/{n}", get(rust_page))
            .route("/copy/{n}", get(copy_page))
            .route("/mirror/{k}", get(mirror_page))
            .route("/garden", get(garden_page))
            .route("/short", get(short_page))
            .route("/cookie", get(cookie_page))
            .route("/held/{n}", get(held_page))
            .with_state(fixture.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fixture
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Lets every held page answer, now and later.
    fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    fn held_hits(&self) -> usize {
        self.held_hits.load(Ordering::SeqCst)
    }

    /// Waits until the held pages were asked for `count` times.
    async fn wait_for_held_hits(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.held_hits() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the held pages were asked for {} times, never {count}",
                self.held_hits()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn rss(&self, items: &[(&str, &str)]) -> String {
        let items: String = items
            .iter()
            .map(|(title, path)| {
                format!(
                    "<item><title>{title}</title><link>{}</link>\
                     <pubDate>Sun, 01 Nov 2026 08:00:00 +0000</pubDate></item>",
                    self.url(path)
                )
            })
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
             <title>Fixture news</title><link>{}/</link><description>Fixture</description>\
             {items}</channel></rss>",
            self.base
        )
    }
}

type Answer = ([(axum::http::HeaderName, &'static str); 1], String);

fn answer(content_type: &'static str, body: String) -> Answer {
    ([(CONTENT_TYPE, content_type)], body)
}

fn html(body: String) -> Answer {
    answer("text/html; charset=utf-8", body)
}

async fn rss_feed(State(fixture): State<Fixture>) -> Answer {
    let feed = fixture.rss(&[
        ("Runtimes, part one", "/rust/1"),
        ("Runtimes, mirrored", "/copy/1"),
        ("Runtimes, part two", "/rust/2"),
        ("Roses in autumn", "/garden"),
        ("Tokio in brief", "/short"),
        ("Runtimes compared", "/cookie"),
        ("A lost article", "/missing"),
    ]);
    answer("application/rss+xml", feed)
}

async fn atom_feed(State(fixture): State<Fixture>) -> Answer {
    let entries: String = [
        ("Runtimes, part three", "/rust/3"),
        ("Runtimes, part four", "/rust/4"),
        ("Runtimes, part one", "/rust/1"),
    ]
    .iter()
    .enumerate()
    .map(|(n, (title, path))| {
        format!(
            "<entry><title>{title}</title><id>urn:fixture:{n}</id>\
             <link rel=\"alternate\" href=\"{}\"/><updated>2026-11-01T08:00:00Z</updated></entry>",
            fixture.url(path)
        )
    })
    .collect();
    let feed = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>Fixture mirror</title><id>urn:fixture</id>\
         <updated>2026-11-01T08:00:00Z</updated>{entries}</feed>"
    );
    answer("application/atom+xml", feed)
}

/// An RSS feed of `paths`, each titled by its path.
fn rss_of(fixture: &Fixture, paths: impl Iterator<Item = String>) -> Answer {
    let paths: Vec<String> = paths.collect();
    let items: Vec<(&str, &str)> = paths.iter().map(|path| (&**path, &**path)).collect();
    answer("application/rss+xml", fixture.rss(&items))
}

async fn held_feed(State(fixture): State<Fixture>) -> Answer {
    rss_of(&fixture, (0..HELD_PAGES).map(|n| format!("/held/{n}")))
}

async fn copies_feed(State(fixture): State<Fixture>) -> Answer {
    let mirrors = (0..MIRRORS).map(|k| format!("/mirror/{k}"));
    rss_of(
        &fixture,
        std::iter::once("/rust/1".to_owned()).chain(mirrors),
    )
}

async fn broken_feed() -> Answer {
    answer(
        "application/rss+xml",
        "<rss><channel><item><title>Broken</ite".into(),
    )
}

async fn failing_feed() -> impl IntoResponse {
    (FixtureStatus::INTERNAL_SERVER_ERROR, "feed generator down")
}

async fn rust_page(Path(n): Path<usize>) -> Answer {
    html(page(
        &format!("Rust async runtimes, report {n}"),
        &rust_paragraphs(n),
    ))
}

/// The text of `/rust/{n}` under another URL, with other markup, title, case and spacing.
async fn copy_page(Path(n): Path<usize>) -> Answer {
    let paragraphs: String = rust_paragraphs(n)
        .iter()
        .map(|p| format!("<div>\n  {}\n</div>", p.to_uppercase()))
        .collect();
    html(format!(
        "<html><head><title>Mirror: runtimes</title></head><body>\
         <header>Mirror site</header><main>{paragraphs}</main></body></html>"
    ))
}

async fn mirror_page() -> Answer {
    copy_page(Path(1)).await
}

async fn garden_page() -> Answer {
    html(page("Pruning roses in autumn", &garden_paragraphs()))
}

async fn short_page() -> Answer {
    html(page(
        "Tokio in brief",
        &["Tokio is an async runtime for Rust.".to_owned()],
    ))
}

async fn cookie_page() -> Answer {
    html(page(
        "Rust async runtimes compared",
        &[COOKIE_WALL.to_owned(), COOKIE_WALL.to_owned()],
    ))
}

async fn held_page(State(fixture): State<Fixture>, Path(n): Path<usize>) -> Answer {
    fixture.held_hits.fetch_add(1, Ordering::SeqCst);
    let _passed = fixture.gate.acquire().await.unwrap();
    html(page(
        &format!("Rust async runtimes, held report {n}"),
        &rust_paragraphs(100 + n),
    ))
}

/// A server whose administrator created the topic the fixture's pages are judged against;
/// answers its id.
async fn with_topic(backend: Backend) -> (TestServer, Actors, i64) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let topic = create_topic(
        &server,
        &actors.admin,
        TOPIC,
        "How async Rust code is scheduled and run by an executor",
        "tokio, async-std, smol, executor",
    )
    .await;
    (server, actors, topic)
}

/// Starts a run, as `user_a`, of one source, `feed` on the fixture site about the stored topic,
/// after setting `config`.
async fn start_run_of_one_feed(
    backend: Backend,
    feed: &str,
    config: Value,
) -> (TestServer, Actors, Fixture, Uuid) {
    let (server, actors, topic) = with_topic(backend).await;
    let fixture = Fixture::serve().await;
    create_source(
        &server,
        &actors.admin,
        feed,
        &fixture.url(feed),
        Some(topic),
    )
    .await;
    configure(&server, &actors.admin, config).await;
    let id = start_run(&server, &actors.user_a).await;
    (server, actors, fixture, id)
}

/// Starts a run, as `user_a`, of the held feed's pages in batches of `batch_size`, one batch at
/// a time (SQLite).
async fn start_held_run(batch_size: u32) -> (TestServer, Actors, Fixture, Uuid) {
    let config = json!({ "batch_size": batch_size, "max_concurrent_batches": 1 });
    start_run_of_one_feed(Backend::Sqlite, "/held.xml", config).await
}

/// The entries of a run's per-article log (or of a list of stored articles) by URL.
fn by_url(entries: &[Value]) -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    for entry in entries {
        let url = entry["url"].as_str().expect("a URL").to_owned();
        assert!(
            found.insert(url.clone(), entry.clone()).is_none(),
            "{url} is listed once"
        );
    }
    found
}

async fn task_events(server: &TestServer, actor: &Actor, id: Uuid) -> Vec<Value> {
    let response = actor
        .get(server, &format!("/api/background-tasks/task/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["events"].as_array().expect("events").clone()
}

/// The `(stage, message)` of each stage the task entered, in order.
fn stages(events: &[Value]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter(|event| event["kind"] == "stage")
        .map(|event| {
            (
                event["data"]["stage"].as_str().unwrap().to_owned(),
                event["data"]["message"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn sources(server: &TestServer, actor: &Actor) -> BTreeMap<String, Value> {
    let listed = call_ok(server, actor, "sources", &[]).await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|source| (source["name"].as_str().unwrap().to_owned(), source.clone()))
        .collect()
}

#[rstest]
#[tokio::test]
async fn a_run_stores_every_new_article_with_its_verdict_and_the_next_skips_them(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors, topic) = with_topic(backend).await;
    let fixture = Fixture::serve().await;
    let admin = &actors.admin;
    create_source(
        &server,
        admin,
        "Rust blog",
        &fixture.url("/rss.xml"),
        Some(topic),
    )
    .await;
    create_source(
        &server,
        admin,
        "Sister site",
        &fixture.url("/atom.xml"),
        None,
    )
    .await;
    create_source(
        &server,
        admin,
        "Dead feed",
        &fixture.url("/failing.xml"),
        None,
    )
    .await;
    configure(
        &server,
        admin,
        json!({ "batch_size": 4, "max_concurrent_batches": 2,
                "min_relevance_threshold": 0.3, "quality_control_enabled": true }),
    )
    .await;

    let id = start_run(&server, &actors.user_a).await;
    let task = wait_for(&server, id, TaskStatus::Completed).await;
    assert_eq!(task.kind, "auto_ingest");
    assert_eq!(task.owner.as_deref(), Some("ann"));
    assert_eq!(
        (task.progress.processed_items, task.progress.total_items),
        (9, Some(9))
    );
    let result = task.result.unwrap();
    assert_eq!(
        result["counters"],
        json!({ "processed": 9, "approved": 4, "filtered_relevance": 1,
                "filtered_quality": 3, "errors": 1 }),
        "{result:#}"
    );
    let summary = "9 new articles: 4 approved, 1 below the relevance threshold, 3 refused by \
                   quality control, 1 errors; 1 feeds failed";
    assert_eq!(result["summary"], summary);
    assert_eq!(result["deferred"], 0);

    // Each feed's report; the sources are read in the order of their names.
    let feeds = result["feeds"].as_array().unwrap();
    let report = |name: &str| {
        feeds
            .iter()
            .find(|feed| feed["source"] == name)
            .unwrap_or_else(|| panic!("a report of {name}: {feeds:?}"))
    };
    assert_eq!(
        (&report("Rust blog")["listed"], &report("Rust blog")["new"]),
        (&json!(7), &json!(7))
    );
    assert_eq!(
        (
            &report("Sister site")["listed"],
            &report("Sister site")["new"]
        ),
        (&json!(3), &json!(2)),
        "/rust/1 comes once, from the first feed"
    );
    assert!(report("Rust blog")["error"].is_null());
    let dead = report("Dead feed")["error"].as_str().unwrap();
    assert!(dead.contains("500"), "{dead}");

    // The per-article log: every URL once, with its verdict and why.
    let logged = by_url(result["articles"].as_array().unwrap());
    let expected: [(&str, &str, Option<&str>, u64); 9] = [
        ("/rust/1", "approved", None, 1),
        (
            "/copy/1",
            "filtered_quality",
            Some("duplicate: the same text is stored under another URL"),
            1,
        ),
        ("/rust/2", "approved", None, 1),
        (
            "/garden",
            "filtered_relevance",
            Some("relevance 0.00 is below the threshold 0.30"),
            1,
        ),
        ("/short", "filtered_quality", Some("too short: "), 2),
        (
            "/cookie",
            "filtered_quality",
            Some("mostly cookie, consent, paywall or script notices"),
            2,
        ),
        ("/missing", "error", Some("HTTP status 404"), 2),
        ("/rust/3", "approved", None, 2),
        ("/rust/4", "approved", None, 3),
    ];
    assert_eq!(logged.len(), expected.len(), "{logged:#?}");
    for (path, status, reason, batch) in expected {
        let entry = &logged[&fixture.url(path)];
        assert_eq!(entry["status"], status, "{path}: {entry}");
        assert_eq!(entry["batch"], batch, "{path}: {entry}");
        match reason {
            None => assert!(entry["reason"].is_null(), "{path}: {entry}"),
            Some(reason) => {
                let stated = entry["reason"].as_str().unwrap();
                assert!(stated.contains(reason), "{path}: {stated}");
            }
        }
        if status == "approved" {
            assert!(entry["relevance_score"].as_f64().unwrap() >= 0.3, "{entry}");
            assert_eq!(entry["quality_score"], 1.0, "{entry}");
        }
    }
    assert!(
        logged[&fixture.url("/cookie")]["relevance_score"]
            .as_f64()
            .unwrap()
            >= 0.3,
        "quality control refused it, not the threshold"
    );

    // Stored as logged; everybody signed in may read them.
    let stored = by_url(&articles(&server, &actors.user_b).await);
    assert_eq!(stored.len(), 9);
    for (url, entry) in &logged {
        let article = &stored[url];
        assert_eq!(article["status"], entry["status"], "{url}");
        assert_eq!(article["status_reason"], entry["reason"], "{url}");
        assert_eq!(article["title"], entry["title"], "{url}");
    }
    let rust1 = &stored[&fixture.url("/rust/1")];
    assert_eq!(rust1["title"], "Rust async runtimes, report 1");
    assert_eq!(rust1["source"], "Rust blog");
    assert_eq!(rust1["topic"], TOPIC);
    assert_eq!(rust1["published_at"], "2026-11-01T08:00:00Z");
    assert_eq!(
        rust1["matched_keywords"],
        json!(["tokio", "async-std", "smol", "executor"])
    );
    assert!(!rust1["summary"].as_str().unwrap().is_empty());
    assert_eq!(stored[&fixture.url("/rust/3")]["source"], "Sister site");
    assert_eq!(
        stored[&fixture.url("/missing")]["title"],
        "A lost article",
        "a page that could not be read keeps the feed's title"
    );
    let approved = call_ok(
        &server,
        &actors.user_a,
        "articles",
        &[("filter[status]", "approved")],
    )
    .await;
    assert_eq!(approved["articles"].as_array().unwrap().len(), 4);
    let detail = call_ok(
        &server,
        &actors.user_a,
        "article",
        &[("id", &rust1["id"].to_string())],
    )
    .await;
    assert!(
        detail["text"]
            .as_str()
            .unwrap()
            .starts_with("Report 1, part 1.")
    );

    // The owner is told; the log shows every stage and the failed feed and article.
    let notices = newest_of(&server, "ann").await;
    assert_eq!(notices[0].kind, "auto_ingest_complete");
    assert_eq!(notices[0].message, summary);
    assert_eq!(notices[0].link.as_deref(), Some(&*format!("/tasks/{id}")));
    let events = task_events(&server, &actors.user_a, id).await;
    let entered = stages(&events);
    let names: Vec<&str> = entered.iter().map(|(stage, _)| stage.as_str()).collect();
    assert_eq!(names.first(), Some(&"initializing"), "{names:?}");
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    for stage in [
        "fetching",
        "processing batch 1/3",
        "processing batch 2/3",
        "processing batch 3/3",
        "saving",
    ] {
        assert!(names.contains(&stage), "{stage} in {names:?}");
    }
    assert!(entered.contains(&("fetching".into(), Some("3 feeds".into()))));
    for batch in 1..=3 {
        let saving = ("saving".to_owned(), Some(format!("batch {batch} of 3")));
        assert!(entered.contains(&saving), "{saving:?} in {entered:?}");
    }
    assert_eq!(
        entered.last().unwrap().1.as_deref(),
        Some(summary),
        "the last stage carries the summary"
    );
    let errors: Vec<&Value> = events
        .iter()
        .filter(|event| event["kind"] == "error")
        .map(|event| &event["data"]["item"])
        .collect();
    assert_eq!(
        errors,
        [
            &json!(fixture.url("/failing.xml")),
            &json!(fixture.url("/missing"))
        ]
    );

    // Each source remembers its fetch, and why it failed.
    let listed = sources(&server, &actors.user_a).await;
    for name in ["Rust blog", "Sister site", "Dead feed"] {
        assert!(listed[name]["last_fetched_at"].is_string(), "{name}");
    }
    assert!(listed["Rust blog"]["last_error"].is_null());
    assert!(
        listed["Dead feed"]["last_error"]
            .as_str()
            .unwrap()
            .contains("500")
    );

    // The next run skips what is stored, and tries the error again.
    let again = start_run(&server, &actors.user_b).await;
    let result = wait_for(&server, again, TaskStatus::Completed)
        .await
        .result
        .unwrap();
    assert_eq!(
        result["counters"],
        json!({ "processed": 1, "approved": 0, "filtered_relevance": 0,
                "filtered_quality": 0, "errors": 1 }),
        "{result:#}"
    );
    assert_eq!(
        by_url(result["articles"].as_array().unwrap())
            .keys()
            .collect::<Vec<_>>(),
        [&fixture.url("/missing")]
    );
    assert_eq!(
        (
            &report_of(&result, "Rust blog")["listed"],
            &report_of(&result, "Rust blog")["new"]
        ),
        (&json!(7), &json!(1))
    );
    assert_eq!(report_of(&result, "Sister site")["new"], 0);
    assert_eq!(articles(&server, &actors.user_a).await.len(), 9);
    let notices = newest_of(&server, "bob").await;
    assert_eq!(notices[0].kind, "auto_ingest_complete");
    assert!(
        notices[0].message.starts_with("1 new articles: 0 approved"),
        "{}",
        notices[0].message
    );
    server.stop().await;
}

fn report_of<'a>(result: &'a Value, source: &str) -> &'a Value {
    result["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|feed| feed["source"] == source)
        .unwrap()
}

#[rstest]
#[tokio::test]
async fn copies_saved_at_once_leave_exactly_one_approved(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    // Every article in a batch of its own, all batches at once: the copies are saved
    // concurrently.
    let config = json!({ "batch_size": 1, "max_concurrent_batches": 16 });
    let (server, _actors, _fixture, id) =
        start_run_of_one_feed(backend, "/copies.xml", config).await;
    let result = wait_for(&server, id, TaskStatus::Completed)
        .await
        .result
        .unwrap();
    let statuses: Vec<&str> = result["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        result["counters"],
        json!({ "processed": 1 + MIRRORS, "approved": 1, "filtered_relevance": 0,
                "filtered_quality": MIRRORS, "errors": 0 }),
        "exactly one of the copies is kept: {statuses:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn without_quality_control_or_threshold_every_readable_page_is_approved() {
    let config = json!({ "quality_control_enabled": false, "min_relevance_threshold": 0.0 });
    let (server, actors, fixture, id) =
        start_run_of_one_feed(Backend::Sqlite, "/rss.xml", config).await;
    let result = wait_for(&server, id, TaskStatus::Completed)
        .await
        .result
        .unwrap();
    assert_eq!(
        result["counters"],
        json!({ "processed": 7, "approved": 6, "filtered_relevance": 0,
                "filtered_quality": 0, "errors": 1 }),
        "{result:#}"
    );
    let stored = by_url(&articles(&server, &actors.user_a).await);
    let cookie = &stored[&fixture.url("/cookie")];
    assert_eq!(cookie["status"], "approved");
    assert!(
        cookie["quality_score"].as_f64().unwrap() < 0.5,
        "still scored: {cookie}"
    );
    server.stop().await;
}

#[tokio::test]
async fn only_one_run_at_a_time() {
    let (server, actors, fixture, id) = start_held_run(1).await;

    // While it is pending or running, nobody can start another.
    let (status, body) = rest(&server, &actors.user_b, Method::POST, "/run", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("already in progress") && error.contains(&id.to_string()),
        "{error}"
    );
    fixture.wait_for_held_hits(1).await;
    let (status, body) = rest(&server, &actors.user_b, Method::POST, "/run", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = rest(&server, &actors.user_b, Method::GET, "/status", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["running"], true, "{body}");
    assert_eq!(body["task_id"], id.to_string());

    // A run that starts anyway (another node, a scheduler) finds the place taken and does
    // nothing.
    let intruder = enqueue(&server, Some("bob"), "auto_ingest", json!({})).await;
    let failed = wait_for(&server, intruder, TaskStatus::Failed).await;
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .starts_with("another auto-ingest run is in progress"),
        "{failed:?}"
    );
    assert_eq!(newest_of(&server, "bob").await[0].kind, "auto_ingest_error");
    assert_eq!(fixture.held_hits(), 1, "the intruder fetched nothing");

    fixture.open();
    let result = wait_for(&server, id, TaskStatus::Completed)
        .await
        .result
        .unwrap();
    assert_eq!(result["counters"]["approved"], HELD_PAGES);
    let (_, body) = rest(&server, &actors.user_b, Method::GET, "/status", None).await;
    assert_eq!(
        (&body["running"], &body["task_id"]),
        (&json!(false), &Value::Null)
    );
    server.stop().await;
}

#[tokio::test]
async fn cancelling_a_run_stops_fetching_and_frees_its_place() {
    let (server, actors, fixture, id) = start_held_run(1).await;
    fixture.wait_for_held_hits(1).await;
    let cancelled = cancel(&server, &actors.user_a, id).await;
    assert_eq!(
        fixture.held_hits(),
        1,
        "one batch of one at a time: only the first page was ever asked for"
    );
    assert_eq!(cancelled.progress.processed_items, 0);
    fixture.open();
    assert!(
        articles(&server, &actors.user_a).await.is_empty(),
        "the cancelled batch stored nothing"
    );
    assert_eq!(
        server.state().analysis.queue.free_places(),
        100,
        "its places in the queue were freed"
    );
    assert_ne!(
        newest_of(&server, "ann")
            .await
            .first()
            .map(|notice| notice.kind.as_str()),
        Some("auto_ingest_error"),
        "a cancellation is no failure"
    );

    // The place is free again: the next run reads every page.
    let next = start_run(&server, &actors.user_a).await;
    let result = wait_for(&server, next, TaskStatus::Completed)
        .await
        .result
        .unwrap();
    assert_eq!(result["counters"]["approved"], HELD_PAGES, "{result:#}");
    assert_eq!(fixture.held_hits(), 1 + HELD_PAGES);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn runs_without_sources_topics_or_a_readable_feed(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let fixture = Fixture::serve().await;
    let ann = &actors.user_a;

    // No sources: nothing to do.
    let id = start_run(&server, ann).await;
    let task = wait_for(&server, id, TaskStatus::Completed).await;
    assert_eq!(
        task.result.unwrap()["summary"],
        "No enabled sources: nothing to ingest."
    );

    // Sources, but no topic to judge against.
    for (name, path) in [("Broken", "/broken.xml"), ("Failing", "/failing.xml")] {
        create_source(&server, &actors.admin, name, &fixture.url(path), None).await;
    }
    let id = start_run(&server, ann).await;
    let task = wait_for(&server, id, TaskStatus::Failed).await;
    assert_eq!(
        task.error.as_deref(),
        Some("there are no topics to judge articles against: create a topic first")
    );

    // Every feed fails: malformed XML, HTTP 500.
    create_topic(&server, &actors.admin, TOPIC, "", "tokio").await;
    let id = start_run(&server, ann).await;
    let task = wait_for(&server, id, TaskStatus::Failed).await;
    let error = task.error.unwrap();
    assert!(
        error.starts_with(&format!(
            "every feed failed (2); the first: {}: not a readable RSS or Atom feed",
            fixture.url("/broken.xml")
        )),
        "{error}"
    );
    let notices = newest_of(&server, "ann").await;
    assert_eq!(notices[0].kind, "auto_ingest_error");
    assert_eq!(notices[0].title, "“Auto-ingest” failed");
    assert_eq!(notices[0].message, error);
    let listed = sources(&server, ann).await;
    assert!(
        listed["Broken"]["last_error"]
            .as_str()
            .unwrap()
            .contains("not a readable RSS or Atom feed")
    );
    assert!(
        listed["Failing"]["last_error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert!(articles(&server, ann).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_original_websocket_follows_a_run_batch_by_batch() {
    let (server, actors, fixture, id) = start_held_run(2).await;
    let mut socket = actors
        .user_a
        .websocket(&server, &format!("/ws/bulk-process/{id}"))
        .await
        .expect("the owner may follow the run");
    let greeting = socket.receive_json().await;
    assert_eq!(greeting["status"], "connected", "{greeting}");
    let snapshot = socket.receive_json().await;
    assert_eq!(snapshot["snapshot"], true, "{snapshot}");
    assert!(snapshot.get("batch_completed").is_none(), "{snapshot}");

    fixture.open();
    let mut updates = Vec::new();
    loop {
        let update = socket.receive_json().await;
        assert_eq!(update["type"], "job_update", "{update}");
        assert_eq!(update["job_id"], id.to_string());
        let ended = matches!(update["status"].as_str(), Some("completed" | "error"));
        updates.push(update);
        if ended {
            break;
        }
    }
    let batches: Vec<&Value> = updates
        .iter()
        .filter(|update| update["status"] == "batch_update")
        .collect();
    assert!(!batches.is_empty(), "{updates:#?}");
    let mut completed = 0;
    for update in &batches {
        assert_eq!(update["total_batches"], 2, "{update}");
        let now = update["batch_completed"].as_u64().unwrap();
        assert!(now > completed && now <= 2, "{updates:#?}");
        completed = now;
        assert!(update["results"]["approved"].is_u64(), "{update}");
    }
    assert_eq!(completed, 2, "the last batch is reported: {updates:#?}");
    assert_eq!(
        batches.last().unwrap()["results"],
        json!({ "processed": 4, "approved": 4, "filtered_relevance": 0,
                "filtered_quality": 0, "errors": 0 })
    );
    assert!(
        updates
            .iter()
            .any(|update| update["stage"] == "processing batch 2/2"),
        "{updates:#?}"
    );
    let ending = updates.last().unwrap();
    assert_eq!(ending["status"], "completed", "{ending}");
    assert_eq!(ending["results"]["counters"]["approved"], 4);
    server.stop().await;
}
