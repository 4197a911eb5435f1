//! `keyword_check` through the server functions of the ingest pages: an alert for each
//! approved article that mentions a group's keywords (of the group's topic, when it has one),
//! counted in the result and in the owner's notification, never raised twice, and marked read.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{Value, json};
use tidings::api::tasks::TaskStatus;
use uuid::Uuid;

use crate::support::{
    Actor, Backend, TestServer,
    ingest::{bulk_save, call_ok, create_keyword_group},
    notifications::{call, newest_of},
    tasks::wait_for,
};

/// Runs a keyword check of group `group`, or of every group, as `actor`; answers its result.
async fn check(server: &TestServer, actor: &Actor, group: Option<i64>) -> Value {
    let group = group.map(|id| id.to_string());
    let form: Vec<(&str, &str)> = group.iter().map(|id| ("group_id", &**id)).collect();
    let task = call_ok(server, actor, "keyword-check", &form).await;
    assert_eq!(task["kind"], "keyword_check");
    let id: Uuid = task["id"].as_str().unwrap().parse().unwrap();
    let done = wait_for(server, id, TaskStatus::Completed).await;
    done.result.expect("a completed check has a result")
}

/// `(group name, article URL, matched keywords, read)` of every alert, newest first.
async fn alerts(server: &TestServer, actor: &Actor, unread_only: bool) -> Vec<Value> {
    let flag = unread_only.to_string();
    let listed = call_ok(server, actor, "alerts", &[("unread_only", &flag)]).await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| {
            json!([
                alert["group_name"],
                alert["article_url"],
                alert["matched_keywords"],
                alert["read"]
            ])
        })
        .collect()
}

async fn alert_ids(server: &TestServer, actor: &Actor) -> Vec<i64> {
    let listed = call_ok(server, actor, "alerts", &[("unread_only", "false")]).await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["id"].as_i64().unwrap())
        .collect()
}

