//! The database layer on both backends.

use chrono::{Duration, Utc};
use rstest::rstest;
use sqlx::{Connection, SqliteConnection};
use tidings::{
    config::DatabaseLocation,
    db::{Backend as DbBackend, Database, MetaKey},
};

use crate::support::{Backend, TestDatabase};

#[rstest]
#[tokio::test]
async fn migrations_apply_once_and_can_run_again(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let test_db = TestDatabase::create(backend).await;
    let database = Database::connect(&test_db.location).await.unwrap();
    assert_eq!(
        database.backend(),
        match backend {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        }
    );
    database.migrate().await.unwrap();
    let version = database.schema_version().await.unwrap();
    assert!(version.is_some_and(|v| v > 0), "{version:?}");
    database.migrate().await.unwrap();
    assert_eq!(database.schema_version().await.unwrap(), version);
    database.ping().await.unwrap();
    database.close().await;
}

#[rstest]
#[tokio::test]
async fn server_meta_values_are_set_read_and_replaced(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let test_db = TestDatabase::create(backend).await;
    let database = test_db.open().await;
    assert_eq!(
        database.meta(MetaKey::LastServerVersion).await.unwrap(),
        None
    );
    database
        .set_meta(MetaKey::LastServerVersion, "1.0.0")
        .await
        .unwrap();
    database
        .set_meta(MetaKey::LastServerVersion, "1.1.0")
        .await
        .unwrap();
    assert_eq!(
        database
            .meta(MetaKey::LastServerVersion)
            .await
            .unwrap()
            .as_deref(),
        Some("1.1.0")
    );
    // Text is stored as given, whatever it contains.
    let tricky = "'; DROP TABLE server_meta; -- ünïcödé";
    database
        .set_meta(MetaKey::LastServerVersion, tricky)
        .await
        .unwrap();
    assert_eq!(
        database
            .meta(MetaKey::LastServerVersion)
            .await
            .unwrap()
            .as_deref(),
        Some(tricky)
    );
    database.close().await;
}

#[rstest]
#[tokio::test]
async fn the_installation_time_is_kept_across_restarts(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let test_db = TestDatabase::create(backend).await;
    let first_start = Utc::now() - Duration::days(3);
    let database = test_db.open().await;
    let installed = database.record_startup(first_start, "0.1.0").await.unwrap();
    assert_eq!(installed.timestamp_millis(), first_start.timestamp_millis());
    database.close().await;

    let database = test_db.open().await;
    let restart = Utc::now();
    let installed_again = database.record_startup(restart, "0.2.0").await.unwrap();
    assert_eq!(installed_again, installed);
    assert_eq!(
        database
            .meta(MetaKey::LastServerVersion)
            .await
            .unwrap()
            .as_deref(),
        Some("0.2.0")
    );
    database.close().await;
}

#[tokio::test]
async fn the_embedded_database_is_created_in_wal_mode() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("nested/dir/tidings.db");
    let database = Database::connect(&DatabaseLocation::SqliteFile(file.clone()))
        .await
        .unwrap();
    database.migrate().await.unwrap();
    database.close().await;

    let url = format!("sqlite://{}", file.display());
    let mut connection = SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_sqlite_url_is_accepted_too() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("by-url.db").display());
    let database = Database::connect(&DatabaseLocation::Url(url))
        .await
        .unwrap();
    assert_eq!(database.backend(), DbBackend::Sqlite);
    database.migrate().await.unwrap();
    database.close().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let location = DatabaseLocation::Url("postgres://nobody:secret@127.0.0.1:1/none".into());
    let error = Database::connect(&location).await.unwrap_err().to_string();
    assert!(!error.contains("secret"), "{error}");
}
