//! The original system's WebSocket endpoints, `/ws/bulk-process/{job_id}` and
//! `/ws/progress/{topic_id}`, message by message.
//!
//! Jobs whose updates a test follows run on a server with one task slot, held by a long
//! "blocker" task: they stay pending until the test cancels the blocker, so the socket is
//! always open (and its snapshot taken) before they start.

use reqwest::{StatusCode, header};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::api::tasks::{TaskEvent, TaskEventKind, TaskProgress, TaskStatus, TaskUpdate};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use uuid::Uuid;

use crate::support::{
    Actor, Actors, Backend, TestServer, WsClient,
    tasks::{enqueue, task, wait_for},
};

/// Most messages a test reads while waiting for one.
const MESSAGE_LIMIT: usize = 10_000;

/// A server with one task slot, its users, and a task of ann's that holds the slot until
/// [`release`] cancels it.
async fn single_slot(backend: Backend) -> (TestServer, Actors, Uuid) {
    let server = TestServer::start_with(backend, |config| config.tasks.max_concurrent = 1).await;
    let actors = Actors::sign_up(&server).await;
    let blocker = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 100_000, "step_ms": 50 }),
    )
    .await;
    wait_for(&server, blocker, TaskStatus::Running).await;
    (server, actors, blocker)
}

/// Cancels the blocker, so that the waiting tasks start.
async fn release(server: &TestServer, blocker: Uuid) {
    let running = task(server, blocker).await;
    server
        .state()
        .engine
        .cancel(&running)
        .await
        .expect("the blocker can be cancelled");
}

async fn bulk(server: &TestServer, actor: &Actor, job: impl std::fmt::Display) -> WsClient {
    actor
        .websocket(server, &format!("/ws/bulk-process/{job}"))
        .await
        .expect("the upgrade is accepted")
}

async fn progress(server: &TestServer, actor: &Actor, topic: &str) -> WsClient {
    actor
        .websocket(server, &format!("/ws/progress/{topic}"))
        .await
        .expect("the upgrade is accepted")
}

/// Reads messages up to and including the first one `done` accepts.
async fn receive_until(socket: &mut WsClient, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    while seen.len() < MESSAGE_LIMIT {
        let message = socket.receive_json().await;
        let last = done(&message);
        seen.push(message);
        if last {
            return seen;
        }
    }
    panic!("no awaited message among {MESSAGE_LIMIT}");
}

fn is_ending(message: &Value) -> bool {
    message["type"] == "job_update"
        && matches!(message["status"].as_str(), Some("completed" | "error"))
}

