use std::{net::SocketAddr, path::PathBuf};

use tidings::{
    config::{AnalysisSettings, Config, LogFormat, TaskSettings},
    server::{AppState, Server},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Backend, TestDatabase, WsClient};

/// The real server, serving on an ephemeral port of 127.0.0.1 with a database of its own.
pub struct TestServer {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    state: AppState,
    shutdown: CancellationToken,
    serving: Option<JoinHandle<anyhow::Result<()>>>,
    config: Config,
    /// Kept for the server's lifetime (dropping it deletes the database); taken by `restart`.
    database: Option<TestDatabase>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server after `adjust` has changed its configuration.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let database = TestDatabase::create(backend).await;
        let mut config = Config {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: database.data_dir(),
            database_url: database.url(),
            log: "warn".into(),
            log_format: LogFormat::Text,
            leptos_config: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Leptos.toml"),
            session_ttl_hours: 24,
            secure_cookies: false,
            admin_user: None,
            admin_password: None,
            tasks: TaskSettings::default(),
            // The fixture servers of the tests listen on the loopback interface.
            analysis: AnalysisSettings {
                allow_private_fetch: true,
                ..AnalysisSettings::default()
            },
            notification_retention_days: 90,
            notification_prune_interval_secs: 3600,
            command: None,
        };
        adjust(&mut config);
        Self::serve(config, database).await
    }

    async fn serve(config: Config, database: TestDatabase) -> Self {
        let server = Server::bind(&config).await.expect("server starts");
        let address = server.local_addr();
        let state = server.state().clone();
        let shutdown = server.shutdown_token();
        let serving = Some(tokio::spawn(server.serve()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        TestServer {
            address,
            http,
            state,
            shutdown,
            serving,
            config,
            database: Some(database),
        }
    }

    /// Shuts the server down gracefully and starts a new one on the same database.
    pub async fn restart(mut self) -> Self {
        self.stop_serving().await;
        let config = self.config.clone();
        let database = self.database.take().expect("a server has its database");
        Self::serve(config, database).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET answered")
    }

    /// The `Origin` of the site's own pages.
    pub fn origin(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Opens a WebSocket to `path` (e.g. `/ws`) with extra request headers, or returns the
    /// status the upgrade was refused with.
    pub async fn websocket_with(
        &self,
        path: &str,
        headers: &[(reqwest::header::HeaderName, String)],
    ) -> Result<WsClient, reqwest::StatusCode> {
        WsClient::connect(&format!("ws://{}{path}", self.address), headers).await
    }

    /// `GET /api/auth/me` with this `Authorization` header value.
    pub async fn me_with(&self, authorization: &str) -> reqwest::Response {
        let request = self.http.get(self.url("/api/auth/me"));
        request
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the REST API and returns the session cookie (`name=value`).
    pub async fn sign_in(&self, username: &str, password: &str) -> String {
        let response = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "sign in as {username}"
        );
        session_cookie(&response).expect("a session cookie")
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        self.stop_serving().await;
    }

    async fn stop_serving(&mut self) {
        self.shutdown.cancel();
        if let Some(serving) = self.serving.take() {
            serving
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

/// The `name=value` of the session cookie a response sets, if any.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("tidings_session="))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
