//! Accounts: users, sessions and API tokens — validation, the rules of who may do what, and
//! the bookkeeping around passwords and tokens.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::{
    api::accounts::{ApiTokenInfo, CreatedApiToken, Role, User},
    auth::{
        AuthMethod, CurrentUser, NewSession,
        credentials::{self, API_TOKEN_PREFIX},
    },
    db::{Database, DbError, NewUser},
    error::AppError,
    server::AppState,
};

const USERNAME_LENGTH: std::ops::RangeInclusive<usize> = 3..=32;
const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 8..=1024;
const DISPLAY_NAME_MAX: usize = 100;
const TOKEN_NAME_MAX: usize = 100;
/// A login password longer than this is refused before hashing: no valid password is, and
/// hashing megabytes would be an easy way to burn CPU.
const LOGIN_PASSWORD_MAX_BYTES: usize = 4 * 1024;
/// `last_used_at` of an API token is written at most this often.
const TOKEN_TOUCH_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);

/// Lower-cases and checks a username: 3–32 characters of `a–z 0–9 _ . -`.
pub fn normalize_username(input: &str) -> Result<String, AppError> {
    let username = input.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
    if USERNAME_LENGTH.contains(&username.chars().count()) && username.chars().all(allowed) {
        Ok(username)
    } else {
        Err(AppError::BadRequest(
            "username must be 3–32 characters of a–z, 0–9, '_', '.' and '-'".into(),
        ))
    }
}

fn check_password(password: &str) -> Result<(), AppError> {
    if PASSWORD_LENGTH.contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "password must be 8 to 1024 characters long".into(),
        ))
    }
}

/// The display name to store: the given one trimmed, or the username when empty.
fn display_name(input: &str, username: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.chars().count() > DISPLAY_NAME_MAX || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "display name must be at most {DISPLAY_NAME_MAX} characters, without control characters"
        )));
    }
    Ok(if name.is_empty() {
        username.to_owned()
    } else {
        name.to_owned()
    })
}

/// Fails unless a password and its confirmation are the same.
pub fn require_matching(password: &str, confirmation: &str) -> Result<(), AppError> {
    if password == confirmation {
        Ok(())
    } else {
        Err(AppError::BadRequest("the two passwords differ".into()))
    }
}

/// Creates a user after validating every field. Callers check who may do this.
pub async fn create_user(
    db: &Database,
    username: &str,
    display: &str,
    password: &str,
    role: Role,
) -> Result<User, AppError> {
    let username = normalize_username(username)?;
    let display = display_name(display, &username)?;
    check_password(password)?;
    let password_hash = credentials::hash_password(password.to_owned()).await?;
    let new = NewUser {
        username: &username,
        display_name: &display,
        password_hash: &password_hash,
        role,
    };
    db.insert_user(&new).await.map_err(|error| match error {
        DbError::Duplicate => AppError::Conflict(format!("the username {username} is taken")),
        other => other.into(),
    })
}

/// Creates the first administrator; fails with 409 once any user exists.
pub async fn setup_first_admin(
    state: &AppState,
    username: &str,
    display: &str,
    password: &str,
) -> Result<User, AppError> {
    let username = normalize_username(username)?;
    let display = display_name(display, &username)?;
    check_password(password)?;
    if state.auth.users_exist(&state.db).await? {
        return Err(setup_done());
    }
    let password_hash = credentials::hash_password(password.to_owned()).await?;
    let new = NewUser {
        username: &username,
        display_name: &display,
        password_hash: &password_hash,
        role: Role::Admin,
    };
    let admin = state
        .db
        .insert_first_admin(&new)
        .await?
        .ok_or_else(setup_done)?;
    tracing::info!(username = %admin.username, "first administrator created");
    Ok(admin)
}

fn setup_done() -> AppError {
    AppError::Conflict("setup is already done: sign in instead".into())
}

