//! The authorization matrix: the four kinds of caller every endpoint and subscription is
//! tested with — anonymous, two ordinary users (A and B) and an administrator.

use reqwest::{Method, RequestBuilder, StatusCode, header};
use serde_json::Value;
use tidings::{api::accounts::Role, services::accounts};

use super::{TestServer, WsClient};

pub const PASSWORD: &str = "correct horse battery staple";

/// One caller: its session cookie (none for the anonymous caller).
pub struct Actor {
    pub label: &'static str,
    pub cookie: Option<String>,
}

/// The four callers of the matrix, signed in to one server.
pub struct Actors {
    pub anonymous: Actor,
    pub user_a: Actor,
    pub user_b: Actor,
    pub admin: Actor,
}

/// Expected outcome per caller.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub anonymous: StatusCode,
    pub user_a: StatusCode,
    pub user_b: StatusCode,
    pub admin: StatusCode,
}

impl Expect {
    /// Anyone signed in may; anonymous callers get 401.
    pub const SIGNED_IN: Expect = Expect {
        anonymous: StatusCode::UNAUTHORIZED,
        user_a: StatusCode::OK,
        user_b: StatusCode::OK,
        admin: StatusCode::OK,
    };
    /// Only administrators may; users get 403, anonymous callers 401.
    pub const ADMIN_ONLY: Expect = Expect {
        anonymous: StatusCode::UNAUTHORIZED,
        user_a: StatusCode::FORBIDDEN,
        user_b: StatusCode::FORBIDDEN,
        admin: StatusCode::OK,
    };
    /// Everyone may, signed in or not.
    pub const PUBLIC: Expect = Expect {
        anonymous: StatusCode::OK,
        user_a: StatusCode::OK,
        user_b: StatusCode::OK,
        admin: StatusCode::OK,
    };
}

impl Actors {
    /// Creates an administrator (through first-run setup), users `ann` (A) and `bob` (B), and
    /// signs each of them in through the REST login.
    pub async fn sign_up(server: &TestServer) -> Actors {
        let state = server.state();
        accounts::setup_first_admin(state, "admin", "The Admin", PASSWORD)
            .await
            .unwrap();
        for username in ["ann", "bob"] {
            accounts::create_user(&state.db, username, "", PASSWORD, Role::User)
                .await
                .unwrap();
        }
        Actors {
            anonymous: Actor {
                label: "anonymous",
                cookie: None,
            },
            user_a: Actor::sign_in(server, "user A", "ann").await,
            user_b: Actor::sign_in(server, "user B", "bob").await,
            admin: Actor::sign_in(server, "admin", "admin").await,
        }
    }

    /// Sends the request built by `build` as every caller and checks each status; refusals
    /// must be JSON errors.
    pub async fn check(&self, expect: Expect, build: impl Fn(&Actor) -> RequestBuilder) {
        let cases = [
            (&self.anonymous, expect.anonymous),
            (&self.user_a, expect.user_a),
            (&self.user_b, expect.user_b),
            (&self.admin, expect.admin),
        ];
        for (actor, expected) in cases {
            let response = build(actor).send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_eq!(status, expected, "{} got {status}: {body}", actor.label);
            if status.is_client_error() || status.is_server_error() {
                let error: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|_| panic!("{}: error body is not JSON: {body}", actor.label));
                assert!(
                    error["error"].is_string() && error["code"].is_string(),
                    "{body}"
                );
            }
        }
    }
}

impl TestServer {
    /// A server whose users are already signed up and signed in.
    pub async fn with_actors(backend: super::Backend) -> (TestServer, Actors) {
        let server = TestServer::start(backend).await;
        let actors = Actors::sign_up(&server).await;
        (server, actors)
    }
}

impl Actor {
    pub async fn sign_in(server: &TestServer, label: &'static str, username: &str) -> Actor {
        let cookie = server.sign_in(username, PASSWORD).await;
        Actor {
            label,
            cookie: Some(cookie),
        }
    }

    /// A request as this caller, from a page of the site (same `Origin`).
    pub fn request(&self, server: &TestServer, method: Method, path: &str) -> RequestBuilder {
        let mut request = server
            .http
            .request(method, server.url(path))
            .header(header::ORIGIN, server.origin());
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request
    }

    /// Calls a server function (form-encoded, as the browser's forms do).
    pub fn call(
        &self,
        server: &TestServer,
        function: &str,
        form: &[(&str, &str)],
    ) -> RequestBuilder {
        self.request(server, Method::POST, &format!("/api/{function}"))
            .form(form)
    }

    /// `GET /api/auth/me` as this caller.
    pub async fn me(&self, server: &TestServer) -> reqwest::Response {
        self.get(server, "/api/auth/me").send().await.unwrap()
    }

    /// Calls a server function and returns only the status of its answer.
    pub async fn call_status(
        &self,
        server: &TestServer,
        function: &str,
        form: &[(&str, &str)],
    ) -> StatusCode {
        self.call(server, function, form)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// POSTs `body` as JSON to `path` as this caller; answers the status and the JSON answer.
    pub async fn post_json(
        &self,
        server: &TestServer,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .request(server, Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub fn get(&self, server: &TestServer, path: &str) -> RequestBuilder {
        self.request(server, Method::GET, path)
    }

    /// Opens a WebSocket as this caller, or returns the status the upgrade was refused with.
    pub async fn websocket(&self, server: &TestServer, path: &str) -> Result<WsClient, StatusCode> {
        let mut headers = vec![(header::ORIGIN, server.origin())];
        if let Some(cookie) = &self.cookie {
            headers.push((header::COOKIE, cookie.clone()));
        }
        server.websocket_with(path, &headers).await
    }
}