async fn unread_by_group(server: &TestServer, actor: &Actor) -> Vec<(String, i64)> {
    let groups = call_ok(server, actor, "keyword-groups", &[]).await;
    groups
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            (
                group["name"].as_str().unwrap().to_owned(),
                group["unread_alerts"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn url(n: u32) -> String {
    format!("https://news.example/{n}")
}

#[rstest]
#[tokio::test]
async fn a_check_alerts_once_per_matching_article_and_alerts_are_marked_read(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (admin, ann, bob) = (&actors.admin, &actors.user_a, &actors.user_b);
    let runtimes = create_keyword_group(&server, admin, "Runtimes", None, "tokio, async-std").await;
    create_keyword_group(&server, admin, "Roses", Some("Gardening"), "roses").await;
    bulk_save(
        &server,
        ann,
        json!([
            { "url": url(1), "title": "Tokio 2.0", "text": "The runtime got faster." },
            { "url": url(2), "title": "Runtimes compared", "summary": "async-std and TOKIO.",
              "text": "Both run futures.", "status": "approved" },
            { "url": url(3), "title": "Cargo news", "text": "Nothing about runtimes." },
            { "url": url(4), "title": "Tokio, filtered", "text": "tokio tokio",
              "status": "filtered_relevance" },
            { "url": url(5), "title": "Pruning", "text": "Prune the roses in autumn.",
              "topic": "gardening" },
            { "url": url(6), "title": "Roses and Rust", "text": "Roses, once more.",
              "topic": "Rust" },
            { "url": url(7), "title": "Tokyo travel", "text": "A city guide." },
        ]),
    )
    .await;

    let result = check(&server, ann, None).await;
    assert_eq!(result["new_alerts"], 3, "{result:#}");
    assert_eq!(result["summary"], "3 new keyword matches.");
    assert_eq!(
        result["groups"],
        json!([
            { "group": "Runtimes", "articles_checked": 6, "new_alerts": 2 },
            { "group": "Roses", "articles_checked": 1, "new_alerts": 1 },
        ]),
        "only approved articles, and only of the group's topic"
    );
    let notice = &newest_of(&server, "ann").await[0];
    assert_eq!(notice.kind, "keyword_check_complete");
    assert_eq!(notice.message, "3 new keyword matches.");
    assert_eq!(notice.title, "“Keyword check of every group” completed");
    assert_eq!(
        alerts(&server, bob, false).await,
        [
            json!(["Roses", url(5), ["roses"], false]),
            json!(["Runtimes", url(2), ["tokio", "async-std"], false]),
            json!(["Runtimes", url(1), ["tokio"], false]),
        ],
        "everybody signed in reads them, newest first"
    );
    assert_eq!(
        unread_by_group(&server, bob).await,
        [("Roses".to_owned(), 1), ("Runtimes".to_owned(), 2)]
    );
    assert_eq!(
        call_ok(&server, bob, "stats", &[]).await["unread_alerts"],
        3
    );

    // Nothing new: no alert twice.
    let result = check(&server, bob, None).await;
    assert_eq!(result["new_alerts"], 0);
    assert_eq!(result["summary"], "No new keyword matches in 2 groups.");
    // Articles changed within a minute of a group's last check are read again (the clocks of
    // a cluster's nodes may be a little apart), without a second alert.
    let new_by_group: Vec<(Value, Value)> = result["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| (group["group"].clone(), group["new_alerts"].clone()))
        .collect();
    assert_eq!(
        new_by_group,
        [(json!("Runtimes"), json!(0)), (json!("Roses"), json!(0))]
    );
    assert_eq!(
        newest_of(&server, "bob").await[0].message,
        "No new keyword matches in 2 groups."
    );
    assert_eq!(alerts(&server, ann, false).await.len(), 3);

    // A new article, checked by a check of one group.
    bulk_save(
        &server,
        ann,
        json!([{ "url": url(8), "title": "Smol", "text": "Smaller than tokio, and roses." }]),
    )
    .await;
    let result = check(&server, ann, Some(runtimes)).await;
    assert_eq!(result["new_alerts"], 1, "{result:#}");
    assert_eq!(result["summary"], "1 new keyword match.");
    assert_eq!(
        newest_of(&server, "ann").await[0].title,
        "“Keyword check: Runtimes” completed"
    );
    let ids = alert_ids(&server, ann).await;
    assert_eq!(ids.len(), 4);

    // Read one, then all.
    let (newest, oldest) = (ids[0].to_string(), ids[3].to_string());
    let marked = call_ok(&server, bob, "mark-alerts-read", &[("id", &oldest)]).await;
    assert_eq!(marked, 1);
    let marked = call_ok(&server, bob, "mark-alerts-read", &[("id", &oldest)]).await;
    assert_eq!(marked, 0, "it was read already");
    let (status, body) = call(&server, bob, "ingest/mark-alerts-read", &[("id", "424242")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    let unread = alerts(&server, ann, true).await;
    assert_eq!(unread.len(), 3);
    assert!(!unread.contains(&json!(["Runtimes", url(1), ["tokio"], false])));
    assert_eq!(
        alerts(&server, ann, false).await[3],
        json!(["Runtimes", url(1), ["tokio"], true])
    );
    assert_eq!(
        unread_by_group(&server, ann).await,
        [("Roses".to_owned(), 1), ("Runtimes".to_owned(), 2)]
    );
    let marked = call_ok(&server, ann, "mark-alerts-read", &[]).await;
    assert_eq!(marked, 3);
    assert!(alerts(&server, ann, true).await.is_empty());
    assert_eq!(
        unread_by_group(&server, ann).await,
        [("Roses".to_owned(), 0), ("Runtimes".to_owned(), 0)]
    );
    assert_eq!(
        call_ok(&server, ann, "mark-alerts-read", &[("id", &newest)]).await,
        0
    );
    let (status, _) = call(&server, &actors.anonymous, "ingest/mark-alerts-read", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn a_changed_group_checks_every_article_again_without_repeating_alerts(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (admin, ann) = (&actors.admin, &actors.user_a);
    let group = create_keyword_group(&server, admin, "Runtimes", None, "tokio").await;
    bulk_save(
        &server,
        ann,
        json!([
            { "url": url(1), "title": "Tokio", "text": "A runtime." },
            { "url": url(2), "title": "Smol", "text": "A small runtime." },
        ]),
    )
    .await;
    assert_eq!(check(&server, ann, None).await["new_alerts"], 1);

    let group_id = group.to_string();
    let changed = call_ok(
        &server,
        admin,
        "save-keyword-group",
        &[
            ("id", &group_id),
            ("group[name]", "Runtimes"),
            ("group[keywords]", "tokio, smol"),
        ],
    )
    .await;
    assert_eq!(changed["keywords"], json!(["tokio", "smol"]));
    let result = check(&server, ann, Some(group)).await;
    assert_eq!(
        result["groups"],
        json!([{ "group": "Runtimes", "articles_checked": 2, "new_alerts": 1 }]),
        "{result:#}"
    );
    let urls: Vec<Value> = call_ok(&server, ann, "alerts", &[("unread_only", "false")])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["article_url"].clone())
        .collect();
    assert_eq!(urls, [json!(url(2)), json!(url(1))]);

    // A deleted group takes its alerts along; a check of it is refused.
    call_ok(&server, admin, "delete-keyword-group", &[("id", &group_id)]).await;
    assert!(
        call_ok(&server, ann, "alerts", &[("unread_only", "false")])
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, body) = call(
        &server,
        ann,
        "ingest/keyword-check",
        &[("group_id", &group_id)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn an_article_approved_after_a_check_is_checked_by_the_next(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (admin, ann) = (&actors.admin, &actors.user_a);
    create_keyword_group(&server, admin, "Runtimes", None, "tokio").await;
    let article = |status: &str| json!([{ "url": url(1), "title": "Tokio 2", "text": "The tokio runtime.", "status": status }]);
    bulk_save(&server, ann, article("error")).await;
    bulk_save(
        &server,
        ann,
        json!([{ "url": url(2), "title": "Smol", "text": "Tokio too." }]),
    )
    .await;
    assert_eq!(check(&server, ann, None).await["new_alerts"], 1);

    // Stored again, approved this time: its change is newer than the group's last check.
    bulk_save(&server, ann, article("approved")).await;
    let result = check(&server, ann, None).await;
    assert_eq!(result["new_alerts"], 1, "{result:#}");
    let urls: Vec<Value> = alerts(&server, ann, false)
        .await
        .into_iter()
        .map(|alert| alert[1].clone())
        .collect();
    assert_eq!(urls, [json!(url(1)), json!(url(2))]);
    server.stop().await;
}
