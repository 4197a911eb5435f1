//! Accounts: the shared types, and the server functions behind the login, setup, account and
//! user-administration pages.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A user as the app shows them (never with a password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// A personal API token as listed (its secret is shown only once, at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is available.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiToken {
    pub token: ApiTokenInfo,
    pub secret: String,
}

/// Where to go after signing in: `next` if it is a path of this site, else the dashboard.
/// Anything that could leave the site (`//host`, `https://…`, `/\host`) is ignored.
pub fn local_redirect_target(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(feature = "ssr")]
use crate::{
    auth::CurrentUser,
    server::{AppState, leptos_client_address, set_leptos_cookie},
    services::accounts as service,
};

/// The signed-in user, if any.
#[server(endpoint = "accounts/me")]
pub async fn get_current_user() -> Result<Option<User>, AppError> {
    Ok(CurrentUser::optional_from_leptos_context().map(|caller| caller.user))
}

/// Signs in with a password, sets the session cookie and goes to `next`.
#[server(endpoint = "accounts/login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let (_, session) =
        service::login(&state, &username, &password, leptos_client_address()).await?;
    set_leptos_cookie(&state.auth.session_cookie(&session));
    leptos_axum::redirect(local_redirect_target(next.as_deref()));
    Ok(())
}

/// Ends the current session and goes to the login page.
#[server(endpoint = "accounts/logout")]
pub async fn logout() -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    if let Some(caller) = CurrentUser::optional_from_leptos_context() {
        service::logout(&state, &caller).await?;
    }
    set_leptos_cookie(&state.auth.clearing_cookie());
    leptos_axum::redirect("/login");
    Ok(())
}

/// Creates the first administrator (only while no user exists) and signs them in.
#[server(endpoint = "accounts/setup")]
pub async fn setup(
    username: String,
    display_name: String,
    password: String,
    password_confirmation: String,
) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    service::require_matching(&password, &password_confirmation)?;
    let admin = service::setup_first_admin(&state, &username, &display_name, &password).await?;
    let session = service::start_session(&state, admin.id).await?;
    set_leptos_cookie(&state.auth.session_cookie(&session));
    leptos_axum::redirect("/");
    Ok(())
}

/// Changes the caller's password; their other sessions end.
#[server(endpoint = "accounts/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    new_password_confirmation: String,
) -> Result<(), AppError> {
    let state = expect_context::<AppState>();
    let caller = CurrentUser::from_leptos_context()?;
    service::require_matching(&new_password, &new_password_confirmation)?;
    service::change_password(&state, &caller, &current_password, &new_password).await
}

#[server(endpoint = "accounts/tokens/list")]
pub async fn list_api_tokens() -> Result<Vec<ApiTokenInfo>, AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::list_api_tokens(&expect_context::<AppState>().db, &caller).await
}

#[server(endpoint = "accounts/tokens/create")]
pub async fn create_api_token(name: String) -> Result<CreatedApiToken, AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::create_api_token(&expect_context::<AppState>().db, &caller, &name).await
}

#[server(endpoint = "accounts/tokens/revoke")]
pub async fn revoke_api_token(id: i64) -> Result<(), AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::revoke_api_token(&expect_context::<AppState>().db, &caller, id).await
}

/// All users (admins only).
#[server(endpoint = "admin/users/list")]
pub async fn list_users() -> Result<Vec<User>, AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::list_users(&expect_context::<AppState>().db, &caller).await
}

/// Creates a user (admins only).
#[server(endpoint = "admin/users/create")]
pub async fn create_user(
    username: String,
    display_name: String,
    password: String,
    role: Role,
) -> Result<User, AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    caller.require_admin()?;
    let db = &expect_context::<AppState>().db;
    service::create_user(db, &username, &display_name, &password, role).await
}

/// Activates or deactivates a user (admins only); a deactivated user's sessions end.
#[server(endpoint = "admin/users/active")]
pub async fn set_user_active(id: i64, active: bool) -> Result<(), AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::set_user_active(&expect_context::<AppState>().db, &caller, id, active).await
}

/// Changes a user's role (admins only).
#[server(endpoint = "admin/users/role")]
pub async fn set_user_role(id: i64, role: Role) -> Result<(), AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::set_user_role(&expect_context::<AppState>().db, &caller, id, role).await
}

/// Sets a new password for a user (admins only); all their sessions end.
#[server(endpoint = "admin/users/password")]
pub async fn reset_user_password(id: i64, password: String) -> Result<(), AppError> {
    let caller = CurrentUser::from_leptos_context()?;
    service::reset_password(&expect_context::<AppState>().db, &caller, id, &password).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            local_redirect_target(Some("/tasks?state=running")),
            "/tasks?state=running"
        );
        for outside in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "",
            "/\nx",
        ] {
            assert_eq!(local_redirect_target(Some(outside)), "/", "{outside:?}");
        }
        assert_eq!(local_redirect_target(None), "/");
    }

    proptest::proptest! {
        #[test]
        fn redirect_targets_never_leave_the_site(next in "\\PC{0,64}") {
            let target = local_redirect_target(Some(&next));
            proptest::prop_assert!(target.starts_with('/'));
            proptest::prop_assert!(!target.starts_with("//") && !target.starts_with("/\\"));
        }
    }

    #[test]
    fn roles_have_stable_names() {
        for role in [Role::Admin, Role::User] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
