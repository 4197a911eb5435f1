//! The database layer: every SQL statement of Tidings lives under this module.
//!
//! Tidings runs on an embedded SQLite file by default and on PostgreSQL for clusters. Each backend
//! keeps its native pool and types (timestamps, booleans, JSON decode natively on both); a query
//! whose SQL is the same on both is written once and run on either pool through
//! [`on_pool!`]. Backend-specific SQL (row locking, notifications) matches on [`Database`].

mod api_tokens;
mod articles;
mod ingest;
mod notifications;
mod server_meta;
mod sessions;
mod tasks;
mod users;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use api_tokens::TokenOwner;
pub use articles::{ArticleRecord, ArticleStatus, Upserted};
pub use ingest::{CheckedArticle, KeywordGroupFields, KeywordWatch, SourceFields, TopicFields};
pub use notifications::{MarkedRead, NotificationInsert, TaskNotice, TaskNotification};
pub use server_meta::MetaKey;
pub use sessions::Session;
pub use tasks::{ClaimedTask, Ending, InterruptedTask, NewTask, Round, RoundDone, Settlement};
pub use users::NewUser;

use crate::config::DatabaseLocation;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a connection waits for SQLite's write lock before reporting "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free pooled connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite runs one writer at a time; a second connection waiting for the write lock sleeps
/// in SQLite's busy handler (1 ms and more per retry), which cut the task engine's throughput
/// by a fifth in the benchmark. One connection queues callers in the pool instead, without
/// sleeping; reads are short enough to share it.
const SQLITE_MAX_CONNECTIONS: u32 = 1;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Runs the same query code on whichever pool the database has. `$pool` is bound to the
/// concrete pool type in each arm, so the body is type-checked once per backend.
macro_rules! on_pool {
    ($database:expr, |$pool:ident| $body:expr) => {
        match $database {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs one statement with its bound values on either backend and returns the number of rows
/// it affected.
macro_rules! execute {
    ($database:expr, $sql:expr $(, $value:expr)* $(,)?) => {
        $crate::db::on_pool!($database, |pool| {
            sqlx::query($sql)
                $(.bind($value))*
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
    };
}
pub(crate) use execute;

/// A connection pool to the configured database.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database engine a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme in {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDirectory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// An insert hit a unique constraint (a name already taken).
    #[error("duplicate value")]
    Duplicate,
    /// A stored value that the code cannot interpret.
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
}

impl DbError {
    /// Classifies an insert error: unique violations become [`DbError::Duplicate`].
    fn from_insert(error: sqlx::Error) -> Self {
        match error.as_database_error() {
            Some(database_error) if database_error.is_unique_violation() => DbError::Duplicate,
            _ => DbError::Sqlx(error),
        }
    }
}

impl Database {
    /// Opens the database at `location`, creating an embedded SQLite file (and its directory)
    /// on first start. Does not migrate; call [`Database::migrate`].
    pub async fn connect(location: &DatabaseLocation) -> Result<Self, DbError> {
        match location {
            DatabaseLocation::SqliteFile(path) => {
                Self::connect_sqlite(SqliteConnectOptions::new().filename(path), path).await
            }
            DatabaseLocation::Url(url) if is_postgres_url(url) => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Database::Postgres(pool))
            }
            DatabaseLocation::Url(url) if url.starts_with("sqlite:") => {
                let options = SqliteConnectOptions::from_str(url)?;
                let path = options.get_filename().to_owned();
                Self::connect_sqlite(options, &path).await
            }
            DatabaseLocation::Url(url) => Err(DbError::UnsupportedUrl(redact(url))),
        }
    }

    async fn connect_sqlite(options: SqliteConnectOptions, file: &Path) -> Result<Self, DbError> {
        if let Some(directory) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(|source| DbError::CreateDirectory {
                path: directory.display().to_string(),
                source,
            })?;
        }
        // WAL lets readers work while one writer commits; NORMAL sync is durable across
        // application crashes and is the recommended pairing with WAL.
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        // A connection to a local file does not go stale: skip the ping sqlx would otherwise
        // send before every use (a round trip to the connection's thread each time).
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Database::Sqlite(pool))
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Database::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Database::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers a query.
    pub async fn ping(&self) -> Result<(), DbError> {
        execute!(self, "SELECT 1")?;
        Ok(())
    }

    /// The newest migration applied to this database, or `None` before the first migration.
    pub async fn schema_version(&self) -> Result<Option<i64>, DbError> {
        let version = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await
        })?;
        Ok(version)
    }

    /// Waits for in-flight queries and closes every pooled connection.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await);
    }
}

/// Database failures as the API reports them: a taken name is a conflict, an unreachable
/// database is "unavailable", anything else is logged here and answered as an internal error.
impl From<DbError> for crate::error::AppError {
    fn from(error: DbError) -> Self {
        use crate::error::AppError;
        match error {
            DbError::Duplicate => AppError::Conflict("this already exists".into()),
            DbError::Sqlx(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => {
                tracing::warn!(%error, "database unavailable");
                AppError::Unavailable("the database is not answering".into())
            }
            error => {
                tracing::error!(%error, "database error");
                AppError::Internal
            }
        }
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The scheme of a URL only, so that an error message never carries a password.
fn redact(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) => format!("{scheme}:…"),
        None => "(no scheme)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_urls_are_reported_without_their_secrets() {
        assert_eq!(redact("mysql://root:hunter2@db/x"), "mysql:…");
        assert_eq!(redact("hunter2"), "(no scheme)");
    }

    #[tokio::test]
    async fn refuses_an_unknown_scheme() {
        let location = DatabaseLocation::Url("mysql://root:hunter2@db/x".into());
        let error = Database::connect(&location).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("unsupported database URL scheme"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
