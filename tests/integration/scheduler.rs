//! The scheduler: a configured kind runs on its own, owned by nobody, and a cluster's nodes
//! take each due run once.

use std::time::Duration;

use chrono::Utc;
use rstest::rstest;
use tidings::api::tasks::{Task, TaskFilter, TaskStatus};

use crate::support::{Backend, TestServer, tasks::wait_for};

async fn tasks_of(server: &TestServer, kind: &str) -> Vec<Task> {
    let filter = TaskFilter {
        kind: Some(kind.to_owned()),
        ..TaskFilter::default()
    };
    server.state().db.tasks(None, &filter, 10).await.unwrap()
}

#[rstest]
#[tokio::test]
async fn a_scheduled_keyword_check_runs_at_start_owned_by_nobody(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = TestServer::start_with(backend, |config| {
        config.analysis.keyword_check_interval_secs = Some(3600);
        config.analysis.auto_ingest_interval_secs = Some(3600);
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let scheduled = loop {
        if let Some(task) = tasks_of(&server, "keyword_check").await.pop() {
            break task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled keyword check started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(scheduled.owner_id, None);
    let done = wait_for(&server, scheduled.id, TaskStatus::Completed).await;
    assert_eq!(done.result.unwrap()["new_alerts"], 0);
    // Auto-ingest is disabled in its configuration (the default): its schedule waits.
    assert!(tasks_of(&server, "auto_ingest").await.is_empty());
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_due_run_is_taken_once_until_the_next_is_due(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let db = &server.state().db;
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    assert!(
        db.take_scheduled_run("demo", now, now + hour)
            .await
            .unwrap()
    );
    // A second node looking at the same moment finds it taken.
    assert!(
        !db.take_scheduled_run("demo", now, now + hour)
            .await
            .unwrap()
    );
    assert!(
        !db.take_scheduled_run("demo", now + hour / 2, now + hour * 2)
            .await
            .unwrap()
    );
    assert!(
        db.take_scheduled_run("demo", now + hour, now + hour * 2)
            .await
            .unwrap()
    );
    server.stop().await;
}
