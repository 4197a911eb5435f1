//! Notifications: the shared types, the validation both sides run, and the server functions
//! behind the bell and the inbox.
//!
//! The server functions live under `/api/inbox/…`; `/api/notifications/…` is the REST API of
//! the original system's clients.
//!
//! A notification goes to one user or, with no recipient, to everyone (a broadcast). Read and
//! deleted state is each user's own, broadcasts included.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

pub const TYPE_MAX_CHARS: usize = 50;
pub const TITLE_MAX_CHARS: usize = 255;
pub const MESSAGE_MAX_CHARS: usize = 10_000;
pub const LINK_MAX_CHARS: usize = 500;
pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// One notification as its reader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    /// The recipient's username; `None` for a broadcast to everyone.
    pub username: Option<String>,
    /// What it is about, e.g. `task_complete`; `[a-z0-9_]`, at most 50 characters.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    /// A relative path in the app or an http(s) URL.
    pub link: Option<String>,
    /// The task it is about, if any.
    pub task_id: Option<Uuid>,
    /// Read by the reader (each user has their own state, also for broadcasts).
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

impl Notification {
    pub fn is_broadcast(&self) -> bool {
        self.username.is_none()
    }
}

/// A reader's unread count, stamped with the version of the notification state it was counted
/// at: of two counts, the one with the higher version is the newer, whatever order they arrive
/// in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub count: i64,
    pub version: i64,
}

impl UnreadCount {
    /// Keeps the newer of the two counts.
    pub fn newest(self, other: UnreadCount) -> UnreadCount {
        if other.version > self.version {
            other
        } else {
            self
        }
    }
}

/// Which notifications a page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFilter {
    #[serde(default)]
    pub unread_only: bool,
    /// Only notifications older than this id: the `next_cursor` of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
    /// 1–200; 50 when absent.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of notifications, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    /// The `before` of the next page, when there may be one.
    pub next_cursor: Option<i64>,
    pub unread: UnreadCount,
}

/// Who a new notification goes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "username", rename_all = "snake_case")]
pub enum Recipient {
    /// The caller.
    Myself,
    /// One user, by username (administrators only, unless it is the caller).
    User(String),
    /// Everyone (administrators only).
    Everyone,
}

/// A notification to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    pub recipient: Recipient,
    pub kind: String,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
}

/// What a change to several notifications did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    /// How many notifications it changed.
    pub count: i64,
    pub unread: UnreadCount,
}

impl NewNotification {
    /// Checks every field; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), AppError> {
        validate_kind(&self.kind)?;
        validate_title(&self.title)?;
        if self.message.chars().count() > MESSAGE_MAX_CHARS {
            return Err(field_error(
                "message",
                format!("must be at most {MESSAGE_MAX_CHARS} characters"),
            ));
        }
        if let Some(link) = &self.link {
            validate_link(link)?;
        }
        if let Recipient::User(username) = &self.recipient
            && username.trim().is_empty()
        {
            return Err(field_error("username", "must not be empty"));
        }
        Ok(())
    }
}

fn field_error(field: &str, problem: impl std::fmt::Display) -> AppError {
    AppError::BadRequest(format!("{field}: {problem}"))
}

fn validate_kind(kind: &str) -> Result<(), AppError> {
    let well_formed = (1..=TYPE_MAX_CHARS).contains(&kind.len())
        && kind
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if well_formed {
        Ok(())
    } else {
        Err(field_error(
            "type",
            format!("must be 1–{TYPE_MAX_CHARS} characters of a–z, 0–9 and _"),
        ))
    }
}

