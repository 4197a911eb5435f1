//! Notifications as users see them: each reader's inbox, their read and deleted state, sending
//! (to oneself; to another user or everyone for administrators), the notifications of tasks,
//! and retention. Every change is pushed to the open tabs of the users it concerns, with their
//! unread count stamped with a version so that a tab keeps the newest.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::Utc;
use tokio::sync::{
    Mutex, MutexGuard,
    broadcast::{Receiver, error::RecvError},
};
use uuid::Uuid;

use crate::{
    api::{
        notifications::{
            Changed, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, NewNotification, NotificationFilter,
            NotificationPage, Recipient, UnreadCount,
        },
        tasks::{TaskStatus, TaskUpdate},
    },
    auth::CurrentUser,
    db::{NotificationInsert, TaskNotification},
    error::AppError,
    protocol::{NotificationChange, SNAPSHOT_NOTIFICATIONS_LIMIT, ServerMessage},
    server::AppState,
};

/// A page of the caller's notifications, newest first, with their unread count.
pub async fn list(
    state: &AppState,
    caller: &CurrentUser,
    filter: &NotificationFilter,
) -> Result<NotificationPage, AppError> {
    let limit = filter.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    if filter.before.is_some_and(|before| before < 1) {
        return Err(AppError::BadRequest(
            "before: must be a notification id".into(),
        ));
    }
    let notifications = state
        .db
        .notifications_page(caller.id(), filter.unread_only, filter.before, limit)
        .await?;
    let full_page = notifications.len() == limit as usize;
    let next_cursor = full_page
        .then(|| notifications.last().map(|last| last.id))
        .flatten();
    let unread = state.db.unread_count(caller.id()).await?;
    Ok(NotificationPage {
        notifications,
        next_cursor,
        unread,
    })
}

pub async fn unread_count(state: &AppState, caller: &CurrentUser) -> Result<UnreadCount, AppError> {
    Ok(state.db.unread_count(caller.id()).await?)
}

/// The snapshot a subscription to the caller's notifications starts with.
pub async fn snapshot(state: &AppState, caller: &CurrentUser) -> Result<ServerMessage, AppError> {
    let latest = state
        .db
        .notifications_page(caller.id(), false, None, SNAPSHOT_NOTIFICATIONS_LIMIT)
        .await?;
    let unread = state.db.unread_count(caller.id()).await?;
    Ok(ServerMessage::NotificationsSnapshot { unread, latest })
}

/// Marks one notification read; 404 when the caller cannot see it. Marking a read one again
/// changes nothing and succeeds.
pub async fn mark_read(
    state: &AppState,
    caller: &CurrentUser,
    id: i64,
) -> Result<UnreadCount, AppError> {
    let changed = state
        .db
        .mark_notification_read(caller.id(), id, Utc::now())
        .await?;
    if !changed {
        return if state.db.notification_visible(caller.id(), id).await? {
            unread_count(state, caller).await
        } else {
            Err(AppError::NotFound)
        };
    }
    push_to_reader(state, caller.id(), NotificationChange::Read { id }).await
}

/// Marks read everything the caller sees up to `up_to` — the newest notification the caller
/// has seen, so that one arriving meanwhile stays unread; everything when absent.
pub async fn mark_all_read(
    state: &AppState,
    caller: &CurrentUser,
    up_to: Option<i64>,
) -> Result<Changed, AppError> {
    if up_to.is_some_and(|up_to| up_to < 0) {
        return Err(AppError::BadRequest(
            "up_to_id: must be a notification id".into(),
        ));
    }
    let marked = state
        .db
        .mark_notifications_read_up_to(caller.id(), up_to.unwrap_or(i64::MAX))
        .await?;
    // The tabs are told the watermark applied, never beyond the newest notification there
    // was: one that arrives meanwhile, pushed before this, must stay unread in them.
    let change = NotificationChange::AllRead {
        up_to: marked.up_to,
    };
    let unread = push_to_reader(state, caller.id(), change).await?;
    Ok(Changed {
        count: marked.count,
        unread,
    })
}

