//! Users.

use chrono::{DateTime, Utc};

use super::{Database, DbError, execute, on_pool};
use crate::api::accounts::{Role, User};

/// Columns of a user as the rest of the app sees it (no password hash).
pub(super) const USER_COLUMNS: &str =
    "users.id, users.username, users.display_name, users.role, users.active, users.created_at";

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    role: String,
    active: bool,
    created_at: DateTime<Utc>,
}

impl UserRow {
    pub(super) fn into_user(self) -> Result<User, DbError> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            DbError::Corrupt(format!("user {} has role {:?}", self.id, self.role))
        })?;
        Ok(User {
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            role,
            active: self.active,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserWithHashRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

/// What it takes to create a user; the password is already hashed.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

impl Database {
    /// Creates a user. Fails with [`DbError::Duplicate`] when the username is taken.
    pub async fn insert_user(&self, new: &NewUser<'_>) -> Result<User, DbError> {
        let now = Utc::now();
        let id: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(
                // A new user has not missed the broadcasts sent before they joined: they start
                // read (visible in the inbox, not counted by the bell).
                "INSERT INTO users (username, display_name, password_hash, role, active, created_at, updated_at, broadcasts_read_through) \
                 VALUES ($1, $2, $3, $4, TRUE, $5, $5, \
                 (SELECT COALESCE(MAX(id), 0) FROM notifications WHERE recipient_id IS NULL)) RETURNING id",
            )
            .bind(new.username)
            .bind(new.display_name)
            .bind(new.password_hash)
            .bind(new.role.as_str())
            .bind(now)
            .fetch_one(pool)
            .await
        })
        .map_err(DbError::from_insert)?;
        self.user(id)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("user {id} vanished")))
    }

    /// Creates the first administrator, unless any user exists. Safe against concurrent calls
    /// (two setup forms submitted at once, several nodes starting): exactly one wins; the
    /// others get `None`.
    pub async fn insert_first_admin(&self, new: &NewUser<'_>) -> Result<Option<User>, DbError> {
        let now = Utc::now();
        let inserted: Option<i64> = on_pool!(self, |pool| {
            let mut transaction = pool.begin().await?;
            // Concurrent callers queue on this row's key; the later ones then insert nothing.
            let claimed = sqlx::query(
                "INSERT INTO server_meta (key, value, updated_at) VALUES ('first_admin_created_at', $1, $2) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(now.to_rfc3339())
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected()
                == 1;
            let id = if claimed {
                sqlx::query_scalar(
                    "INSERT INTO users (username, display_name, password_hash, role, active, created_at, updated_at) \
                     SELECT $1, $2, $3, 'admin', TRUE, $4, $4 WHERE NOT EXISTS (SELECT 1 FROM users) RETURNING id",
                )
                .bind(new.username)
                .bind(new.display_name)
                .bind(new.password_hash)
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await?
            } else {
                None
            };
            transaction.commit().await?;
            Ok::<_, sqlx::Error>(id)
        })?;
        match inserted {
            Some(id) => self.user(id).await,
            None => Ok(None),
        }
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, DbError> {
        let query = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = on_pool!(self, |pool| {
            sqlx::query_as(&query).bind(id).fetch_optional(pool).await
        })?;
        row.map(UserRow::into_user).transpose()
    }

    /// A user and their password hash, for checking a login.
    pub async fn user_with_password_hash(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, DbError> {
        let query =
            format!("SELECT {USER_COLUMNS}, users.password_hash FROM users WHERE username = $1");
        let row: Option<UserWithHashRow> = on_pool!(self, |pool| {
            sqlx::query_as(&query)
                .bind(username)
                .fetch_optional(pool)
                .await
        })?;
        row.map(|row| Ok((row.user.into_user()?, row.password_hash)))
            .transpose()
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, DbError> {
        Ok(self
            .user_with_password_hash(username)
            .await?
            .map(|(user, _)| user))
    }

    /// All users, by username.
    pub async fn users(&self) -> Result<Vec<User>, DbError> {
        let query = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> =
            on_pool!(self, |pool| sqlx::query_as(&query).fetch_all(pool).await)?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    pub async fn any_user_exists(&self) -> Result<bool, DbError> {
        let exists = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
                .fetch_one(pool)
                .await
        })?;
        Ok(exists)
    }

    /// Active administrators other than `except`.
    pub async fn count_other_active_admins(&self, except: i64) -> Result<i64, DbError> {
        let count = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND active AND id <> $1",
            )
            .bind(except)
            .fetch_one(pool)
            .await
        })?;
        Ok(count)
    }

    /// Sets a user's password hash. Returns whether the user exists.
    pub async fn set_password_hash(&self, id: i64, password_hash: &str) -> Result<bool, DbError> {
        self.update_user(id, "password_hash", password_hash).await
    }

    pub async fn set_user_role(&self, id: i64, role: Role) -> Result<bool, DbError> {
        self.update_user(id, "role", role.as_str()).await
    }

    pub async fn set_user_display_name(
        &self,
        id: i64,
        display_name: &str,
    ) -> Result<bool, DbError> {
        self.update_user(id, "display_name", display_name).await
    }

    pub async fn set_user_active(&self, id: i64, active: bool) -> Result<bool, DbError> {
        let affected = execute!(
            self,
            "UPDATE users SET active = $1, updated_at = $2 WHERE id = $3",
            active,
            Utc::now(),
            id
        )?;
        Ok(affected == 1)
    }

    /// Sets one text column of a user; `column` is one of this module's constants, never input.
    async fn update_user(
        &self,
        id: i64,
        column: &'static str,
        value: &str,
    ) -> Result<bool, DbError> {
        let query = format!("UPDATE users SET {column} = $1, updated_at = $2 WHERE id = $3");
        let affected = execute!(self, &query, value, Utc::now(), id)?;
        Ok(affected == 1)
    }
}
