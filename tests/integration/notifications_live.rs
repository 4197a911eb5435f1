//! Live notifications over `/ws` (topic `notifications`): the snapshot, then every change
//! pushed to every open tab of the users it concerns, with unread counts whose versions only
//! grow.
//!
//! Negative checks ("bob's tab gets nothing") use a barrier: a change is queued for the tabs it
//! concerns before the request that made it is answered, and a connection sends in the order
//! its frames were queued, so the pong of a ping sent after that answer comes after anything
//! the change sent to it.

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;
use tidings::{
    api::{
        notifications::{Notification, UnreadCount},
        tasks::TaskStatus,
    },
    protocol::{NotificationChange, SNAPSHOT_NOTIFICATIONS_LIMIT, ServerMessage, Topic},
};
use uuid::Uuid;

use crate::support::{
    Actor, Backend, TestServer, WsClient,
    notifications::{broadcast, call, notify, rest, unread},
    tasks::{enqueue, wait_for},
};

/// A tab following `actor`'s notifications, with what it has been told.
struct Tab {
    label: String,
    socket: WsClient,
    /// The newest count the tab was told.
    unread: UnreadCount,
    /// Nonces of the pings that check that nothing is pending.
    nonce: u64,
}

impl Tab {
    /// Opens `/ws` as `actor`, subscribes to the notifications and reads the snapshot.
    async fn open(server: &TestServer, actor: &Actor, label: &str) -> (Tab, Vec<Notification>) {
        let mut socket = actor
            .websocket(server, "/ws")
            .await
            .unwrap_or_else(|status| panic!("{label} may connect, got {status}"));
        assert!(matches!(
            socket.receive_message().await,
            ServerMessage::Hello { .. }
        ));
        socket
            .send_json(json!({ "type": "subscribe", "topic": { "kind": "notifications" } }))
            .await;
        match socket.receive_message().await {
            ServerMessage::NotificationsSnapshot { unread, latest } => (
                Tab {
                    label: label.to_owned(),
                    socket,
                    unread,
                    nonce: 0,
                },
                latest,
            ),
            other => panic!("{label}: expected the snapshot, got {other:?}"),
        }
    }

    /// The next message, which must be a notification update; a count it carries must be newer
    /// than the tab's, and becomes the tab's.
    async fn update(&mut self) -> (NotificationChange, Option<UnreadCount>) {
        match self.socket.receive_message().await {
            ServerMessage::NotificationUpdate { change, unread } => {
                if let Some(unread) = unread {
                    assert!(
                        unread.version > self.unread.version,
                        "{}: {unread:?} after {:?}",
                        self.label,
                        self.unread
                    );
                    self.unread = unread;
                }
                (change, unread)
            }
            other => panic!(
                "{}: expected a notification update, got {other:?}",
                self.label
            ),
        }
    }

    /// The next update, which must be `change` with a count of `count`.
    async fn expect(&mut self, change: &NotificationChange, count: i64) -> UnreadCount {
        let (received, unread) = self.update().await;
        assert_eq!(&received, change, "{}", self.label);
        let unread = unread.unwrap_or_else(|| panic!("{}: a count comes with it", self.label));
        assert_eq!(unread.count, count, "{}: {change:?}", self.label);
        unread
    }

    /// Asserts that nothing was sent to the tab (see the module's barrier).
    async fn expect_nothing(&mut self) {
        self.nonce += 1;
        let pending = self.socket.round_trip(self.nonce).await;
        assert_eq!(pending, [], "{}: nothing for this tab", self.label);
    }
}

/// Both of `reader`'s tabs are told `change` with the count GET /unread-count answers; the
/// other reader's tab is told nothing.
async fn told(
    server: &TestServer,
    reader: &Actor,
    tabs: &mut [Tab; 2],
    other: &mut Tab,
    change: NotificationChange,
    count: i64,
) {
    let pushed = tabs[0].expect(&change, count).await;
    assert_eq!(tabs[1].expect(&change, count).await, pushed);
    assert_eq!(unread(server, reader).await, pushed, "{change:?}");
    other.expect_nothing().await;
}

fn created(message: &NotificationChange) -> &Notification {
    match message {
        NotificationChange::Created { notification } => notification,
        other => panic!("expected a new notification, got {other:?}"),
    }
}