/// Checks a username and password and starts a session. Repeated failures for a username or
/// from an address are throttled (429); unknown users take as long as wrong passwords.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    address: Option<IpAddr>,
) -> Result<(User, NewSession), AppError> {
    let key = username.trim().to_lowercase();
    state.auth.throttle.check(&key, address)?;
    if password.len() > LOGIN_PASSWORD_MAX_BYTES {
        return Err(AppError::BadRequest("password is too long".into()));
    }
    let found = match normalize_username(username) {
        Ok(username) => state.db.user_with_password_hash(&username).await?,
        Err(_) => None,
    };
    let (user, stored_hash) = found.map_or((None, None), |(user, hash)| (Some(user), Some(hash)));
    let verified = credentials::verify_password(password.to_owned(), stored_hash).await?;
    let Some(user) = user.filter(|_| verified) else {
        state.auth.throttle.record_failure(&key, address);
        return Err(AppError::Unauthorized("wrong username or password".into()));
    };
    if !user.active {
        return Err(AppError::Forbidden("this account is deactivated".into()));
    }
    state.auth.throttle.record_success(&key);
    let session = start_session(state, user.id).await?;
    Ok((user, session))
}

/// Starts a session for a user and returns its token (for the cookie).
pub async fn start_session(state: &AppState, user_id: i64) -> Result<NewSession, AppError> {
    let token = credentials::new_token("");
    let expires_at = Utc::now() + state.auth.session_ttl;
    state
        .db
        .insert_session(&token.hash, user_id, expires_at)
        .await?;
    Ok(NewSession {
        token: token.secret,
        expires_at,
    })
}

/// Ends the caller's session (a no-op for API-token callers).
pub async fn logout(state: &AppState, caller: &CurrentUser) -> Result<(), AppError> {
    if let AuthMethod::Session { token_hash } = &caller.method {
        state.db.delete_session(token_hash).await?;
    }
    Ok(())
}

/// The caller behind a session token, if the session is valid. A session past half its
/// lifetime is renewed (sliding expiry); the renewed session is returned for a fresh cookie.
pub async fn authenticate_session(
    state: &AppState,
    token: &str,
) -> Result<Option<(CurrentUser, Option<NewSession>)>, AppError> {
    let token_hash = credentials::hash_token(token);
    let Some(session) = state.db.active_session(&token_hash).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let renewed = if session.expires_at - now < state.auth.session_ttl / 2 {
        let expires_at = now + state.auth.session_ttl;
        state.db.extend_session(&token_hash, expires_at).await?;
        Some(NewSession {
            token: token.to_owned(),
            expires_at,
        })
    } else {
        None
    };
    let caller = CurrentUser {
        user: session.user,
        method: AuthMethod::Session { token_hash },
    };
    Ok(Some((caller, renewed)))
}

/// The caller behind an API token, if it is valid and its owner active.
pub async fn authenticate_api_token(
    db: &Database,
    token: &str,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(owner) = db.api_token_owner(&credentials::hash_token(token)).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if owner
        .last_used_at
        .is_none_or(|used| now - used > TOKEN_TOUCH_INTERVAL)
    {
        db.touch_api_token(owner.token_id, now).await?;
    }
    Ok(Some(CurrentUser {
        user: owner.user,
        method: AuthMethod::ApiToken {
            token_id: owner.token_id,
        },
    }))
}

/// Changes the caller's own password after checking the current one; every other session of
/// theirs ends.
pub async fn change_password(
    state: &AppState,
    caller: &CurrentUser,
    current: &str,
    new: &str,
) -> Result<(), AppError> {
    check_password(new)?;
    let (_, stored) = state
        .db
        .user_with_password_hash(&caller.user.username)
        .await?
        .ok_or(AppError::NotFound)?;
    if !credentials::verify_password(current.to_owned(), Some(stored)).await? {
        return Err(AppError::BadRequest("the current password is wrong".into()));
    }
    let hash = credentials::hash_password(new.to_owned()).await?;
    state.db.set_password_hash(caller.id(), &hash).await?;
    let keep = match &caller.method {
        AuthMethod::Session { token_hash } => Some(token_hash.as_slice()),
        AuthMethod::ApiToken { .. } => None,
    };
    state.db.delete_sessions_of_user(caller.id(), keep).await?;
    Ok(())
}

/// Sets a user's password (admins); all their sessions end.
pub async fn reset_password(
    db: &Database,
    caller: &CurrentUser,
    id: i64,
    password: &str,
) -> Result<(), AppError> {
    caller.require_admin()?;
    set_password(db, id, password).await
}

/// Sets a user's password and ends their sessions; no permission check (the CLI uses it).
pub async fn set_password(db: &Database, id: i64, password: &str) -> Result<(), AppError> {
    check_password(password)?;
    let hash = credentials::hash_password(password.to_owned()).await?;
    if !db.set_password_hash(id, &hash).await? {
        return Err(AppError::NotFound);
    }
    db.delete_sessions_of_user(id, None).await?;
    Ok(())
}

