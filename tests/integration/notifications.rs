//! Notifications through the REST API (`/api/notifications`) and the server functions
//! (`/api/inbox/…`): each reader's own state of broadcasts, "mark all read" up to a watermark,
//! validation, the authorization matrix, pages, the notifications of tasks, retention and the
//! versions of unread counts.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::api::{
    accounts::Role,
    notifications::{Changed, NotificationPage, UnreadCount},
    tasks::TaskStatus,
};
use uuid::Uuid;

use crate::support::{
    Actor, Actors, Backend, Expect, PASSWORD, TestServer,
    notifications::{
        REST, backdate, broadcast, call, create, find, ids, list, notify, rest, seen,
        set_task_input, stored, stored_about, unread,
    },
    tasks::{cancel, enqueue, wait_for},
};

/// The form of a server function's `NotificationFilter` argument.
fn filter_form<'a>(
    unread_only: bool,
    limit: Option<&'a str>,
    before: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![(
        "filter[unread_only]",
        if unread_only { "true" } else { "false" },
    )];
    form.extend(limit.map(|limit| ("filter[limit]", limit)));
    form.extend(before.map(|before| ("filter[before]", before)));
    form
}

/// The form of `inbox/create`: `to` is `myself`, `user` (with `username`) or `everyone`.
fn new_notification_form<'a>(
    to: &'a str,
    username: Option<&'a str>,
    fields: &[(&'a str, &'a str)],
) -> Vec<(String, String)> {
    let mut form = vec![("notification[recipient][to]".to_owned(), to.to_owned())];
    if let Some(username) = username {
        form.push((
            "notification[recipient][username]".to_owned(),
            username.to_owned(),
        ));
    }
    for (name, value) in [
        ("kind", "note"),
        ("title", "Hello"),
        ("message", "A message"),
    ] {
        if !fields.iter().any(|(field, _)| *field == name) {
            form.push((format!("notification[{name}]"), value.to_owned()));
        }
    }
    for (name, value) in fields {
        form.push((format!("notification[{name}]"), (*value).to_owned()));
    }
    form
}

/// Calls `inbox/create` as `actor`.
async fn create_by_function(
    server: &TestServer,
    actor: &Actor,
    form: &[(String, String)],
) -> (StatusCode, Value) {
    let pairs: Vec<(&str, &str)> = form
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    call(server, actor, "inbox/create", &pairs).await
}

/// The page `inbox/list` answers `actor`.
async fn page_by_function(
    server: &TestServer,
    actor: &Actor,
    form: &[(&str, &str)],
) -> NotificationPage {
    let (status, body) = call(server, actor, "inbox/list", form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).expect("a page")
}

/// Asserts a 400 whose error names `field` first.
fn assert_names_field((status, body): &(StatusCode, Value), field: &str, case: &str) {
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{case}: {body}");
    assert_eq!(body["code"], "bad_request", "{case}: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("{field}:")),
        "{case}: the error names {field}: {error}"
    );
}

