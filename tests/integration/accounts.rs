//! Accounts and security: first run, sessions, API tokens, throttling, CSRF and cross-site
//! WebSocket refusal, and the authorization matrix of every account endpoint.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode, header};
use rstest::rstest;
use serde_json::{Value, json};
use tidings::{api::accounts::Role, auth::credentials, services::accounts};

use crate::support::{Actor, Backend, Expect, PASSWORD, TestServer, session_cookie};

fn location(response: &reqwest::Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

#[tokio::test]
async fn a_fresh_install_leads_every_page_to_setup() {
    let server = TestServer::start(Backend::Sqlite).await;
    for path in ["/", "/login", "/account", "/admin/users", "/anything"] {
        let response = server.get(path).await;
        assert!(
            response.status().is_redirection(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(location(&response), "/setup", "{path}");
    }
    assert_eq!(server.get("/setup").await.status(), StatusCode::OK);
    // API calls are never redirected: they get 401 JSON.
    let response = server.get("/api/auth/me").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "unauthorized"
    );
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn setup_creates_exactly_one_admin_even_when_submitted_twice_at_once(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let anonymous = Actor {
        label: "anonymous",
        cookie: None,
    };
    let submit = |username: &'static str| {
        let form = [
            ("username", username),
            ("display_name", ""),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ];
        anonymous.call(&server, "accounts/setup", &form).send()
    };
    let (first, second) = tokio::join!(submit("alice"), submit("albert"));
    let statuses = [first.unwrap().status(), second.unwrap().status()];
    let succeeded = statuses
        .iter()
        .filter(|status| status.is_success() || status.is_redirection())
        .count();
    assert_eq!(succeeded, 1, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::CONFLICT), "{statuses:?}");
    let users = server.state().db.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, Role::Admin);

    // Once done, setup is closed and pages lead to the login.
    let response = server.get("/setup").await;
    assert_eq!(location(&response), "/login");
    let response = submit("mallory").await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test]