/// Sets the password of the user with this username (the CLI's `reset-password`).
pub async fn set_password_by_username(
    db: &Database,
    username: &str,
    password: &str,
) -> Result<(), AppError> {
    let username = normalize_username(username)?;
    let user = db
        .user_by_username(&username)
        .await?
        .ok_or(AppError::NotFound)?;
    set_password(db, user.id, password).await
}

/// Activates or deactivates a user (admins). Admins cannot deactivate themselves, so that a
/// site always keeps an administrator who can sign in.
pub async fn set_user_active(
    db: &Database,
    caller: &CurrentUser,
    id: i64,
    active: bool,
) -> Result<(), AppError> {
    caller.require_admin()?;
    if id == caller.id() && !active {
        return Err(AppError::BadRequest(
            "you cannot deactivate your own account".into(),
        ));
    }
    if !db.set_user_active(id, active).await? {
        return Err(AppError::NotFound);
    }
    if !active {
        db.delete_sessions_of_user(id, None).await?;
    }
    Ok(())
}

/// Changes a user's role (admins). The last active administrator keeps their role.
pub async fn set_user_role(
    db: &Database,
    caller: &CurrentUser,
    id: i64,
    role: Role,
) -> Result<(), AppError> {
    caller.require_admin()?;
    if role != Role::Admin && db.count_other_active_admins(id).await? == 0 {
        return Err(AppError::BadRequest(
            "the last administrator cannot lose that role".into(),
        ));
    }
    if db.set_user_role(id, role).await? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

pub async fn list_users(db: &Database, caller: &CurrentUser) -> Result<Vec<User>, AppError> {
    caller.require_admin()?;
    Ok(db.users().await?)
}

/// Creates a personal API token for the caller; its secret is returned only now.
pub async fn create_api_token(
    db: &Database,
    caller: &CurrentUser,
    name: &str,
) -> Result<CreatedApiToken, AppError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > TOKEN_NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(AppError::BadRequest(format!(
            "token name must be 1 to {TOKEN_NAME_MAX} characters, without control characters"
        )));
    }
    let token = credentials::new_token(API_TOKEN_PREFIX);
    let info = db.insert_api_token(caller.id(), name, &token.hash).await?;
    Ok(CreatedApiToken {
        token: info,
        secret: token.secret,
    })
}

pub async fn list_api_tokens(
    db: &Database,
    caller: &CurrentUser,
) -> Result<Vec<ApiTokenInfo>, AppError> {
    Ok(db.api_tokens_of_user(caller.id()).await?)
}

/// Revokes one of the caller's tokens; another user's token answers 404.
pub async fn revoke_api_token(
    db: &Database,
    caller: &CurrentUser,
    id: i64,
) -> Result<(), AppError> {
    if db.delete_api_token(caller.id(), id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// Creates the first administrator from `TIDINGS_ADMIN_USER` / `TIDINGS_ADMIN_PASSWORD` when no
/// user exists; does nothing otherwise.
pub async fn bootstrap_admin(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<(), AppError> {
    match setup_first_admin(state, username, "", password).await {
        Ok(_) => Ok(()),
        Err(AppError::Conflict(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Deletes expired sessions; returns how many.
pub async fn prune_sessions(db: &Database, now: DateTime<Utc>) -> Result<u64, AppError> {
    Ok(db.delete_expired_sessions(now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalize_username("  Ann.Lee_2 ").unwrap(), "ann.lee_2");
        for bad in [
            "ab",
            "a b c",
            "ann!",
            "émile",
            &"x".repeat(33),
            "",
            "ann\u{0}",
        ] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_username(&"x".repeat(32)).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn accepted_usernames_are_always_in_the_allowed_alphabet(input in "\\PC{0,40}") {
            if let Ok(username) = normalize_username(&input) {
                proptest::prop_assert!((3..=32).contains(&username.len()));
                proptest::prop_assert!(username.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit() || b"_.-".contains(&b)));
            }
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"p".repeat(1025)).is_err());
    }

    #[test]
    fn display_names_default_to_the_username() {
        assert_eq!(display_name("  ", "ann").unwrap(), "ann");
        assert_eq!(display_name(" Ann Lee ", "ann").unwrap(), "Ann Lee");
        assert!(display_name("a\nb", "ann").is_err());
        assert!(display_name(&"n".repeat(101), "ann").is_err());
    }
}