/// Deletes one notification for the caller (a broadcast only from the caller's inbox); 404
/// when the caller cannot see it.
pub async fn delete(
    state: &AppState,
    caller: &CurrentUser,
    id: i64,
) -> Result<UnreadCount, AppError> {
    if !state
        .db
        .delete_notification(caller.id(), id, Utc::now())
        .await?
    {
        return Err(AppError::NotFound);
    }
    push_to_reader(state, caller.id(), NotificationChange::Deleted { id }).await
}

/// Deletes every notification the caller has read.
pub async fn delete_read(state: &AppState, caller: &CurrentUser) -> Result<Changed, AppError> {
    let count = state
        .db
        .delete_read_notifications(caller.id(), Utc::now())
        .await?;
    let unread = push_to_reader(state, caller.id(), NotificationChange::ReadDeleted).await?;
    Ok(Changed { count, unread })
}

/// Sends a notification and answers its id. Anyone may notify themselves; notifying another
/// user or everyone is for administrators.
pub async fn create(
    state: &AppState,
    caller: &CurrentUser,
    new: &NewNotification,
) -> Result<i64, AppError> {
    new.validate()?;
    let recipient_id = match &new.recipient {
        Recipient::Myself => Some(caller.id()),
        // Usernames are stored lower-case and signing in ignores case: so does this.
        Recipient::User(username) => match username.trim().to_lowercase() {
            own if own == caller.user.username => Some(caller.id()),
            other => {
                caller.require_admin()?;
                let user = state.db.user_by_username(&other).await?.ok_or_else(|| {
                    AppError::BadRequest(format!("username: there is no user {username:?}"))
                })?;
                Some(user.id)
            }
        },
        Recipient::Everyone => {
            caller.require_admin()?;
            None
        }
    };
    send(
        state,
        &NotificationInsert {
            recipient_id,
            kind: &new.kind,
            title: &new.title,
            message: &new.message,
            link: new.link.as_deref(),
            created_at: Utc::now(),
        },
    )
    .await
}

/// Stores a notification — `recipient_id` `None` is a broadcast — and pushes it to the open
/// tabs of its readers; answers its id. The caller has checked who may send it.
pub async fn send(state: &AppState, new: &NotificationInsert<'_>) -> Result<i64, AppError> {
    let recipient_id = new.recipient_id;
    let notification = state.db.insert_notification(new).await?;
    let id = notification.id;
    let change = NotificationChange::Created { notification };
    match recipient_id {
        Some(recipient) => {
            push_to_reader(state, recipient, change).await?;
        }
        // Each reader's count differs: their tabs ask for it.
        None => state.live.deliver_notification(
            None,
            &ServerMessage::NotificationUpdate {
                change,
                unread: None,
            },
        ),
    }
    Ok(id)
}

/// Pushes a change of `reader`'s notifications to their tabs with the count after it, and
/// answers that count.
async fn push_to_reader(
    state: &AppState,
    reader: i64,
    change: NotificationChange,
) -> Result<UnreadCount, AppError> {
    let unread = state.db.unread_count(reader).await?;
    deliver_to_reader(state, reader, change, unread);
    Ok(unread)
}

fn deliver_to_reader(
    state: &AppState,
    reader: i64,
    change: NotificationChange,
    unread: UnreadCount,
) {
    state.live.deliver_notification(
        Some(reader),
        &ServerMessage::NotificationUpdate {
            change,
            unread: Some(unread),
        },
    );
}

/// A retry of task `from` started as `to`: the owner's notification about `from` now follows
/// `to` (its progress shows in place, and its ending updates it), pushed to the owner's tabs.
pub async fn follow_retry(state: &AppState, from: Uuid, to: Uuid) -> Result<(), AppError> {
    if state.db.move_task_notification(from, to).await? {
        push_task_notification(state, to).await?;
    }
    Ok(())
}

