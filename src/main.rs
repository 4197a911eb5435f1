//! The `tidings` server binary.

use std::process::ExitCode;

use clap::Parser;
use tidings::{
    config::{Config, LogFormat},
    server::Server,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = init_logging(&config) {
        eprintln!("tidings: invalid log filter {:?}: {error}", config.log);
        return ExitCode::FAILURE;
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(&config).await?;
    tracing::info!(
        address = %server.local_addr(),
        database = server.state().db.backend().name(),
        version = tidings::VERSION,
        "Tidings is listening on http://{}",
        server.local_addr()
    );
    let shutdown = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        tracing::info!("shutdown requested; finishing open requests");
        shutdown.cancel();
    });
    server.serve().await?;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(config: &Config) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = EnvFilter::try_new(&config.log)?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
