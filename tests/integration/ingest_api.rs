//! The REST API of auto-ingest (`/api/auto-ingest/…`) and the server functions of the ingest
//! pages, with good and bad input: each key of the configuration checked on its own and named
//! when wrong (and then nothing changes), who may change what, the status and the counts, and
//! the validation of topics, sources and keyword groups.

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};

use crate::support::{
    Actor, Actors, Backend, Expect, TestServer,
    ingest::{
        REST, bulk_save, call_ok, config, configure, create_keyword_group, create_source,
        create_topic, rest,
    },
    notifications::call,
};

fn defaults() -> Value {
    json!({
        "enabled": false,
        "quality_control_enabled": true,
        "min_relevance_threshold": 0.3,
        "batch_size": 10,
        "max_concurrent_batches": 2,
    })
}

/// Calls `ingest/{function}` as `actor`; expects `status` and, for an error, a message
/// starting with `start`.
async fn refused(
    server: &TestServer,
    actor: &Actor,
    function: &str,
    form: &[(&str, &str)],
    status: StatusCode,
    start: &str,
) {
    let (answered, body) = call(server, actor, &format!("ingest/{function}"), form).await;
    assert_eq!(answered, status, "{function} {form:?}: {body}");
    let error = body["error"].as_str().expect("an error message");
    assert!(error.starts_with(start), "{function} {form:?}: {error}");
}

