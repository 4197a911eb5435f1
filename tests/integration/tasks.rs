//! The task engine on a real server and a real database: the state machine, the queue and its
//! limits, cancellation, timeouts, retries, recovery, retention and coalescing.

use std::time::Duration;

use chrono::Utc;
use rstest::rstest;
use serde_json::{Value, json};
use tidings::{
    api::tasks::{TaskEventKind, TaskStatus},
    db::{Database, Ending, NewTask, Round, Settlement},
    engine::EngineError,
    jobs::testing::child_ticks,
};
use uuid::Uuid;

use crate::support::{
    Backend, TestDatabase, TestServer,
    tasks::{enqueue, events, request, task, wait_for},
};

/// A task of `test.steps` that keeps a slot busy for about `steps × 50 ms`.
fn slow(steps: u64) -> Value {
    json!({ "steps": steps, "step_ms": 50 })
}

async fn start_with_limit(
    backend: Backend,
    max_concurrent: u32,
    per_user: Option<u32>,
) -> TestServer {
    let server = TestServer::start_with(backend, |config| {
        config.tasks.max_concurrent = max_concurrent;
        config.tasks.max_per_user = per_user;
    })
    .await;
    crate::support::Actors::sign_up(&server).await;
    server
}

#[rstest]
#[tokio::test]
async fn a_task_runs_to_completion_and_logs_every_step(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 25, "step_ms": 2 }),
    )
    .await;
    let done = wait_for(&server, id, TaskStatus::Completed).await;

    assert_eq!(done.owner.as_deref(), Some("ann"));
    assert_eq!(done.progress.progress, 100.0);
    assert_eq!(
        (done.progress.processed_items, done.progress.total_items),
        (25, Some(25))
    );
    assert_eq!(done.progress.current_item.as_deref(), Some("step 25"));
    assert_eq!(done.progress.stage.as_deref(), Some("completed"));
    assert_eq!(done.result, Some(json!({ "steps": 25, "attempt": 1 })));
    assert_eq!((done.error, done.attempt, done.max_attempts), (None, 1, 1));
    let started = done.started_at.expect("started_at");
    let completed = done.completed_at.expect("completed_at");
    assert!(done.created_at <= started && started <= completed);

    let log = events(&server, id).await;
    let seqs: Vec<i64> = log.iter().map(|event| event.seq).collect();
    assert_eq!(
        seqs,
        (1..=log.len() as i64).collect::<Vec<_>>(),
        "gapless sequence"
    );
    assert_eq!(done.last_event_seq, log.len() as i64);
    let statuses: Vec<&Value> = log
        .iter()
        .filter(|event| event.kind == TaskEventKind::Status)
        .map(|event| &event.data["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!("pending"), &json!("running"), &json!("completed")]
    );
    let stages: Vec<&Value> = log
        .iter()
        .filter(|event| event.kind == TaskEventKind::Stage)
        .map(|event| &event.data["stage"])
        .collect();
    assert_eq!(stages, [&json!("processing"), &json!("completed")]);
    let last_detail = log
        .iter()
        .rev()
        .find(|event| event.kind == TaskEventKind::Detail);
    assert_eq!(
        last_detail.map(|event| &event.data),
        Some(&json!({ "step": 20, "of": 25 }))
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_job_error_ends_the_task_failed_with_its_message(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 10, "fail_at": 4 }),
    )
    .await;
    let failed = wait_for(&server, id, TaskStatus::Failed).await;
    assert_eq!(failed.error.as_deref(), Some("step 4 failed"));
    assert_eq!(
        failed.result, None,
        "a failure is never a result with success: false"
    );
    assert_eq!(failed.progress.processed_items, 3);
    assert_eq!(failed.attempt, 1, "test.steps is not retryable");
    let last = events(&server, id).await.pop().unwrap();
    assert_eq!(
        last.data,
        json!({ "status": "failed", "error": "step 4 failed" })
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn ten_tasks_with_a_limit_of_three_all_finish_in_fifo_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(
            enqueue(
                &server,
                Some("ann"),
                "test.steps",
                json!({ "steps": 4, "step_ms": 25 }),
            )
            .await,
        );
    }
    let mut most_running = 0;
    loop {
        let summary = server.state().db.task_summary(None).await.unwrap();
        most_running = most_running.max(summary.running);
        if summary.completed == 10 {
            break;
        }
        assert!(server.state().engine.running_count() <= 3);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(most_running <= 3, "{most_running} ran at once");
    assert!(most_running >= 2, "the slots were used in parallel");
    let mut by_start = Vec::new();
    for &id in &ids {
        by_start.push((task(&server, id).await.started_at.unwrap(), id));
    }
    by_start.sort();
    let start_order: Vec<Uuid> = by_start.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        start_order, ids,
        "tasks start in the order they were created"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn waiting_tasks_know_their_place_and_priority_goes_first(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 1, None).await;
    let blocker = enqueue(&server, Some("ann"), "test.steps", slow(6)).await;
    wait_for(&server, blocker, TaskStatus::Running).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await);
    }
    let mut urgent = request(&server, Some("bob"), "test.steps", json!({ "steps": 1 })).await;
    urgent.priority = 10;
    let urgent = server.state().engine.enqueue(urgent).await.unwrap();

    let position = |id| {
        let server = &server;
        async move {
            let task = task(server, id).await;
            server.state().db.queue_position(&task).await.unwrap()
        }
    };
    assert_eq!(position(urgent).await, 1);
    for (index, &id) in waiting.iter().enumerate() {
        assert_eq!(position(id).await, index as i64 + 2);
    }
    let urgent_started = wait_for(&server, urgent, TaskStatus::Completed)
        .await
        .started_at;
    for id in waiting {
        let started = wait_for(&server, id, TaskStatus::Completed)
            .await
            .started_at;
        assert!(
            urgent_started < started,
            "the higher priority started first"
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_per_user_limit_lets_other_users_through(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, Some(1)).await;
    let mut anns = Vec::new();
    for _ in 0..3 {
        anns.push(enqueue(&server, Some("ann"), "test.steps", slow(4)).await);
    }
    let bobs = enqueue(&server, Some("bob"), "test.steps", slow(1)).await;
    wait_for(&server, bobs, TaskStatus::Completed).await;
    let second = task(&server, anns[1]).await;
    assert_eq!(
        second.status,
        TaskStatus::Pending,
        "ann's second task waits for her first"
    );
    for id in anns {
        wait_for(&server, id, TaskStatus::Completed).await;
    }
    let mut intervals = Vec::new();
    for task in server
        .state()
        .db
        .tasks(None, &Default::default(), 100)
        .await
        .unwrap()
    {
        if task.owner.as_deref() == Some("ann") {
            intervals.push((task.started_at.unwrap(), task.completed_at.unwrap()));
        }
    }
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "ann's tasks never overlapped: {pair:?}"
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn cancelling_a_pending_task_ends_it_before_it_starts(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 1, None).await;
    let blocker = enqueue(&server, Some("ann"), "test.steps", slow(4)).await;
    let waiting = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, blocker, TaskStatus::Running).await;
    let engine = &server.state().engine;
    let outcome = engine.cancel(&task(&server, waiting).await).await.unwrap();
    assert_eq!(outcome, tidings::engine::Cancellation::Cancelled);
    let cancelled = task(&server, waiting).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert!(cancelled.started_at.is_none() && cancelled.completed_at.is_some());
    wait_for(&server, blocker, TaskStatus::Completed).await;
    assert_eq!(
        task(&server, waiting).await.status,
        TaskStatus::Cancelled,
        "it never started"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn cancelling_a_running_task_stops_its_job_and_its_children(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.fanout",
        json!({ "children": 4 }),
    )
    .await;
    wait_for(&server, id, TaskStatus::Running).await;
    while child_ticks(id) < 8 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let engine = &server.state().engine;
    let outcome = engine.cancel(&task(&server, id).await).await.unwrap();
    assert_eq!(outcome, tidings::engine::Cancellation::Stopping);
    let cancelled = wait_for(&server, id, TaskStatus::Cancelled).await;
    assert!(cancelled.completed_at.is_some());
    let kinds: Vec<TaskEventKind> = events(&server, id)
        .await
        .iter()
        .map(|event| event.kind)
        .collect();
    assert!(kinds.contains(&TaskEventKind::CancelRequested), "{kinds:?}");

    let ticks = child_ticks(id);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        child_ticks(id),
        ticks,
        "the children stopped with their task"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_job_that_ignores_cancellation_is_dropped_after_its_grace(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let input = json!({ "steps": 1000, "step_ms": 20, "ignore_cancel": true });
    let id = enqueue(&server, Some("ann"), "test.steps", input).await;
    wait_for(&server, id, TaskStatus::Running).await;
    server
        .state()
        .engine
        .cancel(&task(&server, id).await)
        .await
        .unwrap();
    let asked = task(&server, id).await;
    assert!(asked.cancel_requested || asked.status == TaskStatus::Cancelled);
    let cancelled = wait_for(&server, id, TaskStatus::Cancelled).await;
    assert!(cancelled.progress.processed_items < 1000);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_task_past_its_kinds_timeout_fails_saying_so(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.deadline",
        json!({ "sleep_ms": 10_000 }),
    )
    .await;
    let failed = wait_for(&server, id, TaskStatus::Failed).await;
    assert_eq!(failed.error.as_deref(), Some("timed out after 300 ms"));
    let quick = enqueue(
        &server,
        Some("ann"),
        "test.deadline",
        json!({ "sleep_ms": 10 }),
    )
    .await;
    wait_for(&server, quick, TaskStatus::Completed).await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn retryable_failures_are_retried_after_a_backoff(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let recovers = enqueue(
        &server,
        Some("ann"),
        "test.flaky",
        json!({ "succeed_on_attempt": 3 }),
    )
    .await;
    let gives_up = enqueue(
        &server,
        Some("ann"),
        "test.flaky",
        json!({ "succeed_on_attempt": 9 }),
    )
    .await;

    let done = wait_for(&server, recovers, TaskStatus::Completed).await;
    assert_eq!((done.attempt, done.max_attempts), (3, 3));
    assert_eq!(done.result, Some(json!({ "succeeded_on_attempt": 3 })));
    let log = events(&server, recovers).await;
    let retries: Vec<usize> = (0..log.len())
        .filter(|&index| log[index].kind == TaskEventKind::Retry)
        .collect();
    assert_eq!(retries.len(), 2);
    for index in retries {
        let run_after: chrono::DateTime<Utc> =
            serde_json::from_value(log[index].data["run_after"].clone()).unwrap();
        let next_start = log[index..]
            .iter()
            .find(|event| event.data["status"] == "running")
            .expect("another attempt started");
        assert!(
            next_start.created_at >= run_after,
            "the next attempt waited for the backoff"
        );
    }

    let failed = wait_for(&server, gives_up, TaskStatus::Failed).await;
    assert_eq!(
        (failed.attempt, failed.error.as_deref()),
        (3, Some("attempt 3 failed"))
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn no_transition_leaves_a_final_state(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let id = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    let done = wait_for(&server, id, TaskStatus::Completed).await;
    let db = &server.state().db;
    let now = Utc::now();
    let error = server.state().engine.cancel(&done).await.unwrap_err();
    assert!(
        matches!(error, EngineError::AlreadyFinished(TaskStatus::Completed)),
        "{error}"
    );
    assert!(db.cancel_pending_task(id, now).await.unwrap().is_none());
    assert!(db.request_task_cancel(id, now).await.unwrap().is_none());
    let late = |ending| Settlement {
        id,
        ending,
        progress: done.progress.clone(),
        notice: None,
    };
    let settlements = [
        late(Ending::Retry {
            error: "again".into(),
            run_after: now,
        }),
        late(Ending::Failed("late".into())),
        late(Ending::Cancelled),
    ];
    let round = Round {
        settlements: &settlements,
        ..Round::default()
    };
    let settled = db.commit_round(&round, now).await.unwrap();
    assert_eq!(settled.settled, [None, None, None]);
    assert!(db.log_stage(id, "late", None, now).await.unwrap().is_none());
    let after = task(&server, id).await;
    assert_eq!(
        (after.status, after.error, after.last_event_seq),
        (TaskStatus::Completed, None, done.last_event_seq)
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_million_progress_calls_are_coalesced(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let mut updates = server.state().engine.subscribe();
    let started = std::time::Instant::now();
    let id = enqueue(
        &server,
        Some("ann"),
        "test.spin",
        json!({ "calls": 1_000_000 }),
    )
    .await;
    let done = wait_for(&server, id, TaskStatus::Completed).await;
    let elapsed = started.elapsed();
    assert_eq!(done.progress.processed_items, 1_000_000);

    let mut published = 0;
    while let Ok(update) = updates.try_recv() {
        if update.task_id == id {
            published += 1;
        }
    }
    // About ten a second, plus the status changes.
    let allowed = 10 * elapsed.as_secs() as usize + 15;
    assert!(published <= allowed, "{published} updates in {elapsed:?}");
    let logged = events(&server, id).await.len();
    assert_eq!(
        logged, 3,
        "progress is not logged per call: pending, running, completed"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn pruning_removes_only_finished_tasks_past_their_age(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 1, None).await;
    let finished = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, finished, TaskStatus::Completed).await;
    let running = enqueue(&server, Some("ann"), "test.steps", slow(4)).await;
    let pending = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, running, TaskStatus::Running).await;

    let engine = &server.state().engine;
    assert_eq!(
        engine
            .prune(None, Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(engine.prune(None, Utc::now()).await.unwrap(), 1);
    assert!(server.state().db.task(finished).await.unwrap().is_none());
    assert!(
        events(&server, finished).await.is_empty(),
        "its log went with it"
    );
    for id in [running, pending] {
        assert!(server.state().db.task(id).await.unwrap().is_some());
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_scheduled_pruner_applies_the_retention_period(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = TestServer::start_with(backend, |config| {
        config.tasks.retention_hours = 24;
        config.tasks.prune_interval_secs = 1;
    })
    .await;
    let old = enqueue(&server, None, "test.steps", json!({ "steps": 1 })).await;
    let recent = enqueue(&server, None, "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, old, TaskStatus::Completed).await;
    wait_for(&server, recent, TaskStatus::Completed).await;
    backdate_completion(&server.state().db, old, chrono::Duration::hours(25)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.state().db.task(old).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pruner never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.state().db.task(recent).await.unwrap().is_some());
    server.stop().await;
}

/// Moves a finished task's completion into the past.
async fn backdate_completion(db: &Database, id: Uuid, age: chrono::Duration) {
    let completed_at = Utc::now() - age;
    let sql = "UPDATE tasks SET completed_at = $1 WHERE id = $2";
    let rows = match db {
        Database::Sqlite(pool) => {
            let query = sqlx::query(sql).bind(completed_at).bind(id);
            query.execute(pool).await.unwrap().rows_affected()
        }
        Database::Postgres(pool) => {
            let query = sqlx::query(sql).bind(completed_at).bind(id);
            query.execute(pool).await.unwrap().rows_affected()
        }
    };
    assert_eq!(rows, 1);
}

#[rstest]
#[tokio::test]
async fn a_graceful_restart_requeues_retryable_tasks_and_fails_the_others(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let plain = enqueue(&server, Some("ann"), "test.steps", slow(200)).await;
    let retryable = enqueue(&server, Some("ann"), "test.retryable_steps", slow(20)).await;
    wait_for(&server, plain, TaskStatus::Running).await;
    wait_for(&server, retryable, TaskStatus::Running).await;

    let server = server.restart().await;
    let failed = wait_for(&server, plain, TaskStatus::Failed).await;
    assert_eq!(
        failed.error.as_deref(),
        Some("interrupted by server shutdown")
    );
    let finished = wait_for(&server, retryable, TaskStatus::Completed).await;
    assert_eq!(
        finished.attempt, 2,
        "the interrupted attempt counted, the second finished"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn enqueue_refuses_unknown_kinds_and_bad_input(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = start_with_limit(backend, 3, None).await;
    let engine = &server.state().engine;
    let attempts = [
        ("test.nope", json!({ "steps": 1 }), "unknown task kind"),
        ("test.steps", json!({ "steps": "many" }), "invalid input"),
        (
            "test.steps",
            json!({ "steps": 1, "extra": true }),
            "invalid input",
        ),
        ("test.steps", json!(null), "invalid input"),
    ];
    for (kind, input, expected) in attempts {
        let error = engine
            .enqueue(request(&server, Some("ann"), kind, input).await)
            .await
            .unwrap_err();
        assert!(error.to_string().contains(expected), "{kind}: {error}");
    }
    for name in ["", "   ", "a\u{0}b", &"x".repeat(201)] {
        let mut bad = request(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
        bad.name = name.to_owned();
        let error = engine.enqueue(bad).await.unwrap_err();
        assert!(
            matches!(error, EngineError::InvalidTask(_)),
            "{name:?}: {error}"
        );
    }
    let summary = server.state().db.task_summary(None).await.unwrap();
    assert_eq!(summary.total, 0, "nothing was stored");
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn one_batch_records_several_endings_and_claims_in_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let database = TestDatabase::create(backend).await;
    let db = database.open().await;
    let now = Utc::now();
    let new_tasks: Vec<NewTask> = [0, 5, 0, 0]
        .into_iter()
        .map(|priority| NewTask {
            id: Uuid::now_v7(),
            kind: "test.steps".into(),
            name: "batch".into(),
            owner_id: None,
            input: json!({ "steps": 1 }),
            max_attempts: 3,
            priority,
            retry_of: None,
            created_at: now,
        })
        .collect();
    let ids: Vec<Uuid> = new_tasks.iter().map(|task| task.id).collect();
    // Tasks created in a round can be claimed in the same round.
    let round = Round {
        inserts: &new_tasks,
        claim: 3,
        ..Round::default()
    };
    let first = db.commit_round(&round, now).await.unwrap();
    assert_all_logged(&first.inserted, 1);
    let claimed: Vec<Uuid> = first.claimed.iter().map(|(task, _)| task.id).collect();
    assert_eq!(
        claimed,
        [ids[1], ids[0], ids[2]],
        "priority first, then FIFO"
    );
    assert!(
        first
            .claimed
            .iter()
            .all(|(task, event)| task.attempt == 1 && event.seq == 2)
    );

    let ended = |id, ending| Settlement {
        id,
        ending,
        progress: Default::default(),
        notice: None,
    };
    let later = now + chrono::Duration::seconds(30);
    let settlements = [
        ended(ids[1], Ending::Completed(json!({ "ok": true }))),
        ended(ids[0], Ending::Failed("broken".into())),
        ended(
            ids[2],
            Ending::Retry {
                error: "again".into(),
                run_after: later,
            },
        ),
    ];
    let round = Round {
        settlements: &settlements,
        claim: 3,
        ..Round::default()
    };
    let second = db.commit_round(&round, now).await.unwrap();
    assert_all_logged(&second.settled, 3);
    let claimed: Vec<Uuid> = second.claimed.iter().map(|(task, _)| task.id).collect();
    assert_eq!(claimed, [ids[3]], "the retry is not due yet");

    let status = |id| {
        let db = db.clone();
        async move { db.task(id).await.unwrap().unwrap() }
    };
    let completed = status(ids[1]).await;
    assert_eq!(
        (completed.status, completed.result),
        (TaskStatus::Completed, Some(json!({ "ok": true })))
    );
    assert_eq!(completed.progress.progress, 100.0);
    let failed = status(ids[0]).await;
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (TaskStatus::Failed, Some("broken"))
    );
    let retried = status(ids[2]).await;
    assert_eq!(
        (retried.status, retried.completed_at),
        (TaskStatus::Pending, None)
    );
    assert!(retried.run_after > now);
    let log = db.task_events(ids[2], 0, 10).await.unwrap();
    assert_eq!(
        log.last().map(|event| event.kind),
        Some(TaskEventKind::Retry)
    );
    db.close().await;
}

/// Every change of a round was logged, with sequence number `seq`.
fn assert_all_logged(events: &[Option<tidings::api::tasks::TaskEvent>], seq: i64) {
    for event in events {
        assert_eq!(event.as_ref().map(|event| event.seq), Some(seq));
    }
}
