//! The REST routes of `/api/background-tasks` and the task server functions: answers, bad
//! input, and who may see and cancel what.

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::{api::tasks::TaskStatus, protocol::ServerMessage};
use uuid::Uuid;

use crate::support::{
    Actors, Backend, Expect, TestServer,
    tasks::{enqueue, task, wait_for},
};

const BASE: &str = "/api/background-tasks";

/// Ann and bob each own a long-running task; ann also has a finished one.
struct Fixture {
    server: TestServer,
    actors: Actors,
    anns: Uuid,
    bobs: Uuid,
    anns_finished: Uuid,
}

async fn fixture(backend: Backend) -> Fixture {
    let (server, actors) = TestServer::with_actors(backend).await;
    let anns_finished = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, anns_finished, TaskStatus::Completed).await;
    let long = json!({ "steps": 2000, "step_ms": 50 });
    let anns = enqueue(&server, Some("ann"), "test.steps", long.clone()).await;
    let bobs = enqueue(&server, Some("bob"), "test.steps", long).await;
    Fixture {
        server,
        actors,
        anns,
        bobs,
        anns_finished,
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

#[rstest]
#[tokio::test]
async fn a_task_is_visible_to_its_owner_and_admins_only(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns,
        ..
    } = fixture(backend).await;
    let path = format!("{BASE}/task/{anns}");
    let owner_only = Expect {
        user_b: StatusCode::NOT_FOUND,
        ..Expect::SIGNED_IN
    };
    actors
        .check(owner_only, |actor| actor.get(&server, &path))
        .await;
    actors
        .check(owner_only, |actor| {
            actor.call(&server, "tasks/get", &[("id", &anns.to_string())])
        })
        .await;
    actors
        .check(owner_only, |actor| {
            actor.get(&server, &format!("{BASE}/task/{anns}/events"))
        })
        .await;

    let (_, body) = json_of(actors.user_a.get(&server, &path).send().await.unwrap()).await;
    assert_eq!(body["success"], true);
    let shown = &body["task"];
    assert_eq!(shown["id"], anns.to_string());
    assert_eq!(shown["owner"], "ann");
    assert_eq!(shown["kind"], "test.steps");
    for field in [
        "name",
        "status",
        "progress",
        "total_items",
        "processed_items",
        "current_item",
        "stage",
        "message",
        "input",
        "result",
        "error",
        "metadata",
        "attempt",
        "max_attempts",
        "priority",
        "created_at",
        "started_at",
        "completed_at",
        "heartbeat_at",
    ] {
        assert!(shown.get(field).is_some(), "the task has {field}: {shown}");
    }
    assert!(
        shown.get("owner_id").is_none(),
        "internal ids stay internal"
    );
    assert!(
        shown["created_at"].as_str().unwrap().ends_with('Z'),
        "UTC timestamps"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn only_the_owner_or_an_admin_can_cancel(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns,
        bobs,
        ..
    } = fixture(backend).await;
    let cancel = |id: Uuid| format!("{BASE}/task/{id}");
    for actor in [&actors.anonymous, &actors.user_b] {
        let status = actor
            .request(&server, Method::DELETE, &cancel(anns))
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND,
            "{status}"
        );
        let status = actor
            .call_status(&server, "tasks/cancel", &[("id", &anns.to_string())])
            .await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND,
            "{status}"
        );
    }
    let untouched = task(&server, anns).await;
    assert!(!untouched.status.is_finished() && !untouched.cancel_requested);

    let response = actors
        .user_a
        .request(&server, Method::DELETE, &cancel(anns))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert!(body["message"].is_string());
    wait_for(&server, anns, TaskStatus::Cancelled).await;

    let response = actors
        .admin
        .request(&server, Method::DELETE, &cancel(bobs))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_for(&server, bobs, TaskStatus::Cancelled).await;

    let again = actors
        .user_a
        .request(&server, Method::DELETE, &cancel(anns))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(again).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    assert!(
        body["error"].as_str().unwrap().contains("cancelled"),
        "{body}"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn unknown_and_malformed_ids_are_clear_errors(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns_finished,
        ..
    } = fixture(backend).await;
    let ann = &actors.user_a;
    let unknown = Uuid::now_v7();
    let cases = [
        (
            Method::GET,
            format!("{BASE}/task/{unknown}"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            format!("{BASE}/task/{unknown}"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            format!("{BASE}/task/not-a-uuid"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("{BASE}/task/1%27%20OR%201=1"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("{BASE}/task/{anns_finished}"),
            StatusCode::CONFLICT,
        ),
        (
            Method::GET,
            format!("{BASE}/task/{anns_finished}/events?after=-1"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("{BASE}/nothing-here"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("{BASE}/task/{unknown}/retry"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("{BASE}/task/not-a-uuid/retry"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, expected) in cases {
        let response = ann
            .request(&server, method.clone(), &path)
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            body["error"].is_string() && body["code"].is_string(),
            "{body}"
        );
    }
    assert_eq!(
        task(&server, anns_finished).await.status,
        TaskStatus::Completed
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn listings_are_scoped_filtered_and_paged(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns,
        bobs,
        anns_finished,
    } = fixture(backend).await;
    let list = |actor: &crate::support::Actor, query: &str| {
        actor.get(&server, &format!("{BASE}/tasks{query}")).send()
    };
    let ids = |body: &Value| -> Vec<String> {
        body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, body) = json_of(list(&actors.user_a, "").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&body),
        [anns.to_string(), anns_finished.to_string()],
        "newest first, her own"
    );
    assert_eq!(body["summary"]["total"], 2);
    assert_eq!(body["summary"]["completed"], 1);

    let (_, body) = json_of(list(&actors.admin, "").await.unwrap()).await;
    assert_eq!(
        ids(&body),
        [
            bobs.to_string(),
            anns.to_string(),
            anns_finished.to_string()
        ]
    );

    let (_, body) = json_of(list(&actors.user_a, "?status=completed").await.unwrap()).await;
    assert_eq!(ids(&body), [anns_finished.to_string()]);
    let (_, body) = json_of(list(&actors.admin, "?kind=test.nope").await.unwrap()).await;
    assert_eq!(ids(&body), Vec::<String>::new());

    let (_, first) = json_of(list(&actors.admin, "?limit=2").await.unwrap()).await;
    assert_eq!(ids(&first), [bobs.to_string(), anns.to_string()]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = json_of(
        list(&actors.admin, &format!("?limit=2&cursor={cursor}"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ids(&second), [anns_finished.to_string()]);
    assert_eq!(second["next_cursor"], Value::Null);

    for bad in [
        "?status=done",
        "?status=RUNNING",
        "?limit=0",
        "?limit=201",
        "?limit=ten",
        "?cursor=abc",
    ] {
        let (status, body) = json_of(list(&actors.user_a, bad).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["code"], "bad_request");
    }
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.get(&server, &format!("{BASE}/tasks"))
        })
        .await;
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.get(&server, &format!("{BASE}/summary"))
        })
        .await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_summary_counts_the_callers_tasks(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture { server, actors, .. } = fixture(backend).await;
    let summary =
        |actor: &crate::support::Actor| actor.get(&server, &format!("{BASE}/summary")).send();
    let (_, ann) = json_of(summary(&actors.user_a).await.unwrap()).await;
    assert_eq!(ann["success"], true);
    assert_eq!(ann["summary"]["total"], 2);
    let (_, bob) = json_of(summary(&actors.user_b).await.unwrap()).await;
    assert_eq!(bob["summary"]["total"], 1);
    let (_, admin) = json_of(summary(&actors.admin).await.unwrap()).await;
    assert_eq!(admin["summary"]["total"], 3);
    let counted: i64 = ["pending", "running", "completed", "failed", "cancelled"]
        .iter()
        .map(|status| admin["summary"][status].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 3);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn cleanup_removes_the_callers_finished_tasks(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns,
        bobs,
        anns_finished,
    } = fixture(backend).await;
    let bobs_finished = enqueue(&server, Some("bob"), "test.steps", json!({ "steps": 1 })).await;
    wait_for(&server, bobs_finished, TaskStatus::Completed).await;
    let cleanup = |actor: &crate::support::Actor, query: &str| {
        actor
            .request(&server, Method::POST, &format!("{BASE}/cleanup{query}"))
            .send()
    };

    let (status, body) = json_of(cleanup(&actors.user_a, "").await.unwrap()).await;
    assert_eq!(
        (status, &body["removed"]),
        (StatusCode::OK, &json!(0)),
        "the default age is 24 h"
    );
    for bad in ["?max_age_hours=-1", "?max_age_hours=soon"] {
        let (status, _) = json_of(cleanup(&actors.user_a, bad).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (_, body) = json_of(cleanup(&actors.user_a, "?max_age_hours=0").await.unwrap()).await;
    assert_eq!(body["removed"], 1, "{body}");
    assert!(body["message"].as_str().unwrap().contains('1'));
    assert!(
        server
            .state()
            .db
            .task(anns_finished)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        server
            .state()
            .db
            .task(bobs_finished)
            .await
            .unwrap()
            .is_some(),
        "not bob's"
    );
    for id in [anns, bobs] {
        assert!(
            server.state().db.task(id).await.unwrap().is_some(),
            "unfinished tasks stay"
        );
    }
    let (_, body) = json_of(cleanup(&actors.admin, "?max_age_hours=0").await.unwrap()).await;
    assert_eq!(body["removed"], 1);
    let (status, _) = json_of(cleanup(&actors.anonymous, "").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_retry_is_a_new_task_linked_to_the_finished_one(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns,
        anns_finished,
        ..
    } = fixture(backend).await;
    let retry = |actor: &crate::support::Actor, id: Uuid| {
        actor
            .request(&server, Method::POST, &format!("{BASE}/task/{id}/retry"))
            .send()
    };
    let (status, _) = json_of(retry(&actors.user_b, anns_finished).await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_of(retry(&actors.user_a, anns).await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a running task is not retried"
    );

    let (status, body) = json_of(retry(&actors.user_a, anns_finished).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new: Uuid = body["task_id"].as_str().unwrap().parse().unwrap();
    assert_ne!(new, anns_finished);
    let retried = wait_for(&server, new, TaskStatus::Completed).await;
    assert_eq!(retried.retry_of, Some(anns_finished));
    assert_eq!(retried.owner.as_deref(), Some("ann"));
    assert_eq!(
        task(&server, anns_finished).await.status,
        TaskStatus::Completed,
        "the old one is unchanged"
    );
    server.stop().await;
}

/// The runs of the ingest jobs work on what every user shares, and the ingest page shows them
/// to everyone: anyone signed in may open and watch them, only the owner and administrators
/// act on them.
#[rstest]
#[tokio::test]
async fn everyone_may_watch_a_shared_ingest_run_and_only_its_owner_act_on_it(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let run = enqueue(&server, Some("ann"), "keyword_check", json!({})).await;
    wait_for(&server, run, TaskStatus::Completed).await;
    let watchers = Expect::SIGNED_IN;
    actors
        .check(watchers, |actor| {
            actor.get(&server, &format!("{BASE}/task/{run}"))
        })
        .await;
    actors
        .check(watchers, |actor| {
            actor.get(&server, &format!("{BASE}/task/{run}/events"))
        })
        .await;
    actors
        .check(watchers, |actor| {
            actor.call(&server, "tasks/get", &[("id", &run.to_string())])
        })
        .await;
    let mut socket = actors.user_b.websocket(&server, "/ws").await.unwrap();
    socket.receive_message().await; // hello
    socket
        .send_json(json!({ "type": "subscribe", "topic": { "kind": "task", "id": run } }))
        .await;
    match socket.receive_message().await {
        ServerMessage::TaskSnapshot { task, .. } => assert_eq!(task.id, run),
        other => panic!("bob watches ann's run live, got {other:?}"),
    }

    let retry = format!("{BASE}/task/{run}/retry");
    for (method, path) in [
        (Method::POST, &retry),
        (Method::DELETE, &format!("{BASE}/task/{run}")),
    ] {
        let response = actors
            .user_b
            .request(&server, method, path)
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{path}: {body}"
        );
    }
    let status = actors
        .user_b
        .call_status(&server, "tasks/retry", &[("id", &run.to_string())])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        server
            .state()
            .db
            .tasks(None, &Default::default(), 10)
            .await
            .unwrap()
            .len(),
        1,
        "bob started nothing"
    );

    let response = actors
        .user_a
        .request(&server, Method::POST, &retry)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "the owner retries it: {body}");
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn starting_a_task_checks_its_kind_and_input(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let start = |kind: &'static str, input: &'static str| {
        actors.user_a.call(
            &server,
            "tasks/start",
            &[("kind", kind), ("name", "  Mine  "), ("input", input)],
        )
    };
    for (kind, input, reason) in [
        ("test.steps", "{\"steps\": ", "not valid JSON"),
        ("test.steps", "{\"steps\": -1}", "invalid input"),
        (
            "test.steps",
            "{\"steps\": 1, \"extra\": true}",
            "invalid input",
        ),
        ("test.nope", "{}", "test.nope"),
    ] {
        let response = start(kind, input).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{kind} {input}");
        let text = response.text().await.unwrap();
        assert!(text.contains(reason), "{kind} {input}: {text}");
    }
    let summary = server.state().db.task_summary(None).await.unwrap();
    assert_eq!(summary.total, 0, "refused starts create nothing");

    let response = start("test.steps", "{\"steps\": 1}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["name"], "Mine", "the name is trimmed");
    assert_eq!(started["owner"], "ann");
    let id: Uuid = started["id"].as_str().unwrap().parse().unwrap();
    wait_for(&server, id, TaskStatus::Completed).await;

    // An empty name and input mean the kind's name and `{}`.
    let response = actors
        .user_a
        .call(
            &server,
            "tasks/start",
            &[("kind", "test.flaky"), ("name", ""), ("input", "")],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "test.flaky needs its input"
    );
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "tasks/kinds", &[])
        })
        .await;
    let kinds: Vec<String> = actors
        .user_a
        .call(&server, "tasks/kinds", &[])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(kinds.contains(&"test.steps".to_owned()), "{kinds:?}");
    assert!(kinds.is_sorted());
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn listings_search_by_text_and_owner(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    use tidings::api::tasks::TaskFilter;

    let Fixture { server, .. } = fixture(backend).await;
    let db = &server.state().db;
    for (owner, name) in [
        ("ann", "Import 100% of CRM_data"),
        ("bob", "Import crm data"),
    ] {
        let mut request = crate::support::tasks::request(
            &server,
            Some(owner),
            "test.steps",
            json!({ "steps": 1 }),
        )
        .await;
        request.name = name.to_owned();
        let id = server.state().engine.enqueue(request).await.unwrap();
        wait_for(&server, id, TaskStatus::Completed).await;
    }
    let names = |filter: TaskFilter| async move {
        let tasks = db.tasks(None, &filter, 50).await.unwrap();
        let mut names: Vec<String> = tasks.into_iter().map(|task| task.name).collect();
        names.sort();
        names
    };
    let search = |text: &str| TaskFilter {
        text: Some(text.to_owned()),
        ..TaskFilter::default()
    };
    assert_eq!(
        names(search("crm")).await,
        ["Import 100% of CRM_data", "Import crm data"],
        "any case"
    );
    assert_eq!(
        names(search("100%")).await,
        ["Import 100% of CRM_data"],
        "% matches itself"
    );
    assert_eq!(
        names(search("crm_")).await,
        ["Import 100% of CRM_data"],
        "_ matches itself"
    );
    assert_eq!(names(search("TEST.STEPS")).await.len(), 5, "the kind too");
    let by_owner = TaskFilter {
        owner: Some("bob".to_owned()),
        text: Some("import".to_owned()),
        ..TaskFilter::default()
    };
    assert_eq!(names(by_owner).await, ["Import crm data"]);
    server.stop().await;
}

#[tokio::test]
async fn a_running_task_answers_its_live_progress_not_the_last_saved() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let id = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 2000, "step_ms": 20 }),
    )
    .await;
    let engine = &server.state().engine;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while engine
        .live_progress(id)
        .is_none_or(|progress| progress.processed_items == 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never advanced"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The runner saves progress about once a second; the answer does not wait for that.
    let (status, body) = json_of(
        actors
            .user_a
            .get(&server, &format!("{BASE}/task/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["task"]["processed_items"].as_i64().unwrap() > 0,
        "{body}"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn the_overview_is_scoped_to_the_caller(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let Fixture {
        server,
        actors,
        anns,
        bobs,
        anns_finished,
    } = fixture(backend).await;
    let overview = |actor: &crate::support::Actor| actor.call(&server, "tasks/overview", &[]);
    let listed = |body: &Value, list: &str| -> Vec<String> {
        body[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let ann: Value = overview(&actors.user_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed(&ann, "recent"), [anns_finished.to_string()]);
    assert!(listed(&ann, "active").contains(&anns.to_string()));
    assert!(!listed(&ann, "active").contains(&bobs.to_string()));
    assert_eq!(ann["summary"]["total"], 2);
    let admin: Value = overview(&actors.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["summary"]["total"], 3);
    assert!(listed(&admin, "active").contains(&bobs.to_string()));
    actors.check(Expect::SIGNED_IN, overview).await;
    let start = actors
        .anonymous
        .call(
            &server,
            "tasks/start",
            &[
                ("kind", "test.steps"),
                ("name", "x"),
                ("input", "{\"steps\":1}"),
            ],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.state().db.task_summary(None).await.unwrap().total, 3);
    server.stop().await;
}