fn assert_greeting(greeting: &Value, key: &str, id: &str) {
    assert_eq!(greeting["type"], "direct_message", "{greeting}");
    assert_eq!(greeting["status"], "connected");
    assert_eq!(greeting[key], id);
    assert!(
        greeting["message"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    assert_timestamp(greeting);
}

fn assert_timestamp(message: &Value) {
    let stamp = message["timestamp"].as_str().expect("a timestamp");
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "an RFC 3339 timestamp: {message}"
    );
}

/// Sends a ping and expects the pong as the next message.
async fn assert_answers_ping(socket: &mut WsClient) {
    socket.send_json(json!({ "type": "ping" })).await;
    let pong = socket.receive_json().await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert_timestamp(&pong);
}

#[rstest]
#[tokio::test]
async fn bulk_process_greets_sends_the_snapshot_then_every_update_to_completed(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors, blocker) = single_slot(backend).await;
    let job = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 10, "step_ms": 10 }),
    )
    .await;
    let mut socket = bulk(&server, &actors.user_a, job).await;
    assert_greeting(&socket.receive_json().await, "job_id", &job.to_string());
    let snapshot = socket.receive_json().await;
    assert_eq!(snapshot["type"], "job_update", "{snapshot}");
    assert_eq!(snapshot["snapshot"], true);
    assert_eq!(snapshot["job_id"], job.to_string());
    assert_eq!(snapshot["status"], "progress");
    assert_eq!(snapshot["task_status"], "pending");
    assert_eq!(snapshot["stage"], "queued");
    assert_eq!(snapshot["queue_position"], 1);
    assert_eq!(
        (
            snapshot["progress"].as_f64(),
            snapshot["processed"].as_i64()
        ),
        (Some(0.0), Some(0))
    );
    assert_timestamp(&snapshot);

    release(&server, blocker).await;
    let updates = receive_until(&mut socket, is_ending).await;
    let mut processed = 0;
    for update in &updates {
        assert_eq!(update["type"], "job_update", "{update}");
        assert_eq!(update["job_id"], job.to_string());
        assert!(update.get("snapshot").is_none());
        assert!(
            matches!(
                update["status"].as_str(),
                Some("progress" | "batch_update" | "completed")
            ),
            "{update}"
        );
        let now = update["processed"].as_i64().expect("processed");
        assert!(now >= processed, "processed never goes back: {updates:?}");
        processed = now;
        assert_timestamp(update);
    }
    assert!(
        updates.iter().any(|update| update["status"] == "progress"
            && update["task_status"] == "running"
            && update["stage"] == "processing"),
        "the stage is pushed: {updates:?}"
    );
    assert!(
        updates
            .iter()
            .any(|update| update["status"] == "batch_update"
                && update["step"] == 10
                && update["of"] == 10),
        "the job's detail is pushed as a batch update: {updates:?}"
    );
    let completed = updates.last().unwrap();
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["task_status"], "completed");
    assert_eq!(completed["results"], json!({ "steps": 10, "attempt": 1 }));
    assert_eq!(completed["progress"], 100.0);
    assert_eq!(
        (completed["processed"].as_i64(), completed["total"].as_i64()),
        (Some(10), Some(10))
    );
    assert!(completed.get("error").is_none());

    // The socket stays open after the ending; the client closes it.
    assert_answers_ping(&mut socket).await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn get_status_answers_the_current_status(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let job = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 15, "step_ms": 100 }),
    )
    .await;
    wait_for(&server, job, TaskStatus::Running).await;
    let mut socket = bulk(&server, &actors.user_a, job).await;
    socket.receive_json().await;
    assert_eq!(socket.receive_json().await["snapshot"], true);

    let is_status = |message: &Value| message["type"] == "job_status";
    socket.send_json(json!({ "type": "get_status" })).await;
    let status = receive_until(&mut socket, is_status).await.pop().unwrap();
    assert_eq!(status["job_id"], job.to_string(), "{status}");
    assert_eq!(status["status"], "progress");
    assert_eq!(status["task_status"], "running");
    // Read from the database, where a running job's progress is saved about once a second.
    assert!(
        status["processed"].as_i64().is_some_and(|done| done < 15),
        "{status}"
    );
    assert_timestamp(&status);

    wait_for(&server, job, TaskStatus::Completed).await;
    socket.send_json(json!({ "type": "get_status" })).await;
    let status = receive_until(&mut socket, is_status).await.pop().unwrap();
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["task_status"], "completed");
    assert_eq!(status["results"], json!({ "steps": 15, "attempt": 1 }));
    assert_eq!(status["processed"], 15);
    server.stop().await;
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_socket_stays_open() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let job = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, job, TaskStatus::Completed).await;
    let mut on_bulk = bulk(&server, &actors.user_a, job).await;
    on_bulk.receive_json().await;
    let snapshot = on_bulk.receive_json().await;
    assert_eq!(
        (
            snapshot["status"].as_str(),
            snapshot["results"]["steps"].as_i64()
        ),
        (Some("completed"), Some(1))
    );
    let mut on_progress = progress(&server, &actors.user_a, "imports").await;
    assert_greeting(&on_progress.receive_json().await, "topic_id", "imports");

    for socket in [&mut on_bulk, &mut on_progress] {
        for frame in ["not json", "{", "{\"type\":\"ping\""] {
            socket.send_text(frame).await;
            assert_eq!(
                socket.receive_json().await,
                json!({ "type": "error", "message": "Invalid JSON message" }),
                "for {frame}"
            );
            assert_answers_ping(socket).await;
        }
        socket.send_json(json!({ "type": "dance" })).await;
        assert_eq!(
            socket.receive_json().await,
            json!({ "type": "error", "message": "Unknown message type: dance" })
        );
        for frame in ["[]", "42", r#"{"type":7}"#, r#"{"job_id":"x"}"#] {
            socket.send_text(frame).await;
            let error = socket.receive_json().await;
            assert_eq!(error["type"], "error", "for {frame}");
            assert!(
                error["message"].as_str().unwrap().contains("type"),
                "{error}"
            );
        }
        socket.send_binary(vec![1, 2, 3]).await;
        assert_eq!(socket.receive_json().await["type"], "error");
        assert_answers_ping(socket).await;
    }

    // Following other jobs is for the progress endpoint.
    on_bulk
        .send_json(json!({ "type": "subscribe_job", "job_id": job }))
        .await;
    assert_eq!(
        on_bulk.receive_json().await,
        json!({ "type": "error", "message": "Unknown message type: subscribe_job" })
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn unknown_malformed_or_foreign_jobs_get_an_error_and_close_1008(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let anns = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, anns, TaskStatus::Completed).await;
    let unknown = Uuid::now_v7();
    let cases = [
        (
            &actors.user_b,
            anns.to_string(),
            "Job not found",
            "job not found",
        ),
        (
            &actors.user_a,
            unknown.to_string(),
            "Job not found",
            "job not found",
        ),
        (
            &actors.user_a,
            "not-a-uuid".to_owned(),
            "Invalid job id",
            "invalid job id",
        ),
        (
            &actors.user_a,
            "42".to_owned(),
            "Invalid job id",
            "invalid job id",
        ),
    ];
    for (actor, job_id, message, reason) in cases {
        let mut socket = bulk(&server, actor, &job_id).await;
        assert_eq!(
            socket.receive_json().await,
            json!({ "type": "error", "message": message, "job_id": job_id }),
            "{} opening {job_id}",
            actor.label
        );
        let close = socket.receive_close().await.expect("a close frame");
        assert_eq!(close.code, CloseCode::Policy);
        assert_eq!(close.reason.as_str(), reason);
    }

    // The owner and administrators may follow the job.
    for actor in [&actors.user_a, &actors.admin] {
        let mut socket = bulk(&server, actor, anns).await;
        assert_greeting(&socket.receive_json().await, "job_id", &anns.to_string());
        assert_eq!(socket.receive_json().await["status"], "completed");
    }

    // A topic is a label of at most 200 printable characters.
    let mut socket = progress(&server, &actors.user_a, &"t".repeat(201)).await;
    assert_eq!(
        socket.receive_json().await,
        json!({ "type": "error", "message": "Invalid topic id" })
    );
    assert_eq!(
        socket.receive_close().await.unwrap().code,
        CloseCode::Policy
    );
    let mut socket = progress(&server, &actors.user_a, "tab%09stop").await;
    assert_eq!(socket.receive_json().await["type"], "error");
    assert_eq!(
        socket.receive_close().await.unwrap().code,
        CloseCode::Policy
    );
    let topic = "t".repeat(200);
    let mut socket = progress(&server, &actors.user_a, &topic).await;
    assert_greeting(&socket.receive_json().await, "topic_id", &topic);
    server.stop().await;
}

