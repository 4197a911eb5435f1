//! Server configuration: command-line flags, each with an environment variable.
//!
//! Every setting has a safe default so that `tidings` with no arguments serves the app on
//! SQLite in `./data`. Leptos' own settings (site root, output name) come from `Leptos.toml`,
//! whose values `LEPTOS_*` environment variables override.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

/// File name of the embedded SQLite database inside the data directory.
const SQLITE_FILE_NAME: &str = "tidings.db";

#[derive(Clone, Debug, Parser)]
#[command(
    name = "tidings",
    version,
    about = "Long-running background work that people can watch"
)]
pub struct Config {
    /// Address and port to listen on [default: `site-addr` of Leptos.toml, 127.0.0.1:3000].
    #[arg(long, env = "TIDINGS_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Directory for the embedded database and generated secrets; created when missing.
    #[arg(long, env = "TIDINGS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`
    /// [default: the SQLite file `tidings.db` in the data directory].
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Log filter in `tracing` syntax, e.g. `info` or `info,tidings=debug,sqlx=warn`.
    #[arg(long, env = "TIDINGS_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "TIDINGS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Path of the Leptos runtime settings.
    #[arg(long, env = "TIDINGS_LEPTOS_CONFIG", default_value = "Leptos.toml")]
    pub leptos_config: PathBuf,

    /// How long a browser session lasts without use, in hours; use renews it.
    #[arg(long, env = "TIDINGS_SESSION_TTL_HOURS", default_value_t = 336,
          value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub session_ttl_hours: u32,

    /// Mark the session cookie `Secure`: set this when users reach Tidings over HTTPS.
    #[arg(long, env = "TIDINGS_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Username of an administrator to create at start-up when no user exists yet (with
    /// `TIDINGS_ADMIN_PASSWORD`); ignored once any user exists.
    #[arg(long, env = "TIDINGS_ADMIN_USER")]
    pub admin_user: Option<String>,

    /// Password of that administrator.
    #[arg(long, env = "TIDINGS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    #[command(flatten)]
    pub tasks: TaskSettings,

    #[command(flatten)]
    pub analysis: AnalysisSettings,

    /// Read notifications (and broadcasts) are deleted this many days after they were sent.
    #[arg(long, env = "TIDINGS_NOTIFICATION_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub notification_retention_days: u32,

    /// How often, in seconds, notifications past their retention are deleted.
    #[arg(long, env = "TIDINGS_NOTIFICATION_PRUNE_INTERVAL_SECS", default_value_t = 60 * 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub notification_prune_interval_secs: u64,

    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

const DEFAULT_MAX_CONCURRENT_TASKS: u32 = 3;
const DEFAULT_TASK_RETENTION_HOURS: u32 = 7 * 24;
const DEFAULT_TASK_PRUNE_INTERVAL_SECS: u64 = 60 * 60;

/// How the task engine runs tasks.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct TaskSettings {
    /// How many tasks run at once on this server; the others wait in the queue.
    #[arg(long = "max-concurrent-tasks", env = "TIDINGS_MAX_CONCURRENT_TASKS",
          default_value_t = DEFAULT_MAX_CONCURRENT_TASKS,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent: u32,

    /// How many tasks of one user run at once, so that one user cannot hold every slot
    /// [default: no limit beyond --max-concurrent-tasks].
    #[arg(long = "max-tasks-per-user", env = "TIDINGS_MAX_TASKS_PER_USER",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_per_user: Option<u32>,

    /// Finished tasks are deleted this many hours after they completed.
    #[arg(long = "task-retention-hours", env = "TIDINGS_TASK_RETENTION_HOURS",
          default_value_t = DEFAULT_TASK_RETENTION_HOURS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_hours: u32,

    /// How often, in seconds, finished tasks past their retention are deleted.
    #[arg(long = "task-prune-interval-secs", env = "TIDINGS_TASK_PRUNE_INTERVAL_SECS",
          default_value_t = DEFAULT_TASK_PRUNE_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub prune_interval_secs: u64,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            max_concurrent: DEFAULT_MAX_CONCURRENT_TASKS,
            max_per_user: None,
            retention_hours: DEFAULT_TASK_RETENTION_HOURS,
            prune_interval_secs: DEFAULT_TASK_PRUNE_INTERVAL_SECS,
        }
    }
}

