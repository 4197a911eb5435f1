//! Personal API tokens, stored by the SHA-256 of their secret.

use chrono::{DateTime, Utc};

use super::{Database, DbError, execute, on_pool, users::USER_COLUMNS, users::UserRow};
use crate::api::accounts::{ApiTokenInfo, User};

const TOKEN_COLUMNS: &str =
    "api_tokens.id, api_tokens.name, api_tokens.created_at, api_tokens.last_used_at";

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for ApiTokenInfo {
    fn from(row: TokenRow) -> Self {
        ApiTokenInfo {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TokenOwnerRow {
    #[sqlx(flatten)]
    user: UserRow,
    token_id: i64,
    last_used_at: Option<DateTime<Utc>>,
}

/// A valid token: its id, when it was last used, and its (active) owner.
pub struct TokenOwner {
    pub token_id: i64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub user: User,
}

impl Database {
    pub async fn insert_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &[u8],
    ) -> Result<ApiTokenInfo, DbError> {
        let query = format!(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {TOKEN_COLUMNS}"
        );
        let row: TokenRow = on_pool!(self, |pool| {
            sqlx::query_as(&query)
                .bind(user_id)
                .bind(name)
                .bind(token_hash)
                .bind(Utc::now())
                .fetch_one(pool)
                .await
        })?;
        Ok(row.into())
    }

    /// A user's tokens, newest first.
    pub async fn api_tokens_of_user(&self, user_id: i64) -> Result<Vec<ApiTokenInfo>, DbError> {
        let query =
            format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC");
        let rows: Vec<TokenRow> = on_pool!(self, |pool| sqlx::query_as(&query)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The owner of the token with this hash, if the owner is active.
    pub async fn api_token_owner(&self, token_hash: &[u8]) -> Result<Option<TokenOwner>, DbError> {
        let query = format!(
            "SELECT {USER_COLUMNS}, api_tokens.id AS token_id, api_tokens.last_used_at FROM api_tokens \
             JOIN users ON users.id = api_tokens.user_id WHERE api_tokens.token_hash = $1 AND users.active"
        );
        let row: Option<TokenOwnerRow> = on_pool!(self, |pool| sqlx::query_as(&query)
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
        row.map(|row| {
            Ok(TokenOwner {
                token_id: row.token_id,
                last_used_at: row.last_used_at,
                user: row.user.into_user()?,
            })
        })
        .transpose()
    }

    pub async fn touch_api_token(
        &self,
        token_id: i64,
        used_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        execute!(
            self,
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2",
            used_at,
            token_id
        )?;
        Ok(())
    }

    /// Deletes a token of this user. Returns whether there was one.
    pub async fn delete_api_token(&self, user_id: i64, token_id: i64) -> Result<bool, DbError> {
        let deleted = execute!(
            self,
            "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2",
            token_id,
            user_id
        )?;
        Ok(deleted == 1)
    }
}
