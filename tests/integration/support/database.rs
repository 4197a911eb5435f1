use std::path::PathBuf;

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use tidings::{config::DatabaseLocation, db::Database};

/// The environment variable naming a PostgreSQL role that may create databases.
const POSTGRES_URL_VARIABLE: &str = "TIDINGS_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database that is dropped again when this value is dropped.
pub struct TestDatabase {
    pub location: DatabaseLocation,
    /// Holds the SQLite file and serves as the server's data directory.
    pub directory: TempDir,
    postgres: Option<PostgresDatabase>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let (location, postgres) = match backend {
            Backend::Sqlite => (
                DatabaseLocation::SqliteFile(directory.path().join("tidings.db")),
                None,
            ),
            Backend::Postgres => {
                let database = PostgresDatabase::create().await;
                (DatabaseLocation::Url(database.url.clone()), Some(database))
            }
        };
        TestDatabase {
            location,
            directory,
            postgres,
        }
    }

    /// The database URL for the server's configuration (`None`: the embedded default).
    pub fn url(&self) -> Option<String> {
        self.postgres.as_ref().map(|database| database.url.clone())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.directory.path().to_owned()
    }

    /// Connects and migrates, as the server does at start-up.
    pub async fn open(&self) -> Database {
        let database = Database::connect(&self.location)
            .await
            .expect("database opens");
        database.migrate().await.expect("migrations apply");
        database
    }
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create() -> Self {
        let admin_url = std::env::var(POSTGRES_URL_VARIABLE).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VARIABLE} is not set: PostgreSQL tests need a role that may \
                 create databases (scripts/test.sh sets one up)"
            )
        });
        let name = format!("tidings_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL answers");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let url = with_database(&admin_url, &name);
        PostgresDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside a runtime: do the async cleanup on a thread
        // with a runtime of its own.
        let admin_url = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin.execute(statement.as_str()).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        });
        if let Ok(Err(error)) = cleanup.join() {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

#[test]
fn replaces_the_database_of_a_url() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres", "x"),
        "postgres://u:p@h:5432/x"
    );
    assert_eq!(with_database("postgres://u:p@h", "x"), "postgres://u:p@h/x");
    assert_eq!(
        with_database("postgres://h/db?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
}