/// How the analysis jobs fetch and judge articles.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct AnalysisSettings {
    /// Articles waiting or being analysed at once, over all tasks; a request for more than
    /// the free places is refused with 503.
    #[arg(long = "analysis-queue-capacity", env = "TIDINGS_ANALYSIS_QUEUE_CAPACITY",
          default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub queue_capacity: u32,

    /// Articles analysed at once.
    #[arg(long = "analysis-workers", env = "TIDINGS_ANALYSIS_WORKERS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,

    /// An article whose fetching and analysis take longer fails.
    #[arg(long = "analysis-item-timeout-secs", env = "TIDINGS_ANALYSIS_ITEM_TIMEOUT_SECS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub item_timeout_secs: u64,

    /// Most URLs in one bulk analysis.
    #[arg(long = "bulk-analysis-max-urls", env = "TIDINGS_BULK_ANALYSIS_MAX_URLS",
          default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_urls: u32,

    /// Base URL of an OpenAI-compatible API (e.g. `https://api.openai.com/v1`) to judge and
    /// summarise articles; the deterministic analyser answers when it is unset or fails.
    #[arg(long = "openai-base-url", env = "TIDINGS_OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// API key of that service.
    #[arg(
        long = "openai-api-key",
        env = "TIDINGS_OPENAI_API_KEY",
        hide_env_values = true
    )]
    pub openai_api_key: Option<String>,

    /// Model to ask.
    #[arg(
        long = "openai-model",
        env = "TIDINGS_OPENAI_MODEL",
        default_value = "gpt-4o-mini"
    )]
    pub openai_model: String,

    /// Seconds between scheduled auto-ingest runs (while auto-ingest is enabled in its
    /// configuration); no schedule when unset.
    #[arg(long = "auto-ingest-interval-secs", env = "TIDINGS_AUTO_INGEST_INTERVAL_SECS",
          value_parser = clap::value_parser!(u64).range(60..))]
    pub auto_ingest_interval_secs: Option<u64>,

    /// Seconds between scheduled keyword checks of every group; no schedule when unset.
    #[arg(long = "keyword-check-interval-secs", env = "TIDINGS_KEYWORD_CHECK_INTERVAL_SECS",
          value_parser = clap::value_parser!(u64).range(60..))]
    pub keyword_check_interval_secs: Option<u64>,

    /// Let feeds and pages be fetched from loopback, private and link-local addresses. Off by
    /// default, so that a URL somebody enters cannot reach services inside the network.
    #[arg(long = "allow-private-fetch", env = "TIDINGS_ALLOW_PRIVATE_FETCH")]
    pub allow_private_fetch: bool,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            queue_capacity: 100,
            workers: 3,
            item_timeout_secs: 60,
            max_urls: 100,
            openai_base_url: None,
            openai_api_key: None,
            openai_model: "gpt-4o-mini".into(),
            auto_ingest_interval_secs: None,
            keyword_check_interval_secs: None,
            allow_private_fetch: false,
        }
    }
}

/// Administrative commands run against the configured database, then exit.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Create a user. The password is read from TIDINGS_PASSWORD or, without it, from the first
    /// line of standard input.
    CreateUser {
        username: String,
        /// Name shown in the UI [default: the username].
        #[arg(long, default_value = "")]
        display_name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password for a user and end their sessions. The password is read like for
    /// `create-user`.
    ResetPassword { username: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where the data lives, decided from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// The embedded database file.
    SqliteFile(PathBuf),
    /// A database given by URL (`sqlite:` or `postgres:`).
    Url(String),
}

impl Config {
    /// The database to open: `--database-url` when given, else the embedded file.
    pub fn database_location(&self) -> DatabaseLocation {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => DatabaseLocation::Url(url.trim().to_owned()),
            _ => DatabaseLocation::SqliteFile(self.data_dir.join(SQLITE_FILE_NAME)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("tidings").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_to_sqlite_in_the_data_directory() {
        let config = parse(&["--data-dir", "/var/lib/tidings"]);
        assert_eq!(
            config.database_location(),
            DatabaseLocation::SqliteFile("/var/lib/tidings/tidings.db".into())
        );
        assert_eq!(config.listen, None);
    }

    #[test]
    fn database_url_wins_over_the_data_directory() {
        let config = parse(&["--database-url", "postgres://u:p@localhost/tidings"]);
        assert_eq!(
            config.database_location(),
            DatabaseLocation::Url("postgres://u:p@localhost/tidings".into())
        );
    }

    #[test]
    fn analysis_settings_default_like_the_flags() {
        assert_eq!(parse(&[]).analysis, AnalysisSettings::default());
    }

    #[test]
    fn task_settings_default_like_the_flags() {
        assert_eq!(parse(&[]).tasks, TaskSettings::default());
        let config = parse(&["--max-concurrent-tasks", "8", "--max-tasks-per-user", "2"]);
        assert_eq!(
            (config.tasks.max_concurrent, config.tasks.max_per_user),
            (8, Some(2))
        );
        assert!(Config::try_parse_from(["tidings", "--max-concurrent-tasks", "0"]).is_err());
    }

    #[test]
    fn rejects_a_bad_listen_address() {
        let error = Config::try_parse_from(["tidings", "--listen", "localhost"]).unwrap_err();
        assert!(error.to_string().contains("--listen"), "{error}");
    }
}