#[rstest]
#[tokio::test]
async fn a_new_notification_reaches_every_tab_of_its_reader_and_nobody_else(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let older = notify(&server, admin, "ann", "older").await;
    let old = notify(&server, admin, "ann", "old").await;
    let mut bobs = Vec::new();
    for index in 0..=SNAPSHOT_NOTIFICATIONS_LIMIT {
        bobs.push(notify(&server, admin, "bob", &format!("bob {index}")).await);
    }

    let (mut first, latest) = Tab::open(&server, ann, "ann's first tab").await;
    let shown: Vec<(i64, bool)> = latest.iter().map(|n| (n.id, n.read)).collect();
    assert_eq!(shown, [(old, false), (older, false)]);
    assert_eq!(
        first.unread,
        unread(&server, ann).await,
        "the snapshot's count"
    );
    let (mut second, _) = Tab::open(&server, ann, "ann's second tab").await;
    let (mut bobs_tab, latest) = Tab::open(&server, bob, "bob's tab").await;
    assert_eq!(
        latest.len(),
        SNAPSHOT_NOTIFICATIONS_LIMIT as usize,
        "the newest only"
    );
    assert_eq!(latest[0].id, *bobs.last().unwrap());
    assert_eq!(
        bobs_tab.unread.count,
        i64::from(SNAPSHOT_NOTIFICATIONS_LIMIT) + 1
    );

    let id = notify(&server, admin, "ann", "Your report is ready").await;
    for tab in [&mut first, &mut second] {
        let (change, unread) = tab.update().await;
        let notification = created(&change);
        assert_eq!(notification.id, id);
        assert_eq!(notification.title, "Your report is ready");
        assert_eq!(notification.username.as_deref(), Some("ann"));
        assert!(!notification.read);
        assert_eq!(unread.map(|unread| unread.count), Some(3));
    }
    assert_eq!(first.unread, second.unread);
    assert_eq!(first.unread, unread(&server, ann).await);
    bobs_tab.expect_nothing().await;

    // Sent by ann to herself through the server function: the same.
    let form = [
        ("notification[recipient][to]", "myself"),
        ("notification[kind]", "reminder"),
        ("notification[title]", "Call back"),
        ("notification[message]", ""),
    ];
    let (status, body) = call(&server, ann, "inbox/create", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for tab in [&mut first, &mut second] {
        let (change, unread) = tab.update().await;
        assert_eq!(created(&change).id, body.as_i64().unwrap());
        assert_eq!(created(&change).kind, "reminder");
        assert_eq!(unread.unwrap().count, 4);
    }
    bobs_tab.expect_nothing().await;
    first.expect_nothing().await;

    // A tab that unsubscribed hears no more; nobody signed in cannot even connect.
    second
        .socket
        .send_json(json!({ "type": "unsubscribe", "topic": { "kind": "notifications" } }))
        .await;
    assert_eq!(
        second.socket.receive_message().await,
        ServerMessage::Unsubscribed {
            topic: Topic::Notifications
        }
    );
    let id = notify(&server, admin, "ann", "after unsubscribing").await;
    let (change, _) = first.update().await;
    assert_eq!(created(&change).id, id);
    second.expect_nothing().await;
    assert!(matches!(
        actors.anonymous.websocket(&server, "/ws").await,
        Err(StatusCode::UNAUTHORIZED)
    ));
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn reading_and_deleting_anywhere_is_pushed_to_every_tab_with_newer_counts(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    let one = notify(&server, admin, "ann", "one").await;
    let two = notify(&server, admin, "ann", "two").await;
    let three = notify(&server, admin, "ann", "three").await;
    let everyone = broadcast(&server, admin, "for everyone").await;
    let mut anns = [
        Tab::open(&server, ann, "ann's first tab").await.0,
        Tab::open(&server, ann, "ann's second tab").await.0,
    ];
    let (mut bobs_tab, _) = Tab::open(&server, bob, "bob's tab").await;
    assert_eq!(anns[0].unread.count, 4);
    let ok = |(status, body): (StatusCode, serde_json::Value)| {
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };

    // Each change is made by a third client of ann's (REST or server function).
    ok(rest(&server, ann, Method::POST, &format!("/{one}/mark-read")).await);
    told(
        &server,
        ann,
        &mut anns,
        &mut bobs_tab,
        NotificationChange::Read { id: one },
        3,
    )
    .await;
    // Marking it again changes nothing and pushes nothing.
    ok(rest(&server, ann, Method::POST, &format!("/{one}/mark-read")).await);
    let body = ok(rest(
        &server,
        ann,
        Method::POST,
        &format!("/mark-all-read?up_to_id={two}"),
    )
    .await);
    assert_eq!(body["count"], 1);
    let change = NotificationChange::AllRead { up_to: two };
    told(&server, ann, &mut anns, &mut bobs_tab, change, 2).await;
    ok(rest(&server, ann, Method::DELETE, &format!("/{two}")).await);
    told(
        &server,
        ann,
        &mut anns,
        &mut bobs_tab,
        NotificationChange::Deleted { id: two },
        2,
    )
    .await;
    ok(call(
        &server,
        ann,
        "inbox/mark-read",
        &[("id", &everyone.to_string())],
    )
    .await);
    let change = NotificationChange::Read { id: everyone };
    told(&server, ann, &mut anns, &mut bobs_tab, change, 1).await;
    ok(rest(&server, ann, Method::DELETE, "/read").await);
    told(
        &server,
        ann,
        &mut anns,
        &mut bobs_tab,
        NotificationChange::ReadDeleted,
        1,
    )
    .await;
    ok(call(&server, ann, "inbox/delete", &[("id", &three.to_string())]).await);
    let change = NotificationChange::Deleted { id: three };
    told(&server, ann, &mut anns, &mut bobs_tab, change, 0).await;

    // "Everything" is pushed as what it was: up to the newest notification there was, so a
    // tab does not take a later one as read.
    let bobs = notify(&server, admin, "bob", "for bob").await;
    let (change, _) = bobs_tab.update().await;
    assert_eq!(created(&change).id, bobs);
    let four = notify(&server, admin, "ann", "four").await;
    for tab in &mut anns {
        assert_eq!(created(&tab.update().await.0).id, four);
    }
    let newest = four.max(bobs);
    let body = ok(rest(&server, ann, Method::POST, "/mark-all-read").await);
    assert_eq!(body["count"], 1);
    let change = NotificationChange::AllRead { up_to: newest };
    told(&server, ann, &mut anns, &mut bobs_tab, change.clone(), 0).await;
    let body = ok(call(&server, ann, "inbox/mark-all-read", &[]).await);
    assert_eq!(body["count"], 0);
    told(&server, ann, &mut anns, &mut bobs_tab, change, 0).await;

    // Refused changes push nothing.
    for (status, _) in [
        rest(&server, ann, Method::POST, &format!("/{bobs}/mark-read")).await,
        rest(&server, bob, Method::DELETE, &format!("/{four}")).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for tab in &mut anns {
        tab.expect_nothing().await;
    }
    bobs_tab.expect_nothing().await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_broadcast_reaches_every_reader_without_a_count(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob, admin) = (&actors.user_a, &actors.user_b, &actors.admin);
    notify(&server, admin, "ann", "before").await;
    let mut tabs = vec![
        Tab::open(&server, ann, "ann's first tab").await.0,
        Tab::open(&server, ann, "ann's second tab").await.0,
        Tab::open(&server, bob, "bob's tab").await.0,
        Tab::open(&server, admin, "the admin's tab").await.0,
    ];
    let id = broadcast(&server, admin, "Maintenance at noon").await;
    for tab in &mut tabs {
        let (change, unread) = tab.update().await;
        let notification = created(&change);
        assert_eq!(
            (notification.id, notification.username.as_deref()),
            (id, None),
            "{}",
            tab.label
        );
        assert_eq!(notification.title, "Maintenance at noon");
        assert_eq!(
            unread, None,
            "{}: each reader asks for their own",
            tab.label
        );
    }
    // What each then asks is their own, newer than their tab's.
    for (actor, count, tab) in [(ann, 2, 0), (bob, 1, 2), (admin, 1, 3)] {
        let own = unread(&server, actor).await;
        assert_eq!(own.count, count, "{}", actor.label);
        assert!(own.version > tabs[tab].unread.version);
    }
    // Ann reading it is hers alone.
    let (status, _) = rest(&server, ann, Method::POST, &format!("/{id}/mark-read")).await;
    assert_eq!(status, StatusCode::OK);
    for tab in &mut tabs[..2] {
        tab.expect(&NotificationChange::Read { id }, 1).await;
    }
    for tab in &mut tabs[2..] {
        tab.expect_nothing().await;
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_task_ending_is_pushed_to_its_owners_tabs(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (ann, bob) = (&actors.user_a, &actors.user_b);
    let (mut first, _) = Tab::open(&server, ann, "ann's first tab").await;
    let (mut second, _) = Tab::open(&server, ann, "ann's second tab").await;
    let (mut bobs_tab, _) = Tab::open(&server, bob, "bob's tab").await;

    let task = enqueue(
        &server,
        Some("ann"),
        "test.steps",
        json!({ "steps": 2, "fail_at": 2 }),
    )
    .await;
    wait_for(&server, task, TaskStatus::Failed).await;
    let mut id = None;
    for tab in [&mut first, &mut second] {
        let (change, unread) = tab.update().await;
        let notification = created(&change);
        assert_eq!(notification.task_id, Some(task));
        assert_eq!(notification.kind, "task_failed");
        assert_eq!(
            notification.link.as_deref(),
            Some(format!("/tasks/{task}").as_str())
        );
        assert_eq!(unread.unwrap().count, 1);
        id = Some(notification.id);
    }
    let id = id.unwrap();
    bobs_tab.expect_nothing().await;
    let (status, _) = rest(&server, ann, Method::POST, &format!("/{id}/mark-read")).await;
    assert_eq!(status, StatusCode::OK);
    for tab in [&mut first, &mut second] {
        tab.expect(&NotificationChange::Read { id }, 0).await;
    }

    // Retried, the same notification follows the new task and is told again when it ends.
    let response = ann
        .request(
            &server,
            Method::POST,
            &format!("/api/background-tasks/task/{task}/retry"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    let retry: Uuid = body["task_id"].as_str().unwrap().parse().unwrap();
    wait_for(&server, retry, TaskStatus::Failed).await;
    for tab in [&mut first, &mut second] {
        // Following the retry, then ending: both are new versions of the same notification.
        loop {
            let (change, unread) = tab.update().await;
            let notification = created(&change);
            assert_eq!(notification.id, id, "{}: the same notification", tab.label);
            assert_eq!(notification.task_id, Some(retry));
            if !notification.read {
                assert_eq!(unread.unwrap().count, 1);
                break;
            }
        }
    }
    first.expect_nothing().await;
    second.expect_nothing().await;
    bobs_tab.expect_nothing().await;
    server.stop().await;
}