/// Pushes the notification about `task` (written with its ending) to its recipient's tabs.
async fn push_task_notification(state: &AppState, task: Uuid) -> Result<(), AppError> {
    let mut pushed = state.task_notification_pushes.lock().await;
    let Some(read) = state.db.task_notification(task).await? else {
        return Ok(());
    };
    if !pushed.is_repeat(&read) {
        let change = NotificationChange::Created {
            notification: read.notification,
        };
        deliver_to_reader(state, read.recipient_id, change, read.unread);
    }
    Ok(())
}

/// Orders the pushes of task notifications, which read the notification back from the
/// database. A task ending and its retry taking the notification over push it from two places
/// at nearly the same time: holding this while reading and pushing, the older state never
/// arrives after the newer, and a read that saw what an earlier push sent is not sent again.
#[derive(Clone, Default)]
pub struct TaskNotificationPushes(Arc<Mutex<PushedAtClock>>);

impl TaskNotificationPushes {
    async fn lock(&self) -> MutexGuard<'_, PushedAtClock> {
        self.0.lock().await
    }
}

/// The notifications pushed at the newest notification clock version read. Reads made while
/// the push lock is held never go back in time, so older versions need no memory.
#[derive(Default)]
struct PushedAtClock {
    version: i64,
    notifications: HashSet<i64>,
}

impl PushedAtClock {
    /// Whether `read` is what was pushed before (nothing changed since); records it if not.
    fn is_repeat(&mut self, read: &TaskNotification) -> bool {
        if read.unread.version != self.version {
            self.version = read.unread.version;
            self.notifications.clear();
        }
        !self.notifications.insert(read.notification.id)
    }
}

/// Pushes the notifications of tasks as they end, until `shutdown`. The engine writes each one
/// in the transaction that records the ending; this only tells the open tabs.
pub fn relay_task_notifications(state: AppState, mut updates: Receiver<TaskUpdate>) {
    tokio::spawn(async move {
        loop {
            let update = tokio::select! {
                () = state.shutdown.cancelled() => return,
                update = updates.recv() => update,
            };
            match update {
                Ok(update) if ends_with_notification(&update) => {
                    if let Err(error) = push_task_notification(&state, update.task_id).await {
                        tracing::warn!(%error, task = %update.task_id, "could not push a task's notification");
                    }
                }
                Ok(_) => {}
                // The notifications are stored; the tabs that missed them see them when they
                // resubscribe, which the hub's own reset makes them do.
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "task notifications were not pushed live");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

fn ends_with_notification(update: &TaskUpdate) -> bool {
    update.owner_id.is_some()
        && update.event.is_some()
        && matches!(update.status, TaskStatus::Completed | TaskStatus::Failed)
}

/// Deletes notifications past their retention, on a schedule, until shutdown.
pub fn prune_periodically(state: AppState, retention_days: u32, interval: Duration) {
    let retention = chrono::Duration::days(i64::from(retention_days));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match state.db.prune_notifications(Utc::now() - retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "notifications past retention deleted"),
                Err(error) => tracing::warn!(%error, "could not prune notifications"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::notifications::Notification;

    fn read_at(clock: i64, id: i64) -> TaskNotification {
        TaskNotification {
            recipient_id: 1,
            unread: UnreadCount {
                count: 1,
                version: clock,
            },
            notification: Notification {
                id,
                username: Some("ann".to_owned()),
                kind: "task_failed".to_owned(),
                title: "Failed".to_owned(),
                message: String::new(),
                link: None,
                task_id: None,
                read: false,
                created_at: Utc::now(),
            },
        }
    }

    #[test]
    fn only_a_notification_read_again_at_the_same_clock_is_a_repeat() {
        let mut pushed = PushedAtClock::default();
        assert!(!pushed.is_repeat(&read_at(5, 1)));
        assert!(pushed.is_repeat(&read_at(5, 1)), "nothing changed since");
        assert!(!pushed.is_repeat(&read_at(5, 2)), "another notification");
        assert!(
            !pushed.is_repeat(&read_at(6, 1)),
            "notifications changed since"
        );
        assert!(pushed.is_repeat(&read_at(6, 1)));
        assert!(!pushed.is_repeat(&read_at(7, 2)));
    }
}