fn validate_title(title: &str) -> Result<(), AppError> {
    if title.trim().is_empty() {
        return Err(field_error("title", "must not be empty"));
    }
    if title.chars().count() > TITLE_MAX_CHARS {
        return Err(field_error(
            "title",
            format!("must be at most {TITLE_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A link is a path in this app (`/tasks/…`) or an absolute http(s) URL; any other scheme
/// (`javascript:`, `data:`) and protocol-relative `//host` links are refused, so a link can
/// only ever navigate.
pub fn validate_link(link: &str) -> Result<(), AppError> {
    if link.chars().count() > LINK_MAX_CHARS {
        return Err(field_error(
            "link",
            format!("must be at most {LINK_MAX_CHARS} characters"),
        ));
    }
    if link.chars().any(|c| c.is_whitespace() || c.is_control()) || link.contains('\\') {
        return Err(field_error(
            "link",
            "must not contain spaces, control characters or backslashes",
        ));
    }
    let lowercase = link.to_ascii_lowercase();
    let web_url = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lowercase.strip_prefix(scheme))
        .is_some_and(|rest| rest.chars().next().is_some_and(|c| c.is_alphanumeric()));
    let app_path = link.starts_with('/') && !link.starts_with("//");
    if web_url || app_path {
        Ok(())
    } else {
        Err(field_error(
            "link",
            "must be a path starting with / or an http:// or https:// URL",
        ))
    }
}

#[cfg(feature = "ssr")]
use crate::{auth::CurrentUser, server::AppState, services::notifications};

#[cfg(feature = "ssr")]
fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or(AppError::Internal)
}

/// A page of the caller's notifications, newest first, with the unread count.
#[server(endpoint = "inbox/list")]
pub async fn list_notifications(filter: NotificationFilter) -> Result<NotificationPage, AppError> {
    notifications::list(&state()?, &CurrentUser::from_leptos_context()?, &filter).await
}

/// The caller's unread count.
#[server(endpoint = "inbox/unread")]
pub async fn get_unread_count() -> Result<UnreadCount, AppError> {
    notifications::unread_count(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Marks one notification read; 404 when the caller cannot see it.
#[server(endpoint = "inbox/mark-read")]
pub async fn mark_notification_read(id: i64) -> Result<UnreadCount, AppError> {
    notifications::mark_read(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Marks read every notification up to `up_to` (the newest the caller has seen; everything
/// when absent), so that one arriving meanwhile stays unread.
#[server(endpoint = "inbox/mark-all-read")]
pub async fn mark_all_notifications_read(up_to: Option<i64>) -> Result<Changed, AppError> {
    notifications::mark_all_read(&state()?, &CurrentUser::from_leptos_context()?, up_to).await
}

/// Deletes one notification for the caller; 404 when the caller cannot see it.
#[server(endpoint = "inbox/delete")]
pub async fn delete_notification(id: i64) -> Result<UnreadCount, AppError> {
    notifications::delete(&state()?, &CurrentUser::from_leptos_context()?, id).await
}

/// Deletes every read notification of the caller.
#[server(endpoint = "inbox/delete-read")]
pub async fn delete_read_notifications() -> Result<Changed, AppError> {
    notifications::delete_read(&state()?, &CurrentUser::from_leptos_context()?).await
}

/// Sends a notification (to somebody else or everyone: administrators only); answers its id.
#[server(endpoint = "inbox/create")]
pub async fn create_notification(notification: NewNotification) -> Result<i64, AppError> {
    notifications::create(
        &state()?,
        &CurrentUser::from_leptos_context()?,
        &notification,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(kind: &str, title: &str, link: Option<&str>) -> NewNotification {
        NewNotification {
            recipient: Recipient::Myself,
            kind: kind.into(),
            title: title.into(),
            message: "hello".into(),
            link: link.map(Into::into),
        }
    }

    fn field_of(result: Result<(), AppError>) -> String {
        match result {
            Err(AppError::BadRequest(text)) => text.split(':').next().unwrap().to_owned(),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn valid_notifications_pass() {
        for link in [
            None,
            Some("/tasks/1"),
            Some("https://example.com/a?b=c#d"),
            Some("HTTP://Example.com"),
        ] {
            notification("task_complete", "Done", link)
                .validate()
                .unwrap();
        }
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert_eq!(field_of(notification("", "t", None).validate()), "type");
        assert_eq!(field_of(notification("Task", "t", None).validate()), "type");
        assert_eq!(field_of(notification("a-b", "t", None).validate()), "type");
        assert_eq!(
            field_of(notification(&"a".repeat(51), "t", None).validate()),
            "type"
        );
        assert_eq!(field_of(notification("x", "  ", None).validate()), "title");
        assert_eq!(
            field_of(notification("x", &"é".repeat(256), None).validate()),
            "title"
        );
        let mut long_message = notification("x", "t", None);
        long_message.message = "m".repeat(MESSAGE_MAX_CHARS + 1);
        assert_eq!(field_of(long_message.validate()), "message");
        let mut nobody = notification("x", "t", None);
        nobody.recipient = Recipient::User(" ".into());
        assert_eq!(field_of(nobody.validate()), "username");
    }

    #[test]
    fn links_other_than_paths_and_web_urls_are_refused() {
        for link in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>",
            "//evil.example",
            "/\\evil.example",
            "tasks/1",
            "https://",
            "https:// example.com",
            "ftp://example.com",
            "/a\nb",
            "",
        ] {
            assert_eq!(
                field_of(validate_link(link)),
                "link",
                "{link:?} must be refused"
            );
        }
        assert_eq!(
            field_of(validate_link(&format!("/{}", "a".repeat(LINK_MAX_CHARS)))),
            "link"
        );
    }

    #[test]
    fn the_newer_count_wins_whatever_the_order() {
        let old = UnreadCount {
            count: 5,
            version: 3,
        };
        let new = UnreadCount {
            count: 2,
            version: 4,
        };
        assert_eq!(old.newest(new), new);
        assert_eq!(new.newest(old), new);
    }
}