async fn setup_rejects_bad_input_and_changes_nothing() {
    let server = TestServer::start(Backend::Sqlite).await;
    let anonymous = Actor {
        label: "anonymous",
        cookie: None,
    };
    let cases: [(&str, &str, &str, &str); 4] = [
        ("ab", PASSWORD, PASSWORD, "username"),
        ("bad name!", PASSWORD, PASSWORD, "username"),
        ("carol", "short", "short", "password"),
        ("carol", PASSWORD, "something else", "differ"),
    ];
    for (username, password, confirmation, complaint) in cases {
        let form = [
            ("username", username),
            ("display_name", ""),
            ("password", password),
            ("password_confirmation", confirmation),
        ];
        let response = anonymous
            .call(&server, "accounts/setup", &form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{username}");
        let body = response.text().await.unwrap();
        assert!(body.contains(complaint), "{body}");
    }
    assert!(!server.state().db.any_user_exists().await.unwrap());
    server.stop().await;
}

#[tokio::test]
async fn pages_need_a_session_and_come_back_after_login() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let response = server.get("/admin/users?tab=active").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/login?next=%2Fadmin%2Fusers%3Ftab%3Dactive"
    );
    assert_eq!(server.get("/login").await.status(), StatusCode::OK);
    // Files of the site are public: never sent to the login.
    for file in ["/favicon.svg", "/pkg/tidings.css"] {
        assert!(!server.get(file).await.status().is_redirection(), "{file}");
    }
    // Signed in, the login page is pointless and leads home.
    let response = actors.user_a.get(&server, "/login").send().await.unwrap();
    assert_eq!(location(&response), "/");

    // Logging in through the form's server function goes to `next` — local targets only.
    let anonymous = &actors.anonymous;
    for (next, expected) in [
        ("/account", "/account"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
    ] {
        let form = [("username", "ann"), ("password", PASSWORD), ("next", next)];
        // A browser without the WASM posts the form itself and follows the redirect.
        let response = anonymous
            .call(&server, "accounts/login", &form)
            .header(header::ACCEPT, "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(location(&response), expected);
        assert!(session_cookie(&response).is_some());
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn login_sets_a_safe_cookie_and_logout_ends_the_session(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let response = server
        .http
        .post(server.url("/api/auth/login"))
        .json(&json!({ "username": "ANN", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "ann");
    assert!(body["user"].get("password_hash").is_none());

    let me = actors.user_a.me(&server).await;
    assert_eq!(me.json::<Value>().await.unwrap()["user"]["username"], "ann");
    let logout = actors
        .user_a
        .request(&server, Method::POST, "/api/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(
        logout.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let me = actors.user_a.me(&server).await;
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "the old cookie no longer works"
    );
    // Other sessions are untouched.
    let me = actors.user_b.me(&server).await;
    assert_eq!(me.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn login_rejects_bad_input_with_clear_errors() {
    let (server, _actors) = TestServer::with_actors(Backend::Sqlite).await;
    let login = |body: &str| {
        server
            .http
            .post(server.url("/api/auth/login"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
    };
    let cases = [
        (
            r#"{"username":"ann","password":"nope nope nope"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            r#"{"username":"nobody","password":"nope nope nope"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (r#"{"username":"ann"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"username":1,"password":2}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"username":"ann","password":"x","admin":true}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"username":"ann","#, StatusCode::BAD_REQUEST),
        ("'; DROP TABLE users; --", StatusCode::BAD_REQUEST),
    ];
    for (body, expected) in cases {
        let response = login(body).await.unwrap();
        assert_eq!(response.status(), expected, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().is_some_and(|text| !text.is_empty()),
            "{error}"
        );
    }
    let huge = json!({ "username": "ann", "password": "x".repeat(3 * 1024 * 1024) }).to_string();
    assert_eq!(
        login(&huge).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(server.state().db.users().await.unwrap().len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after() {
    let (server, _actors) = TestServer::with_actors(Backend::Sqlite).await;
    let attempt = |username: &str, password: &str| {
        server
            .http
            .post(server.url("/api/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            attempt("ann", "wrong password").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = attempt("ann", "wrong password").await.unwrap();
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = blocked.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(
        blocked.json::<Value>().await.unwrap()["code"],
        "rate_limited"
    );
    // The blocked username stays blocked even with the right password; others are not slowed.
    assert_eq!(
        attempt("ann", PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt("bob", PASSWORD).await.unwrap().status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn cross_site_requests_with_the_cookie_are_refused() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let cookie = actors.user_a.cookie.clone().unwrap();
    let forged = |path: &str, origin: &str| {
        server
            .http
            .post(server.url(path))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, origin)
            .form(&[("name", "stolen")])
            .send()
    };
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        for path in [
            "/api/auth/logout",
            "/api/accounts/tokens/create",
            "/api/accounts/logout",
        ] {
            let response = forged(path, origin).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} from {origin}"
            );
            assert_eq!(response.json::<Value>().await.unwrap()["code"], "forbidden");
        }
    }
    // Nothing happened: no token was created and the session still works.
    let tokens = actors
        .user_a
        .call(&server, "accounts/tokens/list", &[])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.json::<Vec<Value>>().await.unwrap().len(), 0);
    let me = actors.user_a.me(&server).await;
    assert_eq!(me.status(), StatusCode::OK);
    // Same-site requests (matching Origin, or a Referer of our own) pass.
    let referer = server
        .http
        .post(server.url("/api/accounts/tokens/create"))
        .header(header::COOKIE, &cookie)
        .header(header::REFERER, format!("{}/account", server.origin()))
        .form(&[("name", "mine")])
        .send()
        .await
        .unwrap();
    assert_eq!(referer.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn cross_site_websockets_are_refused() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let cookie = actors.user_a.cookie.clone().unwrap();
    let hijack = server
        .websocket_with(
            "/ws",
            &[
                (header::COOKIE, cookie.clone()),
                (header::ORIGIN, "http://evil.example".into()),
            ],
        )
        .await;
    assert_eq!(hijack.err(), Some(StatusCode::FORBIDDEN));
    let anonymous = actors.anonymous.websocket(&server, "/ws").await;
    assert_eq!(anonymous.err(), Some(StatusCode::UNAUTHORIZED));
    let mut own = actors.user_a.websocket(&server, "/ws").await.unwrap();
    assert_eq!(own.receive_json().await["type"], "hello");
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn api_tokens_authenticate_rest_and_websocket_until_revoked(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let created: Value = actors
        .user_a
        .call(
            &server,
            "accounts/tokens/create",
            &[("name", "  nightly import  ")],
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(credentials::API_TOKEN_PREFIX));
    assert_eq!(created["token"]["name"], "nightly import");
    let bearer = format!("Bearer {secret}");

    // The token is stored only as a hash.
    let stored = server
        .state()
        .db
        .api_token_owner(&credentials::hash_token(&secret))
        .await
        .unwrap();
    assert_eq!(stored.unwrap().user.username, "ann");

    let me = server.me_with(&bearer).await;
    assert_eq!(me.json::<Value>().await.unwrap()["user"]["username"], "ann");
    // Bearer requests need no Origin: they carry no ambient credentials.
    let call = server
        .http
        .post(server.url("/api/accounts/tokens/list"))
        .header(header::AUTHORIZATION, &bearer)
        .header(header::ORIGIN, "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), StatusCode::OK);
    let listed: Vec<Value> = call.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].get("secret").is_none(),
        "secrets are shown only once"
    );
    assert!(listed[0]["last_used_at"].is_string());

    let mut socket = server
        .websocket_with("/ws", &[(header::AUTHORIZATION, bearer.clone())])
        .await
        .unwrap();
    assert_eq!(socket.receive_json().await["type"], "hello");

    // Another user cannot revoke it (404), its owner can.
    let id = created["token"]["id"].to_string();
    assert_eq!(
        actors
            .user_b
            .call_status(&server, "accounts/tokens/revoke", &[("id", &id)])
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        actors
            .user_a
            .call_status(&server, "accounts/tokens/revoke", &[("id", &id)])
            .await,
        StatusCode::OK
    );
    let me = server.me_with(&bearer).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let refused = server
        .websocket_with("/ws", &[(header::AUTHORIZATION, bearer)])
        .await;
    assert_eq!(refused.err(), Some(StatusCode::UNAUTHORIZED));
    for malformed in ["Bearer", "Basic YW5uOnB3", "Bearer not-a-token"] {
        let response = server.me_with(malformed).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{malformed}");
    }
    let bad_names = [("name", ""), ("name", "   ")];
    for form in bad_names {
        assert_eq!(
            actors
                .user_a
                .call_status(&server, "accounts/tokens/create", &[form])
                .await,
            StatusCode::BAD_REQUEST
        );
    }
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn sessions_expire_and_are_renewed_past_half_their_life(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let db = &server.state().db;
    let token_of = |actor: &Actor| {
        let cookie = actor.cookie.as_deref().unwrap();
        credentials::hash_token(cookie.trim_start_matches("tidings_session="))
    };
    // Test servers give sessions 24 hours; one with 2 hours left is renewed.
    db.extend_session(&token_of(&actors.user_a), Utc::now() + Duration::hours(2))
        .await
        .unwrap();
    let response = actors.user_a.me(&server).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(renewed.contains("Max-Age=86"), "{renewed}");
    let fresh = actors.user_b.me(&server).await;
    assert!(
        fresh.headers().get(header::SET_COOKIE).is_none(),
        "no renewal for a fresh session"
    );

    db.extend_session(&token_of(&actors.user_b), Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    let expired = actors.user_b.me(&server).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(accounts::prune_sessions(db, Utc::now()).await.unwrap(), 1);
    server.stop().await;
}

#[tokio::test]
async fn changing_a_password_ends_the_other_sessions() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let second = Actor::sign_in(&server, "ann elsewhere", "ann").await;
    let new_password = "a brand new passphrase";
    let change = |current: &str, new: &str, confirmation: &str| {
        let form = [
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
            ("new_password_confirmation", confirmation.to_owned()),
        ];
        actors
            .user_a
            .request(&server, Method::POST, "/api/accounts/password")
            .form(&form)
            .send()
    };
    assert_eq!(
        change("wrong current", new_password, new_password)
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        change(PASSWORD, new_password, "typo")
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        change(PASSWORD, "short", "short").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        change(PASSWORD, new_password, new_password)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let still = actors.user_a.me(&server).await;
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "the session that changed it stays"
    );
    let other = second.me(&server).await;
    assert_eq!(
        other.status(),
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    server.sign_in("ann", new_password).await;
    server.stop().await;
}

#[rstest]
#[tokio::test]
async fn admins_manage_users_and_users_cannot(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let (server, actors) = TestServer::with_actors(backend).await;
    let ann = server
        .state()
        .db
        .user_by_username("ann")
        .await
        .unwrap()
        .unwrap();
    let ann_id = ann.id.to_string();

    actors
        .check(Expect::ADMIN_ONLY, |actor| {
            actor.call(&server, "admin/users/list", &[])
        })
        .await;
    let forbidden = Expect {
        admin: StatusCode::BAD_REQUEST,
        ..Expect::ADMIN_ONLY
    };
    // Forbidden for users; bad input (a short password) for the admin — nothing changes.
    actors
        .check(forbidden, |actor| {
            actor.call(
                &server,
                "admin/users/password",
                &[("id", &ann_id), ("password", "short")],
            )
        })
        .await;
    let create = [
        ("username", "carol"),
        ("display_name", "Carol"),
        ("password", PASSWORD),
        ("role", "user"),
    ];
    assert_eq!(
        actors
            .user_a
            .call_status(&server, "admin/users/create", &create)
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/create", &create)
            .await,
        StatusCode::OK
    );
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/create", &create)
            .await,
        StatusCode::CONFLICT
    );
    let bad_role = [
        ("username", "dave"),
        ("display_name", ""),
        ("password", PASSWORD),
        ("role", "root"),
    ];
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/create", &bad_role)
            .await,
        StatusCode::BAD_REQUEST
    );

    // Deactivation ends the user's sessions and blocks their login.
    let deactivate = [("id", ann_id.as_str()), ("active", "false")];
    assert_eq!(
        actors
            .user_b
            .call_status(&server, "admin/users/active", &deactivate)
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/active", &deactivate)
            .await,
        StatusCode::OK
    );
    let me = actors.user_a.me(&server).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let login = server
        .http
        .post(server.url("/api/auth/login"))
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);

    // Role changes; the last administrator cannot demote or deactivate themselves.
    let promote = [("id", ann_id.as_str()), ("role", "admin")];
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/role", &promote)
            .await,
        StatusCode::OK
    );
    let admin_id = server
        .state()
        .db
        .user_by_username("admin")
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let self_deactivate = [("id", admin_id.as_str()), ("active", "false")];
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/active", &self_deactivate)
            .await,
        StatusCode::BAD_REQUEST
    );
    let missing = [("id", "999999"), ("role", "user")];
    assert_eq!(
        actors
            .admin
            .call_status(&server, "admin/users/role", &missing)
            .await,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn the_account_endpoints_follow_the_authorization_matrix() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    actors
        .check(Expect::PUBLIC, |actor| actor.get(&server, "/healthz"))
        .await;
    actors
        .check(Expect::PUBLIC, |actor| actor.get(&server, "/readyz"))
        .await;
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.get(&server, "/api/auth/me")
        })
        .await;
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "accounts/tokens/list", &[])
        })
        .await;
    actors
        .check(Expect::SIGNED_IN, |actor| {
            actor.call(&server, "accounts/tokens/create", &[("name", "t")])
        })
        .await;
    actors
        .check(Expect::PUBLIC, |actor| {
            actor.call(&server, "accounts/me", &[])
        })
        .await;
    actors
        .check(Expect::ADMIN_ONLY, |actor| {
            actor.call(&server, "admin/users/list", &[])
        })
        .await;
    // Each user sees only their own tokens.
    let mine: Vec<Value> = actors
        .user_b
        .call(&server, "accounts/tokens/list", &[])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    for (actor, expected) in [
        (&actors.anonymous, Err(StatusCode::UNAUTHORIZED)),
        (&actors.user_a, Ok(())),
        (&actors.admin, Ok(())),
    ] {
        assert_eq!(
            actor.websocket(&server, "/ws").await.map(drop),
            expected,
            "{}",
            actor.label
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_admin_from_the_environment_is_created_once() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.admin_user = Some("Root.Admin".into());
        config.admin_password = Some(PASSWORD.into());
    })
    .await;
    let admin = server
        .state()
        .db
        .user_by_username("root.admin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    server.sign_in("root.admin", PASSWORD).await;
    // With a user in place, the variables change nothing.
    accounts::bootstrap_admin(server.state(), "other", PASSWORD)
        .await
        .unwrap();
    assert_eq!(server.state().db.users().await.unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_cli_creates_users_and_resets_passwords() {
    let directory = tempfile::tempdir().unwrap();
    let run = |arguments: &[&str], password: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(["--data-dir", directory.path().to_str().unwrap()])
            .args(arguments)
            .env("TIDINGS_PASSWORD", password)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let created = run(
        &["create-user", "Eve", "--admin", "--display-name", "Eve E."],
        PASSWORD,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created eve (admin)"));
    let duplicate = run(&["create-user", "eve"], PASSWORD);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("taken"));
    let weak = run(&["create-user", "frank"], "weak");
    assert!(!weak.status.success());
    let reset = run(&["reset-password", "eve"], "another long passphrase");
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let unknown = run(&["reset-password", "nobody"], "another long passphrase");
    assert!(!unknown.status.success());

    let db = tidings::db::Database::connect(&tidings::config::DatabaseLocation::SqliteFile(
        directory.path().join("tidings.db"),
    ))
    .await
    .unwrap();
    let (eve, hash) = db.user_with_password_hash("eve").await.unwrap().unwrap();
    assert_eq!(
        (eve.role, eve.display_name.as_str()),
        (Role::Admin, "Eve E.")
    );
    assert!(
        credentials::verify_password("another long passphrase".into(), Some(hash))
            .await
            .unwrap()
    );
    db.close().await;
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_hashes() {
    let (server, _actors) = TestServer::with_actors(Backend::Sqlite).await;
    let (_, hash) = server
        .state()
        .db
        .user_with_password_hash("ann")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    server.stop().await;
}