#[tokio::test]
async fn upgrades_need_a_signed_in_caller_from_this_site() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let job = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    for path in [
        format!("/ws/bulk-process/{job}"),
        "/ws/progress/imports".to_owned(),
    ] {
        let anonymous = actors.anonymous.websocket(&server, &path).await;
        assert_eq!(anonymous.err(), Some(StatusCode::UNAUTHORIZED), "{path}");

        let cookie = actors.user_a.cookie.clone().unwrap();
        let hijack = server
            .websocket_with(
                &path,
                &[
                    (header::COOKIE, cookie),
                    (header::ORIGIN, "http://evil.example".into()),
                ],
            )
            .await;
        assert_eq!(hijack.err(), Some(StatusCode::FORBIDDEN), "{path}");
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_progress_endpoint_follows_the_jobs_subscribed_to(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors, blocker) = single_slot(backend).await;
    let job = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 3, "step_ms": 10 }),
    )
    .await;
    let bobs = enqueue(&server, Some("bob"), "test.steps", json!({ "steps": 1 })).await;
    let mut socket = progress(&server, &actors.user_a, "bulk-analysis").await;
    assert_greeting(&socket.receive_json().await, "topic_id", "bulk-analysis");

    // Refusals leave the socket open.
    let refusals = [
        (
            json!(bobs),
            json!({ "type": "error", "message": "Job not found", "job_id": bobs }),
        ),
        (json!(Uuid::now_v7()), json!("Job not found")),
        (
            json!("nope"),
            json!({ "type": "error", "message": "Invalid job id", "job_id": "nope" }),
        ),
        (
            json!(12),
            json!({ "type": "error", "message": "Invalid job id" }),
        ),
        (
            Value::Null,
            json!({ "type": "error", "message": "Missing job_id" }),
        ),
    ];
    for (job_id, expected) in refusals {
        socket
            .send_json(json!({ "type": "subscribe_job", "job_id": job_id }))
            .await;
        let error = socket.receive_json().await;
        if expected.is_string() {
            assert_eq!(error["message"], expected, "for {job_id}");
        } else {
            assert_eq!(error, expected, "for {job_id}");
        }
        assert_answers_ping(&mut socket).await;
    }

    for id in [job, blocker] {
        socket
            .send_json(json!({ "type": "subscribe_job", "job_id": id }))
            .await;
        let subscribed = socket.receive_json().await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        assert_eq!(subscribed["job_id"], id.to_string());
        assert_timestamp(&subscribed);
        let snapshot = socket.receive_json().await;
        assert_eq!(snapshot["snapshot"], true, "{snapshot}");
        assert_eq!(snapshot["job_id"], id.to_string());
    }
    // Subscribing again answers a fresh snapshot, each request its own.
    for _ in 0..2 {
        socket
            .send_json(json!({ "type": "subscribe_job", "job_id": job }))
            .await;
    }
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let message = socket.receive_json().await;
        if message["job_id"] == job.to_string() {
            answers.push(message);
        }
    }
    for pair in answers.chunks(2) {
        assert_eq!(pair[0]["type"], "subscribed", "{answers:?}");
        assert_eq!(pair[1]["snapshot"], true, "{answers:?}");
        assert_eq!(pair[1]["task_status"], "pending");
    }

    // The blocker ends cancelled, then the job runs to its end: both on the one socket.
    release(&server, blocker).await;
    let mut endings = Vec::new();
    let updates = receive_until(&mut socket, |message| {
        is_ending(message) && message["job_id"] == job.to_string()
    })
    .await;
    for update in &updates {
        assert_eq!(update["type"], "job_update", "{update}");
        if is_ending(update) {
            endings.push(update.clone());
        }
    }
    assert_eq!(endings.len(), 2, "{endings:?}");
    let (cancelled, completed) = (&endings[0], &endings[1]);
    assert_eq!(cancelled["job_id"], blocker.to_string());
    assert_eq!(cancelled["status"], "error");
    assert_eq!(cancelled["error"], "cancelled");
    assert_eq!(cancelled["task_status"], "cancelled");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["results"], json!({ "steps": 3, "attempt": 1 }));

    // get_status here names its job.
    socket
        .send_json(json!({ "type": "get_status", "job_id": job }))
        .await;
    let status = socket.receive_json().await;
    assert_eq!(
        (status["type"].as_str(), status["status"].as_str()),
        (Some("job_status"), Some("completed"))
    );
    socket.send_json(json!({ "type": "get_status" })).await;
    assert_eq!(socket.receive_json().await["message"], "Missing job_id");

    socket
        .send_json(json!({ "type": "unsubscribe_job", "job_id": job }))
        .await;
    let unsubscribed = socket.receive_json().await;
    assert_eq!(unsubscribed["type"], "unsubscribed");
    assert_eq!(unsubscribed["job_id"], job.to_string());
    assert_answers_ping(&mut socket).await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_failed_job_ends_with_an_error_update(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors, blocker) = single_slot(backend).await;
    let job = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 3, "step_ms": 10, "fail_at": 2 }),
    )
    .await;
    let mut socket = bulk(&server, &actors.user_a, job).await;
    socket.receive_json().await;
    assert_eq!(socket.receive_json().await["task_status"], "pending");
    release(&server, blocker).await;
    let updates = receive_until(&mut socket, is_ending).await;
    let failed = updates.last().unwrap();
    assert_eq!(failed["status"], "error", "{updates:?}");
    assert_eq!(failed["task_status"], "failed");
    assert_eq!(failed["error"], "step 2 failed");
    assert!(failed.get("results").is_none());
    assert!(
        updates[..updates.len() - 1]
            .iter()
            .all(|update| update["status"] == "progress")
    );
    assert_answers_ping(&mut socket).await;
    server.stop().await;
}

