//! The `tidings` server binary.

use std::{io::IsTerminal, process::ExitCode};

use anyhow::Context as _;
use clap::Parser;
use tidings::{
    api::accounts::Role,
    config::{Command, Config, LogFormat},
    db::Database,
    server::Server,
    services::accounts,
};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = init_logging(&config) {
        eprintln!("tidings: invalid log filter {:?}: {error}", config.log);
        return ExitCode::FAILURE;
    }
    let outcome = match config.command.clone() {
        Some(command) => run_command(&config, command).await,
        None => run(config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Installed before anything else, so that a signal arriving during start-up already
    // means "shut down gracefully" rather than the default "die at once".
    let mut signals = ShutdownSignals::install()?;
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
        signals.received().await;
        tracing::info!("shutdown requested; finishing open requests");
        shutdown.cancel();
    });
    server.serve().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs an administrative command against the configured database.
async fn run_command(config: &Config, command: Command) -> anyhow::Result<()> {
    let db = Database::connect(&config.database_location())
        .await
        .context("cannot open the database")?;
    db.migrate().await?;
    let outcome = match command {
        Command::CreateUser {
            username,
            display_name,
            admin,
        } => {
            let role = if admin { Role::Admin } else { Role::User };
            let password = read_password()?;
            accounts::create_user(&db, &username, &display_name, &password, role)
                .await
                .map(|user| println!("created {} ({})", user.username, user.role.as_str()))
        }
        Command::ResetPassword { username } => {
            let password = read_password()?;
            accounts::set_password_by_username(&db, &username, &password)
                .await
                .map(|()| {
                    println!(
                        "password of {} changed; their sessions ended",
                        username.trim()
                    )
                })
        }
    };
    db.close().await;
    outcome.map_err(|error| anyhow::anyhow!("{error}"))
}

/// The password for a command: `TIDINGS_PASSWORD`, else the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("TIDINGS_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn init_logging(config: &Config) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = EnvFilter::try_new(&config.log)?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM, caught.
struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves when either signal arrives.
    async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
