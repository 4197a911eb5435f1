//! Creating tasks and waiting for them to get somewhere.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tidings::{
    api::tasks::{Task, TaskEvent, TaskStatus},
    engine::TaskRequest,
};
use uuid::Uuid;

use super::{Actor, TestServer};

/// How long a test waits for a task to reach a state before failing. Generous: a slow machine
/// must not make a correct engine fail.
const PATIENCE: Duration = Duration::from_secs(30);

/// A task request of `kind` with `input`, owned by `owner` (a username) or the system.
pub async fn request(
    server: &TestServer,
    owner: Option<&str>,
    kind: &str,
    input: Value,
) -> TaskRequest {
    let owner_id = match owner {
        Some(username) => Some(
            server
                .state()
                .db
                .user_by_username(username)
                .await
                .unwrap()
                .expect("the owner exists")
                .id,
        ),
        None => None,
    };
    TaskRequest {
        kind: kind.into(),
        name: format!("{kind} test"),
        owner_id,
        input,
        priority: 0,
        retry_of: None,
    }
}

/// Enqueues a task and answers its id.
pub async fn enqueue(server: &TestServer, owner: Option<&str>, kind: &str, input: Value) -> Uuid {
    let request = request(server, owner, kind, input).await;
    server
        .state()
        .engine
        .enqueue(request)
        .await
        .expect("task enqueued")
}

pub async fn task(server: &TestServer, id: Uuid) -> Task {
    server
        .state()
        .db
        .task(id)
        .await
        .unwrap()
        .expect("the task exists")
}

pub async fn events(server: &TestServer, id: Uuid) -> Vec<TaskEvent> {
    server.state().db.task_events(id, 0, 10_000).await.unwrap()
}

/// Polls the task until `done` holds for it; panics with `what` after [`PATIENCE`].
pub async fn wait_until(
    server: &TestServer,
    id: Uuid,
    what: &str,
    done: impl Fn(&Task) -> bool,
) -> Task {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let current = task(server, id).await;
        if done(&current) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} never became {what}; it is {:?}",
            current.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the task has reached `status`.
pub async fn wait_for(server: &TestServer, id: Uuid, status: TaskStatus) -> Task {
    wait_until(server, id, status.as_str(), |task| task.status == status).await
}

/// Cancels task `id` through the REST API as `actor`, which must be answered 200, and waits
/// until it is cancelled.
pub async fn cancel(server: &TestServer, actor: &Actor, id: Uuid) -> Task {
    let response = actor
        .request(
            server,
            Method::DELETE,
            &format!("/api/background-tasks/task/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_for(server, id, TaskStatus::Cancelled).await
}