#[tokio::test]
async fn job_detail_cannot_overwrite_the_envelope_and_stale_updates_are_not_sent() {
    let (server, actors, _blocker) = single_slot(Backend::Sqlite).await;
    let job = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    let mut socket = bulk(&server, &actors.user_a, job).await;
    socket.receive_json().await;
    assert_eq!(socket.receive_json().await["snapshot"], true);

    // The job waits for the slot, so these updates are the only ones it gets.
    let known = task(&server, job).await.last_event_seq;
    let detail = |seq: i64, data: Value| TaskUpdate {
        task_id: job,
        owner_id: None,
        status: TaskStatus::Running,
        cancel_requested: false,
        progress: TaskProgress {
            processed_items: seq,
            ..TaskProgress::default()
        },
        seq,
        event: Some(TaskEvent {
            seq,
            kind: TaskEventKind::Detail,
            data,
            created_at: chrono::Utc::now(),
        }),
    };
    let hub = &server.state().live;
    hub.deliver(&detail(known, json!({ "stale": true })));
    hub.deliver(&detail(
        known + 1,
        json!({
            "type": "pong",
            "job_id": Uuid::now_v7(),
            "status": "completed",
            "timestamp": "long ago",
            "task_status": "completed",
            "snapshot": true,
            "batch_completed": 3,
            "total_batches": 8,
        }),
    ));
    let update = socket.receive_json().await;
    assert!(
        update.get("stale").is_none(),
        "the snapshot already counted it: {update}"
    );
    assert_eq!(update["type"], "job_update", "{update}");
    assert_eq!(update["job_id"], job.to_string());
    assert_eq!(update["status"], "batch_update");
    assert_eq!(update["task_status"], "running");
    assert!(update.get("snapshot").is_none());
    assert_timestamp(&update);
    assert_eq!(
        (
            update["batch_completed"].as_i64(),
            update["total_batches"].as_i64()
        ),
        (Some(3), Some(8))
    );
    assert_eq!(update["processed"].as_i64(), Some(known + 1));
    server.stop().await;
}