#[rstest]
#[tokio::test]
async fn each_reader_has_their_own_state_of_a_broadcast(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let first = broadcast(&server, admin, "Maintenance tonight").await;
    let second = broadcast(&server, admin, "A new feature").await;
    let anns = notify(&server, admin, "ann", "For ann only").await;
    assert_eq!(unread(&server, ann).await.count, 3);
    assert_eq!(unread(&server, bob).await.count, 2);

    let (status, body) = rest(&server, ann, Method::DELETE, &format!("/{first}")).await;
    assert_eq!(
        (status, &body["success"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    assert_eq!(body["unread_count"], 2);
    let (status, body) = rest(&server, ann, Method::POST, &format!("/{second}/mark-read")).await;
    assert_eq!(
        (status, &body["success"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    assert_eq!(body["unread_count"], 1);

    assert_eq!(seen(&server, ann).await, [(anns, false), (second, true)]);
    assert_eq!(
        seen(&server, bob).await,
        [(second, false), (first, false)],
        "bob's copies are untouched"
    );
    assert_eq!(unread(&server, ann).await.count, 1);
    assert_eq!(unread(&server, bob).await.count, 2);
    assert_eq!(unread(&server, admin).await.count, 2);

    // Gone for ann only: she cannot read or delete it again, bob still can.
    for (method, path) in [
        (Method::DELETE, format!("/{first}")),
        (Method::POST, format!("/{first}/mark-read")),
    ] {
        let (status, body) = rest(&server, ann, method.clone(), &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (status, _) = rest(&server, bob, Method::POST, &format!("/{first}/mark-read")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen(&server, bob).await, [(second, false), (first, true)]);
    let (status, _) = rest(&server, bob, Method::DELETE, &format!("/{second}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen(&server, bob).await, [(first, true)]);
    assert_eq!(seen(&server, ann).await, [(anns, false), (second, true)]);
    assert_eq!(
        stored(&server.state().db).await,
        3,
        "a broadcast is stored once, whatever its readers do"
    );

    // The server function answers the same state.
    let page = page_by_function(&server, bob, &filter_form(false, None, None)).await;
    let shown: Vec<(i64, bool, Option<String>)> = page
        .notifications
        .iter()
        .map(|n| (n.id, n.read, n.username.clone()))
        .collect();
    assert_eq!(shown, [(first, true, None)]);
    assert_eq!(page.unread.count, 0);

    // A user who joins later has not missed the broadcasts sent before: shown, read.
    tidings::services::accounts::create_user(&server.state().db, "cat", "", PASSWORD, Role::User)
        .await
        .unwrap();
    let cat = Actor::sign_in(&server, "cat", "cat").await;
    assert_eq!(seen(&server, &cat).await, [(second, true), (first, true)]);
    assert_eq!(unread(&server, &cat).await.count, 0);
    let third = broadcast(&server, admin, "After cat joined").await;
    assert_eq!(
        seen(&server, &cat).await,
        [(third, false), (second, true), (first, true)]
    );
    assert_eq!(unread(&server, &cat).await.count, 1);
    assert_eq!(unread(&server, ann).await.count, 2);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn mark_all_read_stops_at_the_newest_notification_the_reader_saw(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let first = broadcast(&server, admin, "one").await;
    let second = notify(&server, admin, "ann", "two").await;
    let seen_up_to = notify(&server, admin, "ann", "three").await;
    // These arrive while ann's page shows the three above.
    let late_own = notify(&server, admin, "ann", "late").await;
    let late_broadcast = broadcast(&server, admin, "late for all").await;

    let (status, body) = rest(
        &server,
        ann,
        Method::POST,
        &format!("/mark-all-read?up_to_id={seen_up_to}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 3, "{body}");
    assert_eq!(body["unread_count"], 2, "{body}");
    assert_eq!(
        seen(&server, ann).await,
        [
            (late_broadcast, false),
            (late_own, false),
            (seen_up_to, true),
            (second, true),
            (first, true)
        ]
    );
    assert_eq!(
        unread(&server, bob).await.count,
        2,
        "bob's broadcasts stay unread"
    );

    // The same watermark again, in a JSON body: nothing left to change.
    let response = ann
        .request(&server, Method::POST, &format!("{REST}/mark-all-read"))
        .json(&json!({ "up_to_id": seen_up_to }))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::support::notifications::json_of(response).await;
    assert_eq!(
        (status, &body["count"]),
        (StatusCode::OK, &json!(0)),
        "{body}"
    );

    // One read one by one is not counted again; without a watermark everything is read.
    let (status, _) = rest(
        &server,
        ann,
        Method::POST,
        &format!("/{late_broadcast}/mark-read"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = rest(&server, ann, Method::POST, "/mark-all-read").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["count"], &body["unread_count"]),
        (&json!(1), &json!(0))
    );
    assert!(seen(&server, ann).await.iter().all(|(_, read)| *read));

    // A watermark beyond the newest notification does not swallow the next broadcast.
    let (status, _) = rest(
        &server,
        ann,
        Method::POST,
        "/mark-all-read?up_to_id=1000000",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let after = broadcast(&server, admin, "after mark-all").await;
    assert_eq!(unread(&server, ann).await.count, 1);
    assert_eq!(find(&server, ann, after).await.unwrap()["read"], false);

    // The server function: bob has seen up to the late broadcast.
    let (status, body) = call(
        &server,
        bob,
        "inbox/mark-all-read",
        &[("up_to", &late_broadcast.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed: Changed = serde_json::from_value(body).unwrap();
    assert_eq!(changed.count, 2);
    assert_eq!(changed.unread.count, 1);
    assert_eq!(changed.unread, unread(&server, bob).await);
    assert_eq!(
        seen(&server, bob).await,
        [(after, false), (late_broadcast, true), (first, true)]
    );
    let (status, body) = call(&server, bob, "inbox/mark-all-read", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);
    assert_eq!(unread(&server, bob).await.count, 0);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn delete_read_removes_only_what_the_reader_has_read(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let by_watermark = broadcast(&server, admin, "b1").await;
    let own_read = notify(&server, admin, "ann", "o2").await;
    let own_unread = notify(&server, admin, "ann", "o3").await;
    let (status, _) = rest(
        &server,
        ann,
        Method::POST,
        &format!("/mark-all-read?up_to_id={own_read}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let one_by_one = broadcast(&server, admin, "b4").await;
    let broadcast_unread = broadcast(&server, admin, "b5").await;
    let (status, _) = rest(
        &server,
        ann,
        Method::POST,
        &format!("/{one_by_one}/mark-read"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let newest = notify(&server, admin, "ann", "o6").await;
    let bobs = notify(&server, admin, "bob", "for bob").await;
    let (status, _) = rest(&server, bob, Method::POST, &format!("/{bobs}/mark-read")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = rest(&server, ann, Method::DELETE, "/read").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["count"], &body["unread_count"]),
        (&json!(3), &json!(3))
    );
    assert_eq!(
        seen(&server, ann).await,
        [
            (newest, false),
            (broadcast_unread, false),
            (own_unread, false)
        ]
    );
    assert_eq!(
        seen(&server, bob).await,
        [
            (bobs, true),
            (broadcast_unread, false),
            (one_by_one, false),
            (by_watermark, false)
        ],
        "bob keeps his, read or not"
    );

    // Deleted broadcasts stay deleted when the watermark passes them, and are not counted.
    let (status, body) = rest(&server, ann, Method::POST, "/mark-all-read").await;
    assert_eq!(
        (status, &body["count"]),
        (StatusCode::OK, &json!(3)),
        "{body}"
    );
    let (status, body) = call(&server, ann, "inbox/delete-read", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changed: Changed = serde_json::from_value(body).unwrap();
    assert_eq!((changed.count, changed.unread.count), (3, 0));
    assert_eq!(seen(&server, ann).await, []);
    let (status, body) = call(&server, ann, "inbox/delete-read", &[]).await;
    assert_eq!((status, &body["count"]), (StatusCode::OK, &json!(0)));
    assert_eq!(seen(&server, bob).await.len(), 4);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn invalid_notifications_are_refused_naming_the_field(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, admin) = (&actors.user_a, &actors.admin);
    let db = &server.state().db;
    let type_51 = "a".repeat(51);
    let title_256 = "é".repeat(256);
    let message_long = "m".repeat(10_001);
    let link_501 = format!("/{}", "a".repeat(500));
    // (field, REST field, value)
    let cases: [(&str, &str, &str); 12] = [
        ("type", "type", ""),
        ("type", "type", "Task"),
        ("type", "type", "task-done"),
        ("type", "type", &type_51),
        ("title", "title", "   "),
        ("title", "title", &title_256),
        ("message", "message", &message_long),
        ("link", "link", "javascript:alert(1)"),
        ("link", "link", "JaVaScRiPt:alert(1)"),
        ("link", "link", "data:text/html,<script>alert(1)</script>"),
        ("link", "link", "//evil.com"),
        ("link", "link", &link_501),
    ];
    for (field, rest_field, value) in cases {
        let case = format!("{field} = {:?}", value.chars().take(40).collect::<String>());
        let mut body =
            json!({ "type": "note", "title": "Hello", "message": "m", "link": "/tasks" });
        body[rest_field] = json!(value);
        let answer = create(&server, ann, &body).await;
        assert_names_field(&answer, field, &format!("REST {case}"));
        let mut admin_body = body.clone();
        admin_body["username"] = json!("ann");
        assert_names_field(
            &create(&server, admin, &admin_body).await,
            field,
            &format!("REST as admin {case}"),
        );

        let function_field = if field == "type" { "kind" } else { field };
        let form = new_notification_form("myself", None, &[(function_field, value)]);
        assert_names_field(
            &create_by_function(&server, ann, &form).await,
            field,
            &format!("server function {case}"),
        );
    }
    assert_eq!(stored(db).await, 0, "nothing refused is stored");

    // Bodies that do not fit the shape.
    for (body, expected) in [
        (
            json!({ "type": "note", "title": "t", "message": "m", "priority": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "type": "note", "message": "m" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "type": "note", "title": "t", "message": "m", "broadcast": "yes" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = create(&server, admin, &body).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let response = admin
        .request(&server, Method::POST, &format!("{REST}/create"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{\"type\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Recipients that do not exist or contradict each other.
    for (body, field) in [
        (
            json!({ "username": "ann", "broadcast": true, "type": "note", "title": "t", "message": "m" }),
            "username",
        ),
        (
            json!({ "username": "nobody", "type": "note", "title": "t", "message": "m" }),
            "username",
        ),
        (
            json!({ "username": "", "type": "note", "title": "t", "message": "m" }),
            "username",
        ),
    ] {
        assert_names_field(
            &create(&server, admin, &body).await,
            field,
            &body.to_string(),
        );
    }
    let form = new_notification_form("user", Some("nobody"), &[]);
    assert_names_field(
        &create_by_function(&server, admin, &form).await,
        "username",
        "server function to nobody",
    );
    assert_eq!(stored(db).await, 0, "nothing refused is stored");

    // The limits themselves are accepted.
    let type_50 = "a".repeat(50);
    let title_255 = "é".repeat(255);
    let message_max = "m".repeat(10_000);
    let link_500 = format!("/{}", "a".repeat(499));
    let (status, body) = create(
        &server,
        ann,
        &json!({ "type": type_50, "title": title_255, "message": message_max, "link": link_500 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["notification_id"].as_i64().unwrap();
    let stored_one = find(&server, ann, id).await.unwrap();
    assert_eq!(stored_one["title"], title_255);
    assert_eq!(stored_one["link"], link_500);
    assert_eq!(stored_one["username"], "ann");
    for link in [
        "https://example.com/a?b=c",
        "HTTP://Example.com",
        "/tasks/1#log",
    ] {
        let form = new_notification_form("myself", None, &[("link", link)]);
        let (status, body) = create_by_function(&server, ann, &form).await;
        assert_eq!(status, StatusCode::OK, "{link}: {body}");
        assert!(body.is_i64(), "the server function answers the id: {body}");
    }
    // Markup is stored as the text it is.
    let script = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let (status, body) = create(
        &server,
        ann,
        &json!({ "type": "note", "title": script, "message": script }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let shown = find(&server, ann, body["notification_id"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (&shown["title"], &shown["message"]),
        (&json!(script), &json!(script))
    );
    assert_eq!(shown["link"], Value::Null);
    assert_eq!(stored(db).await, 5);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn bad_ids_limits_and_cursors_are_clear_errors(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, admin) = (&actors.user_a, &actors.admin);
    let id = notify(&server, admin, "ann", "mine").await;
    let unknown = id + 1000;
    let cases = [
        (Method::GET, "?limit=0".to_owned(), StatusCode::BAD_REQUEST),
        (
            Method::GET,
            "?limit=201".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "?limit=-1".to_owned(), StatusCode::BAD_REQUEST),
        (
            Method::GET,
            "?limit=ten".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "?before=0".to_owned(), StatusCode::BAD_REQUEST),
        (
            Method::GET,
            "?before=abc".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "?unread_only=maybe".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "?page=2".to_owned(), StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/abc/mark-read".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/1.5/mark-read".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/99999999999999999999/mark-read".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (Method::DELETE, "/abc".to_owned(), StatusCode::BAD_REQUEST),
        (
            Method::DELETE,
            "/1%27%20OR%201=1".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("/{unknown}/mark-read"),
            StatusCode::NOT_FOUND,
        ),
        (Method::DELETE, format!("/{unknown}"), StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/0/mark-read".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (Method::DELETE, "/-3".to_owned(), StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/mark-all-read?up_to_id=-1".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/mark-all-read?up_to_id=x".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/nothing/here".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (Method::POST, "/1/nothing".to_owned(), StatusCode::NOT_FOUND),
    ];
    for (method, path, expected) in cases {
        let (status, body) = rest(&server, ann, method.clone(), &path).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            body["error"].is_string() && body["code"].is_string(),
            "{method} {path}: {body}"
        );
    }
    for (limit, field) in [("0", "limit"), ("201", "limit")] {
        let (status, body) = rest(&server, ann, Method::GET, &format!("?limit={limit}")).await;
        assert_names_field(&(status, body), field, limit);
    }
    // up_to_id in a body that is not what it should be, or disagrees with the query.
    for (query, body) in [
        ("", "{\"up_to_id\": \"x\"}"),
        ("", "{\"up_to\": 3}"),
        ("?up_to_id=3", "{\"up_to_id\": 4}"),
    ] {
        let response = ann
            .request(
                &server,
                Method::POST,
                &format!("{REST}/mark-all-read{query}"),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query} {body}");
    }
    assert_eq!(
        find(&server, ann, id).await.unwrap()["read"],
        false,
        "nothing was read"
    );

    // The server functions.
    for form in [
        filter_form(false, Some("0"), None),
        filter_form(false, Some("201"), None),
        filter_form(true, None, Some("0")),
    ] {
        let (status, body) = call(&server, ann, "inbox/list", &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert_eq!(body["code"], "bad_request");
    }
    for (function, form, expected) in [
        (
            "inbox/mark-read",
            vec![("id", "abc")],
            StatusCode::BAD_REQUEST,
        ),
        ("inbox/delete", vec![("id", "")], StatusCode::BAD_REQUEST),
        (
            "inbox/mark-all-read",
            vec![("up_to", "-1")],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, body) = call(&server, ann, function, &form).await;
        assert_eq!(status, expected, "{function} {form:?}: {body}");
    }
    let unknown = unknown.to_string();
    for function in ["inbox/mark-read", "inbox/delete"] {
        let (status, body) = call(&server, ann, function, &[("id", &unknown)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{function}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    // The bounds themselves are fine.
    for limit in ["1", "200"] {
        let page = list(&server, ann, &format!("?limit={limit}")).await;
        assert_eq!(ids(&page), [id]);
        let page = page_by_function(&server, ann, &filter_form(false, Some(limit), None)).await;
        assert_eq!(page.notifications.len(), 1);
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn somebody_elses_notification_is_not_found_and_stays_as_it_was(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let anns = notify(&server, admin, "ann", "private").await;
    let anns_read = notify(&server, admin, "ann", "private, read").await;
    let (status, _) = rest(
        &server,
        ann,
        Method::POST,
        &format!("/{anns_read}/mark-read"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let before = seen(&server, ann).await;

    for actor in [bob, admin] {
        for (method, path) in [
            (Method::POST, format!("/{anns}/mark-read")),
            (Method::DELETE, format!("/{anns}")),
            (Method::DELETE, format!("/{anns_read}")),
        ] {
            let (status, body) = rest(&server, actor, method.clone(), &path).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::NOT_FOUND, Some("not_found")),
                "{} {method} {path}: {body}",
                actor.label
            );
        }
        for function in ["inbox/mark-read", "inbox/delete"] {
            let (status, body) = call(&server, actor, function, &[("id", &anns.to_string())]).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{} {function}: {body}",
                actor.label
            );
        }
        // Their own "everything" does not reach ann's.
        let (status, _) = rest(&server, actor, Method::POST, "/mark-all-read").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = rest(&server, actor, Method::DELETE, "/read").await;
        assert_eq!(status, StatusCode::OK);
        assert!(list(&server, actor, "").await["notifications"] == json!([]));
    }
    assert_eq!(seen(&server, ann).await, before);
    assert_eq!(unread(&server, ann).await.count, 1);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn every_route_and_server_function_follows_the_authorization_matrix(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let db = &server.state().db;
    let owner_only = |owner_is_a: bool| Expect {
        anonymous: StatusCode::UNAUTHORIZED,
        user_a: if owner_is_a {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        user_b: if owner_is_a {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        },
        admin: StatusCode::NOT_FOUND,
    };

    // Reading.
    for path in ["", "?unread_only=true&limit=5", "/unread-count"] {
        actors
            .check(Expect::SIGNED_IN, |actor| {
                actor.get(&server, &format!("{REST}{path}"))
            })
            .await;
    }
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "inbox/list", &filter_form(false, None, None))
        })
        .await;
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "inbox/unread", &[])
        })
        .await;

    // Marking read and deleting one: only its reader; ann goes first, so bob's notifications
    // are used to show that the owner can after the others could not.
    let bobs = notify(&server, admin, "bob", "for bob").await;
    actors
        .check(owner_only(false), |actor| {
            actor.request(&server, Method::POST, &format!("{REST}/{bobs}/mark-read"))
        })
        .await;
    let bobs = notify(&server, admin, "bob", "for bob").await;
    actors
        .check(owner_only(false), |actor| {
            actor.call(&server, "inbox/mark-read", &[("id", &bobs.to_string())])
        })
        .await;
    let bobs = notify(&server, admin, "bob", "for bob").await;
    actors
        .check(owner_only(false), |actor| {
            actor.request(&server, Method::DELETE, &format!("{REST}/{bobs}"))
        })
        .await;
    let bobs = notify(&server, admin, "bob", "for bob").await;
    actors
        .check(owner_only(false), |actor| {
            actor.call(&server, "inbox/delete", &[("id", &bobs.to_string())])
        })
        .await;
    // Ann's, which ann handles last (after bob and the admin were refused).
    let anns = notify(&server, admin, "ann", "for ann").await;
    for actor in [&actors.anonymous, bob, admin] {
        for function in ["inbox/mark-read", "inbox/delete"] {
            let status = actor
                .call_status(&server, function, &[("id", &anns.to_string())])
                .await;
            assert!(
                matches!(status, StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND),
                "{} {function}: {status}",
                actor.label
            );
        }
    }
    assert_eq!(
        find(&server, ann, anns).await.unwrap()["read"],
        false,
        "still unread for ann"
    );
    let (status, _) = call(
        &server,
        ann,
        "inbox/mark-read",
        &[("id", &anns.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&server, ann, "inbox/delete", &[("id", &anns.to_string())]).await;
    assert_eq!(status, StatusCode::OK);

    // Everything of one's own.
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.request(&server, Method::POST, &format!("{REST}/mark-all-read"))
        })
        .await;
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.request(&server, Method::DELETE, &format!("{REST}/read"))
        })
        .await;
    for function in ["inbox/mark-all-read", "inbox/delete-read"] {
        actors
            .check(Expect::SIGNED_IN, |actor| {
                actor.call(&server, function, &[])
            })
            .await;
    }

    // Sending: to oneself anyone; to somebody else or everyone administrators only.
    assert_eq!(stored(db).await, 0, "bob deleted his read ones");
    let s = &server;
    let body = |recipient: Value| {
        let mut body = json!({ "type": "note", "title": "t", "message": "m" });
        body.as_object_mut()
            .unwrap()
            .extend(recipient.as_object().unwrap().clone());
        body
    };
    let send = |body: Value| {
        move |actor: &Actor| {
            actor
                .request(s, Method::POST, &format!("{REST}/create"))
                .json(&body)
        }
    };
    actors.check(Expect::SIGNED_IN, send(body(json!({})))).await;
    let to_ann = Expect {
        user_b: StatusCode::FORBIDDEN,
        ..Expect::SIGNED_IN
    };
    actors
        .check(to_ann, send(body(json!({ "username": "ann" }))))
        .await;
    actors
        .check(Expect::ADMIN_ONLY, send(body(json!({ "broadcast": true }))))
        .await;
    let by_function = |to: &'static str, username: Option<&'static str>| {
        let form = new_notification_form(to, username, &[]);
        move |actor: &Actor| {
            let pairs: Vec<(&str, &str)> = form
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            actor.call(s, "inbox/create", &pairs)
        }
    };
    actors
        .check(Expect::SIGNED_IN, by_function("myself", None))
        .await;
    actors.check(to_ann, by_function("user", Some("ann"))).await;
    actors
        .check(Expect::ADMIN_ONLY, by_function("everyone", None))
        .await;
    // Twice (REST, server function): 3 to themselves, 2 to ann (by ann and the admin), 1 to
    // everyone.
    assert_eq!(
        stored(db).await,
        2 * (3 + 2 + 1),
        "refused sends store nothing"
    );

    // Each sees exactly their own and the broadcasts.
    let usernames = |page: Value| -> Vec<Option<String>> {
        page["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["username"].as_str().map(str::to_owned))
            .collect()
    };
    for (actor, username, own) in [(ann, "ann", 6), (bob, "bob", 2), (admin, "admin", 2)] {
        let shown = usernames(list(&server, actor, "").await);
        assert_eq!(
            shown
                .iter()
                .filter(|name| name.as_deref() == Some(username))
                .count(),
            own,
            "{username}: {shown:?}"
        );
        assert_eq!(shown.iter().filter(|name| name.is_none()).count(), 2);
        assert_eq!(
            shown.len(),
            own + 2,
            "{username} sees nobody else's: {shown:?}"
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn recipients_are_named_as_at_sign_in_whatever_the_case(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let body = |username: &str| json!({ "username": username, "type": "note", "title": "t", "message": "m" });
    let (status, sent) = create(&server, admin, &body(" ANN ")).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let to_ann = sent["notification_id"].as_i64().unwrap();
    let (status, sent) = create(&server, ann, &body("Ann")).await;
    assert_eq!(status, StatusCode::OK, "herself: {sent}");
    let by_ann = sent["notification_id"].as_i64().unwrap();
    assert_eq!(seen(&server, ann).await, [(by_ann, false), (to_ann, false)]);
    let (status, _) = create(&server, bob, &body("ANN")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = new_notification_form("user", Some("Bob"), &[]);
    let (status, sent) = create_by_function(&server, bob, &form).await;
    assert_eq!(status, StatusCode::OK, "himself: {sent}");
    assert_eq!(
        find(&server, bob, sent.as_i64().unwrap()).await.unwrap()["username"],
        "bob"
    );
    assert_eq!(stored(&server.state().db).await, 3);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn pages_follow_the_cursor_newest_first_with_broadcasts_merged(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, admin) = (&actors.user_a, &actors.admin);
    let mut mine = Vec::new();
    for index in 0..9 {
        let id = match index % 3 {
            0 => broadcast(&server, admin, &format!("b{index}")).await,
            1 => notify(&server, admin, "ann", &format!("o{index}")).await,
            _ => {
                notify(&server, admin, "bob", &format!("bob {index}")).await;
                notify(&server, admin, "ann", &format!("o{index}")).await
            }
        };
        mine.push(id);
    }
    mine.reverse();

    let first = list(&server, ann, "?limit=4").await;
    assert_eq!(ids(&first), mine[..4]);
    assert_eq!(first["count"], 4);
    assert_eq!(first["unread_count"], 9);
    let cursor = first["next_cursor"].as_i64().expect("a next page");
    assert_eq!(cursor, mine[3]);
    let second = list(&server, ann, &format!("?limit=4&before={cursor}")).await;
    assert_eq!(ids(&second), mine[4..8]);
    let cursor = second["next_cursor"].as_i64().unwrap();
    let third = list(&server, ann, &format!("?limit=4&before={cursor}")).await;
    assert_eq!(ids(&third), mine[8..]);
    assert_eq!(third["next_cursor"], Value::Null, "the last page");
    assert_eq!(ids(&list(&server, ann, "").await), mine, "50 by default");
    // A page that happens to end at the end may point at an empty one, never further.
    let exact = list(&server, ann, &format!("?limit=3&before={}", mine[5])).await;
    assert_eq!(ids(&exact), mine[6..]);
    if let Some(cursor) = exact["next_cursor"].as_i64() {
        let empty = list(&server, ann, &format!("?limit=3&before={cursor}")).await;
        assert_eq!(ids(&empty), Vec::<i64>::new());
        assert_eq!(empty["next_cursor"], Value::Null);
    }

    // Unread only: read a broadcast and an own one, then page through the rest.
    for id in [mine[1], mine[2]] {
        let (status, _) = rest(&server, ann, Method::POST, &format!("/{id}/mark-read")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let unread_ids: Vec<i64> = mine
        .iter()
        .copied()
        .filter(|id| *id != mine[1] && *id != mine[2])
        .collect();
    let first = list(&server, ann, "?unread_only=true&limit=5").await;
    assert_eq!(ids(&first), unread_ids[..5]);
    assert_eq!(first["unread_count"], 7);
    let cursor = first["next_cursor"].as_i64().unwrap();
    let second = list(
        &server,
        ann,
        &format!("?unread_only=true&limit=5&before={cursor}"),
    )
    .await;
    assert_eq!(ids(&second), unread_ids[5..]);
    assert_eq!(second["next_cursor"], Value::Null);
    assert!(
        second["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"] == false)
    );

    // The server function pages the same way.
    let page = page_by_function(&server, ann, &filter_form(true, Some("5"), None)).await;
    let shown: Vec<i64> = page.notifications.iter().map(|n| n.id).collect();
    assert_eq!(shown, unread_ids[..5]);
    assert_eq!(page.next_cursor, Some(unread_ids[4]));
    assert_eq!(page.unread.count, 7);
    let before = unread_ids[4].to_string();
    let page = page_by_function(&server, ann, &filter_form(false, Some("3"), Some(&before))).await;
    let shown: Vec<(i64, bool)> = page.notifications.iter().map(|n| (n.id, n.read)).collect();
    let expected: Vec<(i64, bool)> = mine
        .iter()
        .copied()
        .filter(|id| *id < unread_ids[4])
        .take(3)
        .map(|id| (id, false))
        .collect();
    assert_eq!(shown, expected);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_task_notifies_its_owner_when_it_completes_or_fails(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let ann = &actors.user_a;
    let done = enqueue(&server, Some("ann"), "test.steps", json!({ "steps": 3 })).await;
    wait_for(&server, done, TaskStatus::Completed).await;
    let page = list(&server, ann, "").await;
    assert_eq!(page["count"], 1, "{page}");
    let notification = &page["notifications"][0];
    assert_eq!(notification["type"], "task_complete");
    assert_eq!(notification["username"], "ann");
    assert_eq!(notification["link"], format!("/tasks/{done}"));
    assert_eq!(notification["task_id"], done.to_string());
    assert_eq!(notification["read"], false);
    assert_eq!(notification["title"], "“test.steps test” completed");
    assert_eq!(notification["message"], "Finished: 3 of 3 items processed.");

    let failed = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 3, "fail_at": 2 }),
    )
    .await;
    let task = wait_for(&server, failed, TaskStatus::Failed).await;
    let page = list(&server, ann, "").await;
    assert_eq!(page["count"], 2, "{page}");
    let notification = &page["notifications"][0];
    assert_eq!(notification["type"], "task_failed");
    assert_eq!(notification["link"], format!("/tasks/{failed}"));
    assert_eq!(notification["task_id"], failed.to_string());
    assert_eq!(notification["title"], "“test.steps test” failed");
    assert_eq!(notification["message"], "step 2 failed");
    assert_eq!(task.error.as_deref(), Some("step 2 failed"));
    assert_eq!(unread(&server, ann).await.count, 2);
    assert_eq!(seen(&server, &actors.user_b).await, [], "not bob's");
    assert_eq!(seen(&server, &actors.admin).await, [], "nor the admin's");
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn cancelled_and_system_tasks_notify_nobody(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let db = &server.state().db;
    let long = json!({ "steps": 2000, "step_ms": 50 });
    let cancelled = enqueue(&server, Some("ann"), "test.steps", long).await;
    wait_for(&server, cancelled, TaskStatus::Running).await;
    cancel(&server, &actors.user_a, cancelled).await;
    let pending = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 1, "step_ms": 60_000 }),
    )
    .await;
    let system = enqueue(&server, None, "test.steps", json!({ "steps": 2 })).await;
    let system_failed = enqueue(
        &server,
        None,
        "test.steps",
        json!({ "steps": 2, "fail_at": 1 }),
    )
    .await;
    wait_for(&server, system, TaskStatus::Completed).await;
    wait_for(&server, system_failed, TaskStatus::Failed).await;
    cancel(&server, &actors.admin, pending).await;

    for task in [cancelled, pending, system, system_failed] {
        assert_eq!(stored_about(db, task).await, 0, "task {task}");
    }
    assert_eq!(stored(db).await, 0);
    for actor in [&actors.user_a, &actors.admin] {
        assert_eq!(unread(&server, actor).await.count, 0);
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_retried_task_updates_its_notification_instead_of_adding_one(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let ann = &actors.user_a;
    let db = &server.state().db;
    let s = &server;
    let retry = |id: Uuid| async move {
        let response = ann
            .request(
                s,
                Method::POST,
                &format!("/api/background-tasks/task/{id}/retry"),
            )
            .send()
            .await
            .unwrap();
        let (status, body) = crate::support::notifications::json_of(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["task_id"].as_str().unwrap().parse::<Uuid>().unwrap()
    };
    let failing = json!({ "steps": 2, "fail_at": 1 });
    let first = enqueue(&server, Some("ann"), "test.steps", failing).await;
    wait_for(&server, first, TaskStatus::Failed).await;
    let original = find_about(&server, ann, first).await;
    let id = original["id"].as_i64().unwrap();
    assert_eq!(original["type"], "task_failed");
    let (status, _) = rest(&server, ann, Method::POST, &format!("/{id}/mark-read")).await;
    assert_eq!(status, StatusCode::OK);

    // The same input fails again: the same notification tells so, unread again.
    let second = retry(first).await;
    let retried = wait_for(&server, second, TaskStatus::Failed).await;
    assert_eq!(retried.retry_of, Some(first));
    let page = list(&server, ann, "").await;
    assert_eq!(ids(&page), [id], "one notification for the chain: {page}");
    let notification = &page["notifications"][0];
    assert_eq!(notification["task_id"], second.to_string());
    assert_eq!(notification["link"], format!("/tasks/{second}"));
    assert_eq!(notification["type"], "task_failed");
    assert_eq!(notification["read"], false, "unread again");
    let (status, _) = rest(&server, ann, Method::POST, &format!("/{id}/mark-read")).await;
    assert_eq!(status, StatusCode::OK);

    // Fixed, the retry of the retry completes: still that one notification.
    set_task_input(db, second, json!({ "steps": 2 })).await;
    let third = retry(second).await;
    wait_for(&server, third, TaskStatus::Completed).await;
    let page = list(&server, ann, "").await;
    assert_eq!(ids(&page), [id], "{page}");
    let notification = &page["notifications"][0];
    assert_eq!(notification["task_id"], third.to_string());
    assert_eq!(notification["link"], format!("/tasks/{third}"));
    assert_eq!(notification["type"], "task_complete");
    assert_eq!(notification["title"], "“test.steps test” completed");
    assert_eq!(notification["read"], false);
    assert_eq!(unread(&server, ann).await.count, 1);
    for task in [first, second] {
        assert_eq!(stored_about(db, task).await, 0);
    }
    assert_eq!(stored(db).await, 1);

    // A completed task retried: its notification follows again.
    let again = retry(third).await;
    wait_for(&server, again, TaskStatus::Completed).await;
    assert_eq!(ids(&list(&server, ann, "").await), [id]);
    assert_eq!(find_about(&server, ann, again).await["id"], id);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_retry_that_ends_before_it_is_followed_still_updates_the_notification(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let ann = &actors.user_a;
    let db = &server.state().db;
    let first = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 1, "fail_at": 1 }),
    )
    .await;
    wait_for(&server, first, TaskStatus::Failed).await;
    let id = find_about(&server, ann, first).await["id"]
        .as_i64()
        .unwrap();
    // A retry as `services::tasks::retry` starts it, which then follows it with the
    // notification: here the retry ends first.
    let mut retry =
        crate::support::tasks::request(&server, Some("ann"), "test.steps", json!({ "steps": 1 }))
            .await;
    retry.retry_of = Some(first);
    let second = server.state().engine.enqueue(retry).await.unwrap();
    wait_for(&server, second, TaskStatus::Completed).await;
    let notification = find_about(&server, ann, second).await;
    assert_eq!(
        notification["id"], id,
        "the retried task's notification, taken over"
    );
    assert_eq!(notification["type"], "task_complete");
    tidings::services::notifications::follow_retry(server.state(), first, second)
        .await
        .unwrap();
    assert_eq!(ids(&list(&server, ann, "").await), [id]);
    assert_eq!(
        find_about(&server, ann, second).await["type"],
        "task_complete"
    );
    assert_eq!(stored(db).await, 1);
    server.stop().await;
}

/// The one notification `actor` sees about `task`.
async fn find_about(server: &TestServer, actor: &Actor, task: Uuid) -> Value {
    let page = list(server, actor, "?limit=200").await;
    let about: Vec<&Value> = page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["task_id"] == task.to_string())
        .collect();
    assert_eq!(about.len(), 1, "one notification about {task}: {page}");
    about[0].clone()
}

#[rstest]
#[tokio::test]
async fn retention_prunes_old_read_notifications_and_keeps_unread_ones(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let db = &server.state().db;
    let old_read = notify(&server, admin, "ann", "old, read").await;
    let old_unread = notify(&server, admin, "ann", "old, unread").await;
    let old_broadcast = broadcast(&server, admin, "old broadcast").await;
    let recent_read = notify(&server, admin, "ann", "recent, read").await;
    let bobs_old_read = notify(&server, admin, "bob", "bob's old, read").await;
    let recent_broadcast = broadcast(&server, admin, "recent broadcast").await;
    for (actor, id) in [
        (ann, old_read),
        (ann, recent_read),
        (bob, bobs_old_read),
        (ann, old_broadcast),
    ] {
        let (status, _) = rest(&server, actor, Method::POST, &format!("/{id}/mark-read")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let long_ago = Utc::now() - chrono::Duration::days(91);
    for id in [old_read, old_unread, old_broadcast, bobs_old_read] {
        backdate(db, id, long_ago).await;
    }
    let version = unread(&server, ann).await.version;

    let pruned = db
        .prune_notifications(Utc::now() - chrono::Duration::days(90))
        .await
        .unwrap();
    assert_eq!(
        pruned, 3,
        "ann's and bob's old read ones, and the old broadcast"
    );
    assert_eq!(
        seen(&server, ann).await,
        [
            (recent_broadcast, false),
            (recent_read, true),
            (old_unread, false)
        ]
    );
    assert_eq!(seen(&server, bob).await, [(recent_broadcast, false)]);
    let after = unread(&server, ann).await;
    assert_eq!(after.count, 2);
    assert!(after.version > version, "pruning is a change");
    assert_eq!(
        db.prune_notifications(Utc::now() - chrono::Duration::days(90))
            .await
            .unwrap(),
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn the_pruner_runs_on_its_schedule() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.notification_retention_days = 1;
        config.notification_prune_interval_secs = 1;
    })
    .await;
    let actors = Actors::sign_up(&server).await;
    let db = &server.state().db;
    let old = notify(&server, &actors.admin, "ann", "old").await;
    let kept = notify(&server, &actors.admin, "ann", "old, unread").await;
    let (status, _) = rest(
        &server,
        &actors.user_a,
        Method::POST,
        &format!("/{old}/mark-read"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for id in [old, kept] {
        backdate(db, id, Utc::now() - chrono::Duration::days(2)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while find(&server, &actors.user_a, old).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pruner never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen(&server, &actors.user_a).await, [(kept, false)]);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn unread_count_versions_grow_with_every_change(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, admin) = (&actors.user_a, &actors.admin);
    let mut last = unread(&server, ann).await;
    assert_eq!(last.count, 0);
    let first = notify(&server, admin, "ann", "1").await;
    newer(&mut last, unread(&server, ann).await, 1, "created");
    let second = broadcast(&server, admin, "2").await;
    newer(&mut last, unread(&server, ann).await, 2, "broadcast");
    succeeds(rest(&server, ann, Method::POST, &format!("/{first}/mark-read")).await);
    newer(&mut last, unread(&server, ann).await, 1, "read");
    let (_, body) = call(&server, ann, "inbox/unread", &[]).await;
    let by_function: UnreadCount = serde_json::from_value(body).unwrap();
    assert_eq!(by_function, last, "the server function answers the same");
    succeeds(rest(&server, ann, Method::POST, "/mark-all-read").await);
    newer(&mut last, unread(&server, ann).await, 0, "all read");
    succeeds(rest(&server, ann, Method::DELETE, &format!("/{second}")).await);
    newer(&mut last, unread(&server, ann).await, 0, "deleted");
    succeeds(rest(&server, ann, Method::DELETE, "/read").await);
    newer(
        &mut last,
        unread(&server, ann).await,
        0,
        "read ones deleted",
    );
    let (_, body) = call(
        &server,
        ann,
        "inbox/mark-read",
        &[("id", &first.to_string())],
    )
    .await;
    assert_eq!(body["code"], "not_found", "deleted with the read ones");
    let unchanged = unread(&server, ann).await;
    assert_eq!(
        unchanged.count, last.count,
        "a refused change changes nothing"
    );
    assert!(unchanged.version >= last.version);
    last = unchanged;

    // Counts read while notifications pour in: never an older version after a newer one,
    // and one version is always one count.
    let s = &server;
    let sends = join_all(
        (0..20)
            .map(|index| async move { notify(s, admin, "ann", &format!("burst {index}")).await }),
    );
    let reads = async {
        let mut counts = Vec::new();
        for _ in 0..40 {
            counts.push(unread(&server, ann).await);
        }
        counts
    };
    let (_, counts) = tokio::join!(sends, reads);
    let mut by_version: HashMap<i64, i64> = HashMap::new();
    for pair in counts.windows(2) {
        assert!(pair[1].version >= pair[0].version, "{pair:?}");
        assert!(
            pair[1].count >= pair[0].count,
            "only sends happened: {pair:?}"
        );
    }
    for count in &counts {
        let known = by_version.entry(count.version).or_insert(count.count);
        assert_eq!(
            *known, count.count,
            "version {} counted twice differently",
            count.version
        );
    }
    let end = unread(&server, ann).await;
    assert_eq!(end.count, 20);
    assert!(end.version >= last.version + 20);
    server.stop().await;
}

/// Takes `now` as the newest count after a change: its version must be newer than `last`'s.
fn newer(last: &mut UnreadCount, now: UnreadCount, count: i64, what: &str) {
    assert!(now.version > last.version, "{what}: {now:?} after {last:?}");
    assert_eq!(now.count, count, "{what}");
    *last = now;
}

fn succeeds((status, body): (StatusCode, Value)) -> Value {
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}