#[rstest]
#[tokio::test]
async fn each_config_key_is_checked_and_a_refused_change_changes_nothing(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let admin = &actors.admin;
    assert_eq!(config(&server, &actors.user_a).await, defaults());

    let bad = [
        (json!({ "batchsize": 3 }), "batchsize: unknown setting"),
        (
            json!({ "batch_size": 0 }),
            "batch_size: must be between 1 and 100",
        ),
        (
            json!({ "batch_size": 101 }),
            "batch_size: must be between 1 and 100",
        ),
        (
            json!({ "batch_size": -1 }),
            "batch_size: must be a whole number",
        ),
        (
            json!({ "batch_size": 2.5 }),
            "batch_size: must be a whole number",
        ),
        (
            json!({ "max_concurrent_batches": 17 }),
            "max_concurrent_batches: must be between 1 and 16",
        ),
        (
            json!({ "max_concurrent_batches": 0 }),
            "max_concurrent_batches: must be between 1 and 16",
        ),
        (
            json!({ "min_relevance_threshold": 1.5 }),
            "min_relevance_threshold: must be between 0 and 1",
        ),
        (
            json!({ "min_relevance_threshold": -0.1 }),
            "min_relevance_threshold: must be between 0 and 1",
        ),
        (
            json!({ "min_relevance_threshold": "x" }),
            "min_relevance_threshold: must be a number",
        ),
        (
            json!({ "enabled": "yes" }),
            "enabled: must be true or false",
        ),
        (
            json!({ "quality_control_enabled": 1 }),
            "quality_control_enabled: must be true or false",
        ),
        // A good key does not carry a bad one through.
        (
            json!({ "batch_size": 50, "max_concurrent_batches": 40 }),
            "max_concurrent_batches: must be between 1 and 16",
        ),
    ];
    for (body, message) in bad {
        let (status, answer) = rest(&server, admin, Method::POST, "/config", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["error"], message, "{body}");
        assert_eq!(answer["code"], "bad_request");
        assert_eq!(
            config(&server, admin).await,
            defaults(),
            "{body} changed nothing"
        );
    }
    for (body, expected) in [
        ("[1, 2]", StatusCode::UNPROCESSABLE_ENTITY),
        ("\"batch_size\"", StatusCode::UNPROCESSABLE_ENTITY),
        ("{\"batch_size\": ", StatusCode::BAD_REQUEST),
    ] {
        let response = admin
            .request(&server, Method::POST, &format!("{REST}/config"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{body}");
    }
    assert_eq!(config(&server, admin).await, defaults());

    // A good change keeps the keys it does not name.
    let (status, answer) = rest(
        &server,
        admin,
        Method::POST,
        "/config",
        Some(&json!({ "batch_size": 25, "min_relevance_threshold": 0.5,
                      "quality_control_enabled": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["message"], "Configuration saved");
    let saved = json!({
        "enabled": false,
        "quality_control_enabled": false,
        "min_relevance_threshold": 0.5,
        "batch_size": 25,
        "max_concurrent_batches": 2,
    });
    assert_eq!(answer["config"], saved);
    assert_eq!(config(&server, &actors.user_b).await, saved);
    let status = call_ok(&server, &actors.user_b, "status", &[]).await;
    assert_eq!(status["config"], saved);
    // The bounds themselves are fine.
    configure(
        &server,
        admin,
        json!({ "batch_size": 100, "max_concurrent_batches": 16, "min_relevance_threshold": 0 }),
    )
    .await;
    configure(
        &server,
        admin,
        json!({ "batch_size": 1, "max_concurrent_batches": 1, "min_relevance_threshold": 1 }),
    )
    .await;

    // Only administrators change it; everybody signed in reads it.
    let change = json!({ "batch_size": 7 });
    actors
        .check(Expect::ADMIN_ONLY, |actor| {
            actor
                .request(&server, Method::POST, &format!("{REST}/config"))
                .json(&change)
        })
        .await;
    assert_eq!(config(&server, admin).await["batch_size"], 7);
    for path in ["/config", "/status", "/stats"] {
        actors
            .check(Expect::SIGNED_IN, |actor| {
                actor.get(&server, &format!("{REST}{path}"))
            })
            .await;
    }
    // The server function checks the same way.
    let form = [
        ("config[enabled]", "false"),
        ("config[quality_control_enabled]", "true"),
        ("config[min_relevance_threshold]", "0.3"),
        ("config[batch_size]", "0"),
        ("config[max_concurrent_batches]", "2"),
    ];
    refused(
        &server,
        admin,
        "config",
        &form,
        StatusCode::BAD_REQUEST,
        "batch_size:",
    )
    .await;
    refused(
        &server,
        &actors.user_a,
        "config",
        &form,
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    assert_eq!(config(&server, admin).await["batch_size"], 7);
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn enable_and_disable_persist_and_status_and_stats_count(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let (admin, ann) = (&actors.admin, &actors.user_a);
    let (status, body) = rest(&server, ann, Method::GET, "/status", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "success": true, "enabled": false, "running": false, "task_id": null,
                "config": defaults(), "pending_count": 0, "schedule_interval_secs": null })
    );

    let (status, body) = rest(&server, admin, Method::POST, "/enable", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Auto-ingest enabled");
    assert_eq!(body["config"]["enabled"], true);
    assert_eq!(config(&server, ann).await["enabled"], true);
    let (_, body) = rest(&server, ann, Method::GET, "/status", None).await;
    assert_eq!(body["enabled"], true);
    let (status, body) = rest(&server, admin, Method::POST, "/disable", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Auto-ingest disabled");
    assert_eq!(config(&server, ann).await, defaults());
    for path in ["/enable", "/disable"] {
        actors
            .check(Expect::ADMIN_ONLY, |actor| {
                actor.request(&server, Method::POST, &format!("{REST}{path}"))
            })
            .await;
    }
    assert_eq!(config(&server, ann).await["enabled"], false);

    // Counts: sources (one of them off), topics, groups and stored articles by status.
    let topic = create_topic(&server, admin, "Rust", "", "tokio").await;
    create_source(&server, admin, "On", "https://a.example/feed", Some(topic)).await;
    let off = create_source(&server, admin, "Off", "https://b.example/feed", None).await;
    let switched = call_ok(
        &server,
        admin,
        "enable-source",
        &[("id", &off.to_string()), ("enabled", "false")],
    )
    .await;
    assert_eq!(switched["enabled"], false);
    create_keyword_group(&server, admin, "Watch", None, "tokio").await;
    let (_, body) = rest(&server, ann, Method::GET, "/status", None).await;
    assert_eq!(body["pending_count"], 1, "only enabled sources are read");
    bulk_save(
        &server,
        ann,
        json!([
            { "url": "https://a.example/1", "title": "One" },
            { "url": "https://a.example/2", "title": "Two", "status": "approved" },
            { "url": "https://a.example/3", "title": "Three", "status": "filtered_relevance" },
            { "url": "https://a.example/4", "title": "Four", "status": "filtered_quality" },
            { "url": "https://a.example/5", "title": "Five", "status": "filtered_quality" },
            { "url": "https://a.example/6", "title": "Six", "status": "error" },
        ]),
    )
    .await;
    let (status, body) = rest(&server, ann, Method::GET, "/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    let mut stats = body["stats"].clone();
    assert!(
        stats["last_ingested_at"].as_str().is_some(),
        "the newest article's time: {stats}"
    );
    stats["last_ingested_at"] = Value::Null;
    assert_eq!(
        stats,
        json!({ "articles": 6, "approved": 2, "filtered_relevance": 1, "filtered_quality": 2,
                "errors": 1, "sources": 2, "enabled_sources": 1, "topics": 1,
                "keyword_groups": 1, "unread_alerts": 0, "last_ingested_at": null })
    );
    let by_function = call_ok(&server, &actors.user_b, "stats", &[]).await;
    assert_eq!(by_function["articles"], 6);
    assert_eq!(
        by_function["last_ingested_at"],
        body["stats"]["last_ingested_at"]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_status_names_the_schedule() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.analysis.auto_ingest_interval_secs = Some(3600);
    })
    .await;
    let actors = Actors::sign_up(&server).await;
    let (_, body) = rest(&server, &actors.user_a, Method::GET, "/status", None).await;
    assert_eq!(body["schedule_interval_secs"], 3600, "{body}");
    let status = call_ok(&server, &actors.user_a, "status", &[]).await;
    assert_eq!(status["schedule_interval_secs"], 3600);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_anonymous_callers_get_json_errors() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    for method in [Method::GET, Method::POST, Method::DELETE] {
        for path in ["/nothing-here", "/config/extra", "/run/now"] {
            let (status, body) = rest(&server, &actors.user_a, method.clone(), path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert_eq!(body["code"], "not_found", "{method} {path}");
        }
    }
    for (method, path) in [
        (Method::GET, "/config"),
        (Method::POST, "/config"),
        (Method::POST, "/enable"),
        (Method::POST, "/disable"),
        (Method::GET, "/status"),
        (Method::POST, "/run"),
        (Method::GET, "/stats"),
    ] {
        let body = json!({});
        let (status, answer) = rest(
            &server,
            &actors.anonymous,
            method.clone(),
            path,
            Some(&body),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {answer}"
        );
        assert_eq!(answer["code"], "unauthorized");
    }
    let tasks = server.state().db.task_summary(None).await.unwrap();
    assert_eq!(tasks.total, 0, "no run was started");
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn topics_are_validated_unique_and_for_administrators(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let admin = &actors.admin;
    let long_name = "n".repeat(201);
    let long_description = "d".repeat(2001);
    let long_keyword = format!("rust, {}", "k".repeat(101));
    let many_keywords = (0..101)
        .map(|n| format!("k{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let bad = [
        ("", "", "", "name:"),
        ("   ", "", "", "name:"),
        (&*long_name, "", "", "name:"),
        ("Rust", &*long_description, "", "description:"),
        ("Rust", "", &*long_keyword, "keywords:"),
        ("Rust", "", &*many_keywords, "keywords:"),
    ];
    for (name, description, keywords, field) in bad {
        let form = [
            ("topic[name]", name),
            ("topic[description]", description),
            ("topic[keywords]", keywords),
        ];
        refused(
            &server,
            admin,
            "save-topic",
            &form,
            StatusCode::BAD_REQUEST,
            field,
        )
        .await;
    }
    assert_eq!(call_ok(&server, admin, "topics", &[]).await, json!([]));

    let form = [
        ("topic[name]", " Rust "),
        ("topic[description]", "The language"),
        ("topic[keywords]", "tokio, Cargo\nasync, TOKIO"),
    ];
    actors
        .check(Expect::ADMIN_ONLY, |actor| {
            actor.call(&server, "ingest/save-topic", &form)
        })
        .await;
    let topics = call_ok(&server, &actors.user_a, "topics", &[]).await;
    assert_eq!(topics.as_array().unwrap().len(), 1);
    let topic = &topics[0];
    assert_eq!(topic["name"], "Rust", "trimmed");
    assert_eq!(topic["keywords"], json!(["tokio", "Cargo", "async"]));
    let id = topic["id"].to_string();

    refused(
        &server,
        admin,
        "save-topic",
        &form,
        StatusCode::CONFLICT,
        "a topic \"Rust\" exists already",
    )
    .await;
    let other = create_topic(&server, admin, "Gardening", "", "").await;
    let rename = [("id", &*other.to_string()), ("topic[name]", "Rust")];
    refused(
        &server,
        admin,
        "save-topic",
        &rename,
        StatusCode::CONFLICT,
        "a topic",
    )
    .await;
    let unknown = [("id", "424242"), ("topic[name]", "Anything")];
    refused(
        &server,
        admin,
        "save-topic",
        &unknown,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    let changed = call_ok(
        &server,
        admin,
        "save-topic",
        &[("id", &id), ("topic[name]", "Rust language")],
    )
    .await;
    assert_eq!(changed["name"], "Rust language");
    assert_eq!(changed["keywords"], json!([]));

    refused(
        &server,
        &actors.user_a,
        "delete-topic",
        &[("id", &id)],
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    refused(
        &server,
        admin,
        "delete-topic",
        &[("id", "424242")],
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    call_ok(&server, admin, "delete-topic", &[("id", &id)]).await;
    let names: Vec<Value> = call_ok(&server, admin, "topics", &[])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|topic| topic["name"].clone())
        .collect();
    assert_eq!(names, [json!("Gardening")]);
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "ingest/topics", &[])
        })
        .await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn sources_need_a_feed_url_and_a_known_topic(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let admin = &actors.admin;
    let long_url = format!("https://example.com/{}", "a".repeat(2000));
    for feed_url in [
        "",
        "not a url",
        "ftp://example.com/feed.xml",
        "javascript:alert(1)",
        "http://",
        "/relative/feed.xml",
        &*long_url,
    ] {
        let form = [("source[name]", "Blog"), ("source[feed_url]", feed_url)];
        refused(
            &server,
            admin,
            "save-source",
            &form,
            StatusCode::BAD_REQUEST,
            "feed_url:",
        )
        .await;
    }
    let form = [
        ("source[name]", " "),
        ("source[feed_url]", "https://example.com/feed"),
    ];
    refused(
        &server,
        admin,
        "save-source",
        &form,
        StatusCode::BAD_REQUEST,
        "name:",
    )
    .await;
    let form = [
        ("source[name]", "Blog"),
        ("source[feed_url]", "https://example.com/feed"),
        ("source[topic_id]", "424242"),
    ];
    refused(
        &server,
        admin,
        "save-source",
        &form,
        StatusCode::BAD_REQUEST,
        "topic_id: no topic 424242",
    )
    .await;
    assert_eq!(call_ok(&server, admin, "sources", &[]).await, json!([]));

    let topic = create_topic(&server, admin, "Rust", "", "")
        .await
        .to_string();
    let form = [
        ("source[name]", "Blog"),
        ("source[feed_url]", " https://example.com/feed "),
        ("source[topic_id]", &*topic),
    ];
    actors
        .check(Expect::ADMIN_ONLY, |actor| {
            actor.call(&server, "ingest/save-source", &form)
        })
        .await;
    let sources = call_ok(&server, &actors.user_b, "sources", &[]).await;
    let source = &sources[0];
    assert_eq!(source["feed_url"], "https://example.com/feed", "trimmed");
    assert_eq!(source["topic_name"], "Rust");
    assert_eq!(source["enabled"], true);
    assert!(source["last_fetched_at"].is_null());
    let id = source["id"].to_string();
    let again = [
        ("source[name]", "Another name"),
        ("source[feed_url]", "https://example.com/feed"),
    ];
    refused(
        &server,
        admin,
        "save-source",
        &again,
        StatusCode::CONFLICT,
        "a source with the feed",
    )
    .await;

    let off = [("id", &*id), ("enabled", "false")];
    refused(
        &server,
        &actors.user_a,
        "enable-source",
        &off,
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    refused(
        &server,
        admin,
        "enable-source",
        &[("id", "424242"), ("enabled", "false")],
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    assert_eq!(
        call_ok(&server, admin, "enable-source", &off).await["enabled"],
        false
    );
    // A deleted topic leaves its sources without one.
    call_ok(&server, admin, "delete-topic", &[("id", &topic)]).await;
    let source = &call_ok(&server, admin, "sources", &[]).await[0];
    assert_eq!(
        (&source["topic_id"], &source["topic_name"]),
        (&Value::Null, &Value::Null)
    );
    refused(
        &server,
        admin,
        "delete-source",
        &[("id", "424242")],
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    call_ok(&server, admin, "delete-source", &[("id", &id)]).await;
    assert_eq!(call_ok(&server, admin, "sources", &[]).await, json!([]));
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn keyword_groups_need_a_keyword_and_a_free_name(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let admin = &actors.admin;
    let long_topic = "t".repeat(201);
    for (name, topic, keywords, field) in [
        ("", "", "tokio", "name:"),
        ("Watch", "", " , \n ", "keywords:"),
        ("Watch", "", "", "keywords:"),
        ("Watch", &*long_topic, "tokio", "topic:"),
    ] {
        let form = [
            ("group[name]", name),
            ("group[topic]", topic),
            ("group[keywords]", keywords),
        ];
        refused(
            &server,
            admin,
            "save-keyword-group",
            &form,
            StatusCode::BAD_REQUEST,
            field,
        )
        .await;
    }
    let form = [
        ("group[name]", "Watch"),
        ("group[topic]", " "),
        ("group[keywords]", "tokio, smol"),
    ];
    actors
        .check(Expect::ADMIN_ONLY, |actor| {
            actor.call(&server, "ingest/save-keyword-group", &form)
        })
        .await;
    let groups = call_ok(&server, &actors.user_a, "keyword-groups", &[]).await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    assert_eq!(groups[0]["topic"], Value::Null, "a blank topic is none");
    assert_eq!(groups[0]["keywords"], json!(["tokio", "smol"]));
    assert_eq!(groups[0]["unread_alerts"], 0);
    refused(
        &server,
        admin,
        "save-keyword-group",
        &form,
        StatusCode::CONFLICT,
        "a keyword group \"Watch\" exists already",
    )
    .await;
    let id = groups[0]["id"].to_string();
    refused(
        &server,
        &actors.user_a,
        "delete-keyword-group",
        &[("id", &id)],
        StatusCode::FORBIDDEN,
        "",
    )
    .await;
    refused(
        &server,
        admin,
        "delete-keyword-group",
        &[("id", "424242")],
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    // A keyword check of a group that does not exist is refused before it starts.
    refused(
        &server,
        &actors.user_a,
        "keyword-check",
        &[("group_id", "424242")],
        StatusCode::BAD_REQUEST,
        "group_id: no keyword group 424242",
    )
    .await;
    call_ok(&server, admin, "delete-keyword-group", &[("id", &id)]).await;
    assert_eq!(
        call_ok(&server, admin, "keyword-groups", &[]).await,
        json!([])
    );
    server.stop().await;
}

#[tokio::test]
async fn article_listings_refuse_bad_filters() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let ann = &actors.user_a;
    let long_query = "q".repeat(201);
    for (form, field) in [
        (vec![("filter[status]", "bogus")], "status:"),
        (vec![("filter[limit]", "0")], "limit:"),
        (vec![("filter[limit]", "201")], "limit:"),
        (vec![("filter[query]", &*long_query)], "query:"),
    ] {
        refused(
            &server,
            ann,
            "articles",
            &form,
            StatusCode::BAD_REQUEST,
            field,
        )
        .await;
    }
    refused(
        &server,
        ann,
        "article",
        &[("id", "424242")],
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    bulk_save(
        &server,
        ann,
        json!([
            { "url": "https://a.example/1", "title": "Tokio one", "topic": "Rust" },
            { "url": "https://a.example/2", "title": "Roses", "topic": "Gardening" },
            { "url": "https://a.example/3", "title": "Tokio three", "topic": "Rust",
              "status": "error" },
        ]),
    )
    .await;
    let titles = |page: &Value| -> Vec<Value> {
        page["articles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|article| article["title"].clone())
            .collect()
    };
    let page = call_ok(
        &server,
        ann,
        "articles",
        &[("filter[topic]", "rust"), ("filter[query]", "TOKIO")],
    )
    .await;
    assert_eq!(titles(&page), [json!("Tokio three"), json!("Tokio one")]);
    let page = call_ok(&server, ann, "articles", &[("filter[status]", "error")]).await;
    assert_eq!(titles(&page), [json!("Tokio three")]);
    // Pages of two, newest first, by cursor.
    let first = call_ok(&server, ann, "articles", &[("filter[limit]", "2")]).await;
    assert_eq!(titles(&first), [json!("Tokio three"), json!("Roses")]);
    let cursor = first["next_cursor"].to_string();
    let rest_of = call_ok(
        &server,
        ann,
        "articles",
        &[("filter[limit]", "2"), ("filter[before]", &cursor)],
    )
    .await;
    assert_eq!(titles(&rest_of), [json!("Tokio one")]);
    assert!(rest_of["next_cursor"].is_null());
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "ingest/articles", &[("filter[limit]", "5")])
        })
        .await;
    server.stop().await;
}

/// The fields of a form, as a server function receives them.
type Form<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn the_dashboard_job_functions_refuse_bad_input_and_anonymous_callers() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let ann = &actors.user_a;
    let bad_requests: [(&str, Form, &str); 6] = [
        (
            "bulk-analysis",
            &[("urls", " \n "), ("topic", "Rust")],
            "urls",
        ),
        (
            "bulk-analysis",
            &[("urls", "ftp://x.example/a"), ("topic", "Rust")],
            "urls[0]",
        ),
        (
            "bulk-analysis",
            &[("urls", "https://x.example/a"), ("topic", " ")],
            "topic",
        ),
        ("bulk-save", &[("articles", "not json")], "articles"),
        ("bulk-save", &[("articles", "[]")], "articles"),
        (
            "bulk-save",
            &[("articles", r#"[{"url": "https://x.example/a"}]"#)],
            "articles[0].title",
        ),
    ];
    for (function, form, field) in bad_requests {
        refused(&server, ann, function, form, StatusCode::BAD_REQUEST, field).await;
    }
    let valid: [(&str, Form); 2] = [
        (
            "bulk-analysis",
            &[("urls", "https://x.example/a"), ("topic", "Rust")],
        ),
        (
            "bulk-save",
            &[(
                "articles",
                r#"[{"url": "https://x.example/a", "title": "A"}]"#,
            )],
        ),
    ];
    for (function, form) in valid {
        refused(
            &server,
            &actors.anonymous,
            function,
            form,
            StatusCode::UNAUTHORIZED,
            "",
        )
        .await;
    }
    let tasks = server.state().db.task_summary(None).await.unwrap();
    assert_eq!(tasks.total, 0, "nothing was started");
    server.stop().await;
}
