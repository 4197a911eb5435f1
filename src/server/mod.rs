//! The HTTP server: one axum router for pages, server functions, health checks and the
//! WebSocket, bound to its listener, with graceful shutdown.

mod auth_api;
mod compat_ws;
mod extract;
mod health;
mod ingest_api;
mod notifications_api;
mod security;
mod server_fns;
mod tasks_api;
mod ws;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::FromRef,
    http::request::Parts,
    middleware,
    routing::{get, post},
    serve::ListenerExt as _,
};
use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{compression::CompressionLayer, trace::TraceLayer};

use crate::{
    app::{App, shell},
    auth::AuthState,
    config::Config,
    db::Database,
    engine::TaskEngine,
    jobs::{self, AnalysisTools},
    live::LiveHub,
    services::{self, notifications::TaskNotificationPushes, scheduler::Schedules},
};

pub use server_fns::{leptos_client_address, set_leptos_cookie};

/// How long open connections get to finish after a shutdown signal before the server stops
/// waiting for them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often expired sessions are deleted.
const SESSION_PRUNE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Everything a request handler, server function or socket may need, cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Database,
    pub info: Arc<ServerInfo>,
    pub auth: Arc<AuthState>,
    pub engine: TaskEngine,
    /// Routes task updates to the WebSocket connections that subscribed to them.
    pub live: LiveHub,
    /// The analysis queue, HTTP client and analyser the analysis jobs share.
    pub analysis: AnalysisTools,
    /// When auto-ingest and the keyword check run on their own.
    pub schedules: Schedules,
    /// Keeps the pushes of task notifications in order.
    pub task_notification_pushes: TaskNotificationPushes,
    /// Cancelled when the server begins to shut down; long-lived tasks (sockets) watch it.
    pub shutdown: CancellationToken,
}

/// Facts about this server process.
#[derive(Debug)]
pub struct ServerInfo {
    pub started_at: DateTime<Utc>,
    pub installed_at: DateTime<Utc>,
}

/// A server bound to its address, ready to serve.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Opens and migrates the database and binds the listener. Fails with a readable reason
    /// (bad configuration, database unreachable, port in use).
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let mut leptos_options = load_leptos_options(&config.leptos_config)?;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let db = Database::connect(&config.database_location())
            .await
            .context("cannot open the database")?;
        db.migrate().await?;
        let started_at = Utc::now();
        let installed_at = db.record_startup(started_at, crate::VERSION).await?;

        let address = config.listen.unwrap_or(leptos_options.site_addr);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        leptos_options.site_addr = listener.local_addr()?;
        let analysis = AnalysisTools::new(&config.analysis)?;
        let engine = TaskEngine::new(
            db.clone(),
            jobs::registry(&analysis),
            Arc::new(config.clone()),
        );
        let state = AppState {
            leptos_options,
            engine: engine.clone(),
            live: LiveHub::default(),
            analysis,
            schedules: Schedules::from_settings(&config.analysis),
            task_notification_pushes: TaskNotificationPushes::default(),
            db,
            info: Arc::new(ServerInfo {
                started_at,
                installed_at,
            }),
            auth: Arc::new(AuthState::new(
                chrono::Duration::hours(i64::from(config.session_ttl_hours)),
                config.secure_cookies,
            )),
            shutdown: CancellationToken::new(),
        };
        if let (Some(username), Some(password)) = (&config.admin_user, &config.admin_password) {
            services::accounts::bootstrap_admin(&state, username, password)
                .await
                .map_err(|error| {
                    anyhow::anyhow!("cannot create the administrator {username}: {error}")
                })?;
        }
        // The hub listens before the engine starts, so that the recovery's updates reach it too.
        state.live.start(engine.subscribe(), state.shutdown.clone());
        services::notifications::relay_task_notifications(state.clone(), engine.subscribe());
        engine
            .start()
            .await
            .context("cannot recover the tasks of the previous run")?;
        services::notifications::prune_periodically(
            state.clone(),
            config.notification_retention_days,
            Duration::from_secs(config.notification_prune_interval_secs),
        );
        services::scheduler::run_on_schedule(state.clone());
        Ok(Server { listener, state })
    }

    /// The address the server listens on (useful when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.state.leptos_options.site_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancel this token to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then lets open requests finish and closes
    /// sockets with "going away" (for at most [`SHUTDOWN_GRACE`]) and closes the database.
    pub async fn serve(self) -> anyhow::Result<()> {
        let Server { listener, state } = self;
        let shutdown = state.shutdown.clone();
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        // Live updates are many small frames: Nagle's algorithm would hold each one back until
        // the previous one is acknowledged, which a delayed ACK can stretch to 40 ms.
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot turn off Nagle's algorithm for a connection");
            }
        });
        let serving =
            axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        tokio::spawn(prune_sessions_periodically(state.clone()));
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = serving => result.context("server error")?,
            () = deadline => tracing::warn!("connections still open after the grace period; stopping anyway"),
        }
        state.engine.shutdown().await;
        state.db.close().await;
        Ok(())
    }
}

fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_csp_nonce();
        }
    };
    let render_shell = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/ws", get(ws::upgrade))
        .route("/ws/bulk-process/{job_id}", get(compat_ws::bulk_process))
        .route("/ws/progress/{topic_id}", get(compat_ws::progress))
        .route("/api/auth/login", post(auth_api::login))
        .route("/api/auth/logout", post(auth_api::logout))
        .route("/api/auth/me", get(auth_api::me))
        .nest("/api/background-tasks", tasks_api::routes())
        .nest("/api/notifications", notifications_api::routes())
        .nest("/api/auto-ingest", ingest_api::routes())
        .leptos_routes_with_context(&state, routes, context.clone(), render_shell)
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::middleware::authenticate,
        ))
        .layer(middleware::from_fn(server_fns::error_status))
        .layer(middleware::from_fn(security::headers))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Hands the response's CSP nonce to Leptos, which puts it on the scripts it renders.
fn provide_csp_nonce() {
    let nonce = use_context::<Parts>()
        .and_then(|parts| parts.extensions.get::<security::CspNonce>().cloned());
    if let Some(security::CspNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

async fn prune_sessions_periodically(state: AppState) {
    let mut ticks = tokio::time::interval(SESSION_PRUNE_INTERVAL);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match services::accounts::prune_sessions(&state.db, Utc::now()).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "expired sessions deleted"),
            Err(error) => tracing::warn!(%error, "could not delete expired sessions"),
        }
    }
}

/// Reads Leptos' runtime settings; `LEPTOS_*` environment variables override the file.
fn load_leptos_options(path: &Path) -> anyhow::Result<LeptosOptions> {
    let path_text = path
        .to_str()
        .context("the Leptos settings path is not valid UTF-8")?;
    let config = get_configuration(Some(path_text)).with_context(|| {
        format!("cannot read the Leptos settings from {path_text} (set --leptos-config)")
    })?;
    Ok(config.leptos_options)
}
