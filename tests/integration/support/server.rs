use std::{net::SocketAddr, path::PathBuf};

use tidings::{
    config::{Config, LogFormat},
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
    _database: TestDatabase,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        let database = TestDatabase::create(backend).await;
        let config = Config {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: database.data_dir(),
            database_url: database.url(),
            log: "warn".into(),
            log_format: LogFormat::Text,
            leptos_config: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Leptos.toml"),
        };
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
            _database: database,
        }
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

    /// Opens a WebSocket to `path` (e.g. `/ws`).
    pub async fn websocket(&self, path: &str) -> WsClient {
        WsClient::connect(&format!("ws://{}{path}", self.address)).await
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(serving) = self.serving.take() {
            serving
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
