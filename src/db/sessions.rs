//! Browser sessions, stored by the SHA-256 of their token.

use chrono::{DateTime, Utc};

use super::{Database, DbError, execute, on_pool, users::USER_COLUMNS, users::UserRow};
use crate::api::accounts::User;

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    expires_at: DateTime<Utc>,
}

/// A live session: whose it is and until when it is valid.
pub struct Session {
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

impl Database {
    pub async fn insert_session(
        &self,
        token_hash: &[u8],
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        execute!(
            self,
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash,
            user_id,
            Utc::now(),
            expires_at
        )?;
        Ok(())
    }

    /// The session with this token hash, if it has not expired and its user is active.
    pub async fn active_session(&self, token_hash: &[u8]) -> Result<Option<Session>, DbError> {
        let query = format!(
            "SELECT {USER_COLUMNS}, sessions.expires_at FROM sessions \
             JOIN users ON users.id = sessions.user_id \
             WHERE sessions.token_hash = $1 AND sessions.expires_at > $2 AND users.active"
        );
        let row: Option<SessionRow> = on_pool!(self, |pool| {
            sqlx::query_as(&query)
                .bind(token_hash)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await
        })?;
        row.map(|row| {
            Ok(Session {
                user: row.user.into_user()?,
                expires_at: row.expires_at,
            })
        })
        .transpose()
    }

    pub async fn extend_session(
        &self,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        execute!(
            self,
            "UPDATE sessions SET expires_at = $1 WHERE token_hash = $2",
            expires_at,
            token_hash
        )?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), DbError> {
        execute!(
            self,
            "DELETE FROM sessions WHERE token_hash = $1",
            token_hash
        )?;
        Ok(())
    }

    /// Ends every session of a user except `keep` (the caller's own, when changing their own
    /// password). Returns how many ended.
    pub async fn delete_sessions_of_user(
        &self,
        user_id: i64,
        keep: Option<&[u8]>,
    ) -> Result<u64, DbError> {
        let keep = keep.unwrap_or_default();
        let deleted = execute!(
            self,
            "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2",
            user_id,
            keep
        )?;
        Ok(deleted)
    }

    /// Deletes sessions that expired before `now`. Returns how many.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, DbError> {
        let deleted = execute!(self, "DELETE FROM sessions WHERE expires_at <= $1", now)?;
        Ok(deleted)
    }
}
