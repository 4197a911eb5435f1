//! Who is calling: credentials (passwords, session and API tokens), the one current-user
//! extractor used by REST handlers, server functions and the WebSocket upgrade, the request
//! middleware that resolves it, and the login throttle.
//!
//! The scoping rule of Tidings: a user sees and acts on their own objects, an admin on all; an
//! object of somebody else answers 404 ([`CurrentUser::may_access`]).

pub mod credentials;
pub mod middleware;
pub mod throttle;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
};

use crate::{
    api::accounts::{Role, User},
    error::AppError,
};

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    pub user: User,
    /// How the caller proved who they are.
    pub method: AuthMethod,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A browser session cookie; carries the SHA-256 of the session token.
    Session { token_hash: Vec<u8> },
    /// A personal API token (`Authorization: Bearer`).
    ApiToken { token_id: i64 },
}

impl CurrentUser {
    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether this caller may see and act on an object owned by `owner` (a user id; `None`
    /// for system objects, which only admins may touch).
    pub fn may_access(&self, owner: Option<i64>) -> bool {
        self.is_admin() || owner == Some(self.user.id)
    }

    /// Fails with 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden("this needs an administrator".into()))
        }
    }
}

/// Extracts the caller resolved by [`middleware::authenticate`]; 401 when there is none.
impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        current_user(parts).ok_or_else(not_signed_in)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(current_user(parts))
    }
}

impl CurrentUser {
    /// The caller of the server function or page being run; 401 when there is none.
    pub fn from_leptos_context() -> Result<Self, AppError> {
        Self::optional_from_leptos_context().ok_or_else(not_signed_in)
    }

    /// The caller of the server function or page being run, if signed in.
    pub fn optional_from_leptos_context() -> Option<Self> {
        leptos::prelude::use_context::<Parts>().and_then(|parts| current_user(&parts))
    }
}

fn current_user(parts: &Parts) -> Option<CurrentUser> {
    parts.extensions.get::<CurrentUser>().cloned()
}

fn not_signed_in() -> AppError {
    AppError::Unauthorized("sign in, or send an API token as `Authorization: Bearer`".into())
}

/// A session just started or renewed: the token for the cookie, and its expiry.
pub struct NewSession {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tidings_session";

/// Authentication settings and state shared by all requests.
#[derive(Debug)]
pub struct AuthState {
    pub session_ttl: chrono::Duration,
    /// Mark cookies `Secure` (the site is served over HTTPS).
    pub secure_cookies: bool,
    pub throttle: throttle::LoginThrottle,
    /// Set once a user is known to exist; users are deactivated, never deleted, so it stays set.
    users_exist: std::sync::atomic::AtomicBool,
}

impl AuthState {
    pub fn new(session_ttl: chrono::Duration, secure_cookies: bool) -> Self {
        AuthState {
            session_ttl,
            secure_cookies,
            throttle: throttle::LoginThrottle::default(),
            users_exist: Default::default(),
        }
    }

    /// Whether any user exists (the first-run setup is done).
    pub async fn users_exist(&self, db: &crate::db::Database) -> Result<bool, AppError> {
        use std::sync::atomic::Ordering;
        if self.users_exist.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exist = db.any_user_exists().await?;
        self.users_exist.store(exist, Ordering::Relaxed);
        Ok(exist)
    }

    /// `Set-Cookie` value for a new or renewed session.
    pub fn session_cookie(&self, session: &NewSession) -> axum::http::HeaderValue {
        let lifetime = (session.expires_at - chrono::Utc::now())
            .num_seconds()
            .max(0);
        self.cookie(
            session.token.clone(),
            cookie::time::Duration::seconds(lifetime),
        )
    }

    /// `Set-Cookie` value that removes the session cookie.
    pub fn clearing_cookie(&self) -> axum::http::HeaderValue {
        self.cookie(String::new(), cookie::time::Duration::ZERO)
    }

    fn cookie(&self, value: String, max_age: cookie::time::Duration) -> axum::http::HeaderValue {
        let cookie = cookie::Cookie::build((SESSION_COOKIE, value))
            .path("/")
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .secure(self.secure_cookies)
            .max_age(max_age)
            .build();
        // Cookie values here are base64url tokens: always a valid header value.
        axum::http::HeaderValue::try_from(cookie.to_string())
            .expect("cookie is a valid header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(id: i64, role: Role) -> CurrentUser {
        let user = User {
            id,
            username: format!("user{id}"),
            display_name: String::new(),
            role,
            active: true,
            created_at: chrono::Utc::now(),
        };
        CurrentUser {
            user,
            method: AuthMethod::ApiToken { token_id: 1 },
        }
    }

    #[test]
    fn users_access_their_own_objects_and_admins_all() {
        let ann = caller(1, Role::User);
        assert!(ann.may_access(Some(1)));
        assert!(!ann.may_access(Some(2)));
        assert!(!ann.may_access(None), "system objects are for admins");
        assert!(ann.require_admin().is_err());
        let admin = caller(3, Role::Admin);
        assert!(admin.may_access(Some(1)) && admin.may_access(None));
        assert!(admin.require_admin().is_ok());
    }
}
