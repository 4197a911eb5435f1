//! Facts about this installation kept in the database itself (`server_meta`), shared by every
//! node that uses the same database.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Database, DbError, execute, on_pool};

/// The keys Tidings stores in `server_meta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    /// When the database was first used by a Tidings server (RFC 3339); written once.
    InstalledAt,
    /// When a server last started on this database (RFC 3339).
    LastStartedAt,
    /// The version of the server that last started on this database.
    LastServerVersion,
}

impl MetaKey {
    fn as_str(self) -> &'static str {
        match self {
            MetaKey::InstalledAt => "installed_at",
            MetaKey::LastStartedAt => "last_started_at",
            MetaKey::LastServerVersion => "last_server_version",
        }
    }
}

impl Database {
    /// Reads one value of `server_meta`.
    pub async fn meta(&self, key: MetaKey) -> Result<Option<String>, DbError> {
        let value = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM server_meta WHERE key = $1")
                .bind(key.as_str())
                .fetch_optional(pool)
                .await
        })?;
        Ok(value)
    }

    /// Sets one value of `server_meta`, replacing any earlier value.
    pub async fn set_meta(&self, key: MetaKey, value: &str) -> Result<(), DbError> {
        execute!(
            self,
            "INSERT INTO server_meta (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key.as_str(),
            value,
            Utc::now(),
        )?;
        Ok(())
    }

    /// Records a server start: the installation time on the very first start, and the time and
    /// version of this start. Returns the installation time.
    pub async fn record_startup(
        &self,
        started_at: DateTime<Utc>,
        server_version: &str,
    ) -> Result<DateTime<Utc>, DbError> {
        let started = started_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        // Two nodes may start at once: the insert keeps whichever came first.
        execute!(
            self,
            "INSERT INTO server_meta (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
            MetaKey::InstalledAt.as_str(),
            &started,
            started_at,
        )?;
        self.set_meta(MetaKey::LastStartedAt, &started).await?;
        self.set_meta(MetaKey::LastServerVersion, server_version)
            .await?;
        let installed = self.meta(MetaKey::InstalledAt).await?.unwrap_or(started);
        Ok(DateTime::parse_from_rfc3339(&installed).map_or(started_at, |t| t.with_timezone(&Utc)))
    }
}
