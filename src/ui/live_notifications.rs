//! The user's notifications as this tab knows them — the unread count and the newest few —
//! shared by the bell in the header and the inbox page, and kept live by
//! [`Topic::Notifications`].
//!
//! A count carries a version and only ever gives way to a newer one ([`UnreadCount::newest`]),
//! whatever order the answers of actions and the pushes of the server arrive in. The server
//! pushes every change to every tab of the user, the tab that made it included; an action also
//! applies its own answer at once, so that a tab whose live connection is down stays right.

use std::{future::Future, time::Duration};

use leptos::prelude::*;

use crate::{
    api::notifications::{
        Notification, UnreadCount, delete_notification, delete_read_notifications,
        get_unread_count, mark_all_notifications_read, mark_notification_read,
    },
    error::AppError,
    protocol::{NotificationChange, SNAPSHOT_NOTIFICATIONS_LIMIT, ServerMessage, Topic},
    ui::live::{ConnectionState, LiveConnection},
};

/// Longest random pause before a tab asks for its own count after a broadcast (whose push
/// carries no count: it differs by reader), so that every tab does not ask at the same moment.
const BROADCAST_COUNT_SPREAD_MS: f64 = 300.0;
/// How many notifications the bell lists.
const LATEST_LIMIT: usize = SNAPSHOT_NOTIFICATIONS_LIMIT as usize;

/// What the followers of the inbox (lists of notifications other than the bell's) are told.
#[derive(Clone, Debug)]
pub enum InboxEvent {
    /// A notification changed, pushed by the server or done by this tab.
    Changed(NotificationChange),
    /// The tab reconnected after losing its live connection: changes may have been missed, so a
    /// list should be loaded again.
    Reconnected,
}

/// Handle to the tab's notification state; `Copy`, obtained with [`Inbox::expect`].
#[derive(Clone, Copy)]
pub struct Inbox {
    /// The unread count; `None` until the server told one.
    unread: RwSignal<Option<UnreadCount>>,
    /// The newest notifications, newest first; `None` until the server's snapshot arrived.
    latest: RwSignal<Option<Vec<Notification>>>,
    /// The newest notification this tab has shown: "mark all read" stops there, so that one
    /// arriving meanwhile stays unread.
    newest_seen: StoredValue<Option<i64>>,
    /// The error of the latest action, until one succeeds.
    error: RwSignal<Option<String>>,
    followers: StoredValue<Vec<(u64, Callback<InboxEvent>)>>,
    next_follower: StoredValue<u64>,
    /// The live connection was lost since the last snapshot.
    disconnected: StoredValue<bool>,
    /// A request for this reader's own count is already scheduled.
    count_requested: StoredValue<bool>,
    refresh: Callback<()>,
    /// The unread count the page was rendered with (see [`Inbox::loaded_unread`]).
    loaded_unread: Resource<Result<UnreadCount, AppError>>,
}

impl Inbox {
    /// Creates the tab's inbox, provides it to the component tree and follows the user's
    /// notifications (from when the live connection opens).
    pub fn provide() -> Self {
        let live = LiveConnection::expect();
        let inbox = Inbox {
            unread: RwSignal::new(None),
            latest: RwSignal::new(None),
            newest_seen: StoredValue::new(None),
            error: RwSignal::new(None),
            followers: StoredValue::new(Vec::new()),
            next_follower: StoredValue::new(0),
            disconnected: StoredValue::new(false),
            count_requested: StoredValue::new(false),
            refresh: live.debounced_refresh(Topic::Notifications),
            loaded_unread: Resource::new(|| (), |()| get_unread_count()),
        };
        Effect::new(move |_| {
            if matches!(live.state(), ConnectionState::Reconnecting { .. }) {
                inbox.disconnected.set_value(true);
            }
        });
        let listener = Callback::new(move |message| inbox.receive(message));
        live.subscribe(Topic::Notifications, None, listener);
        provide_context(inbox);
        inbox
    }

    /// The inbox provided by [`Inbox::provide`].
    pub fn expect() -> Self {
        expect_context()
    }

    /// The unread count (tracked): the newer of what the tab heard since it was loaded and
    /// `loaded`, the count a view was rendered with. Until the tab hears anything (on the server
    /// and while hydrating) that is `loaded` itself, so the browser renders what the server did.
    pub fn unread_since(&self, loaded: Option<UnreadCount>) -> i64 {
        let heard = self.unread.get();
        heard
            .into_iter()
            .chain(loaded)
            .reduce(UnreadCount::newest)
            .map_or(0, |unread| unread.count)
    }

    /// The unread count the server rendered the page with, for the bell. Created here, with the
    /// inbox, rather than by the bell: the bell appears once the session is known, which is
    /// later on the server than in the hydrating browser, and resources must be created in the
    /// same order on both for the browser to find the server's data. (Signed out, it is an
    /// error nobody shows.) Read it inside a `<Suspense>`.
    pub fn loaded_unread(&self) -> Resource<Result<UnreadCount, AppError>> {
        self.loaded_unread
    }

    /// The newest notifications, newest first; `None` until they are known.
    pub fn latest(&self) -> ReadSignal<Option<Vec<Notification>>> {
        self.latest.read_only()
    }

    /// The error of the latest action (tracked).
    pub fn error(&self) -> Option<String> {
        self.error.get()
    }

    /// Notes the notifications a view shows, for "mark all read".
    pub fn saw_all(&self, shown: &[Notification]) {
        if let Some(newest) = shown.iter().map(|notification| notification.id).max() {
            self.saw(newest);
        }
    }

    /// Calls `follower` with every change and reconnection until the calling component is
    /// disposed.
    pub fn follow(&self, follower: Callback<InboxEvent>) {
        let id = self.next_follower.get_value();
        self.next_follower.set_value(id + 1);
        self.followers
            .update_value(|followers| followers.push((id, follower)));
        let followers = self.followers;
        on_cleanup(move || {
            followers.try_update_value(|followers| followers.retain(|(known, _)| *known != id));
        });
    }

    pub fn mark_read(&self, id: i64) {
        let inbox = *self;
        self.request(mark_notification_read(id), move |unread| {
            inbox.apply(NotificationChange::Read { id }, Some(unread));
        });
    }

    /// Marks read everything up to the newest notification this tab has shown.
    pub fn mark_all_read(&self) {
        let Some(up_to) = self.newest_seen.get_value() else {
            return;
        };
        let inbox = *self;
        self.request(mark_all_notifications_read(Some(up_to)), move |changed| {
            inbox.apply(NotificationChange::AllRead { up_to }, Some(changed.unread));
        });
    }

    pub fn delete(&self, id: i64) {
        let inbox = *self;
        self.request(delete_notification(id), move |unread| {
            inbox.apply(NotificationChange::Deleted { id }, Some(unread));
        });
    }

    /// Deletes every read notification.
    pub fn delete_read(&self) {
        let inbox = *self;
        self.request(delete_read_notifications(), move |changed| {
            inbox.apply(NotificationChange::ReadDeleted, Some(changed.unread));
        });
    }

    /// Runs a server call in the background; `done` gets its answer, the error is shown.
    fn request<T: 'static>(
        &self,
        call: impl Future<Output = Result<T, AppError>> + 'static,
        done: impl FnOnce(T) + 'static,
    ) {
        let error = self.error;
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(answer) => {
                    error.set(None);
                    done(answer);
                }
                Err(failure) => error.set(Some(failure.to_string())),
            }
        });
    }

    fn receive(self, message: ServerMessage) {
        match message {
            ServerMessage::NotificationsSnapshot { unread, latest } => {
                self.take_count(unread);
                self.saw_all(&latest);
                self.latest.set(Some(latest));
                if self.disconnected.get_value() {
                    self.disconnected.set_value(false);
                    self.notify(InboxEvent::Reconnected);
                }
            }
            ServerMessage::NotificationUpdate { change, unread } => self.apply(change, unread),
            _ => {}
        }
    }

    /// Applies a change to the count, the bell's list and the followers' lists.
    fn apply(self, change: NotificationChange, unread: Option<UnreadCount>) {
        match unread {
            Some(unread) => self.take_count(unread),
            None => self.request_own_count(),
        }
        if let NotificationChange::Created { notification, .. } = &change {
            self.saw(notification.id);
        }
        let mut emptied_a_place = false;
        self.latest.update(|latest| {
            if let Some(latest) = latest {
                let was_full = latest.len() >= LATEST_LIMIT;
                apply_change(latest, &change, true);
                latest.truncate(LATEST_LIMIT);
                emptied_a_place = was_full && latest.len() < LATEST_LIMIT;
            }
        });
        if emptied_a_place {
            // Older notifications may take the freed places: the server knows which.
            self.refresh.run(());
        }
        self.notify(InboxEvent::Changed(change));
    }

    fn notify(self, event: InboxEvent) {
        let followers = self.followers.with_value(|followers| {
            followers
                .iter()
                .map(|(_, follower)| *follower)
                .collect::<Vec<_>>()
        });
        for follower in followers {
            follower.run(event.clone());
        }
    }

    /// Keeps `unread` if it is newer than the count known.
    fn take_count(self, unread: UnreadCount) {
        self.unread.maybe_update(|known| {
            let newest = known.map_or(unread, |known| known.newest(unread));
            let changed = *known != Some(newest);
            *known = Some(newest);
            changed
        });
    }

    fn saw(self, id: i64) {
        self.newest_seen
            .update_value(|seen| *seen = Some(seen.map_or(id, |seen| seen.max(id))));
    }

    /// Asks for this reader's own count after a short random pause (once for a burst).
    fn request_own_count(self) {
        if self.count_requested.get_value() {
            return;
        }
        self.count_requested.set_value(true);
        set_timeout(
            move || {
                self.count_requested.set_value(false);
                self.request(get_unread_count(), move |unread| self.take_count(unread));
            },
            Duration::from_millis((random() * BROADCAST_COUNT_SPREAD_MS) as u64),
        );
    }
}

/// A number in `[0, 1)`; only the browser needs one.
fn random() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Math::random();
    #[cfg(not(feature = "hydrate"))]
    0.0
}

/// Applies `change` to a list of notifications shown newest first. `takes_new` tells whether
/// new notifications belong in the list (the first page of a list: yes; older pages: no). A
/// new version of a listed notification (same id) takes its place. A notification marked read
/// stays where it is, shown as read, until the list is loaded again.
pub fn apply_change(list: &mut Vec<Notification>, change: &NotificationChange, takes_new: bool) {
    match change {
        NotificationChange::Created { notification } => {
            match list.iter_mut().find(|known| known.id == notification.id) {
                Some(known) => *known = notification.clone(),
                None if takes_new => {
                    let place = list.partition_point(|known| known.id > notification.id);
                    list.insert(place, notification.clone());
                }
                None => {}
            }
        }
        NotificationChange::Read { id } => mark_read_where(list, |known| known == *id),
        NotificationChange::AllRead { up_to } => mark_read_where(list, |known| known <= *up_to),
        NotificationChange::Deleted { id } => list.retain(|known| known.id != *id),
        NotificationChange::ReadDeleted => list.retain(|known| !known.read),
    }
}

fn mark_read_where(list: &mut [Notification], id_matches: impl Fn(i64) -> bool) {
    for notification in list.iter_mut().filter(|known| id_matches(known.id)) {
        notification.read = true;
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn notification(id: i64, read: bool) -> Notification {
        Notification {
            id,
            username: Some("ann".into()),
            kind: "note".into(),
            title: format!("number {id}"),
            message: String::new(),
            link: None,
            task_id: None,
            read,
            created_at: Utc::now(),
        }
    }

    fn ids(list: &[Notification]) -> Vec<(i64, bool)> {
        list.iter().map(|known| (known.id, known.read)).collect()
    }

    fn created(id: i64) -> NotificationChange {
        NotificationChange::Created {
            notification: notification(id, false),
        }
    }

    #[test]
    fn new_notifications_go_on_top_of_the_first_page_only() {
        let mut first = vec![notification(5, false), notification(3, true)];
        apply_change(&mut first, &created(8), true);
        assert_eq!(ids(&first), [(8, false), (5, false), (3, true)]);
        apply_change(&mut first, &created(4), true);
        assert_eq!(ids(&first), [(8, false), (5, false), (4, false), (3, true)]);

        let mut older = vec![notification(2, false)];
        apply_change(&mut older, &created(9), false);
        assert_eq!(ids(&older), [(2, false)]);
    }

    #[test]
    fn a_new_version_takes_the_place_of_the_old_one() {
        let mut list = vec![notification(5, false), notification(3, true)];
        let mut retried = notification(3, false);
        retried.title = "done after all".into();
        let change = NotificationChange::Created {
            notification: retried.clone(),
        };
        apply_change(&mut list, &change, true);
        apply_change(&mut list, &change, true);
        assert_eq!(ids(&list), [(5, false), (3, false)]);
        assert_eq!(list[1], retried);
        let mut older = vec![notification(3, true)];
        apply_change(&mut older, &change, false);
        assert_eq!(older, [retried], "also on an older page");
    }

    #[test]
    fn read_changes_mark_in_place() {
        let mut list = vec![
            notification(9, false),
            notification(6, false),
            notification(2, false),
        ];
        apply_change(&mut list, &NotificationChange::Read { id: 6 }, true);
        assert_eq!(ids(&list), [(9, false), (6, true), (2, false)]);
        apply_change(&mut list, &NotificationChange::AllRead { up_to: 8 }, true);
        assert_eq!(
            ids(&list),
            [(9, false), (6, true), (2, true)],
            "one newer than the watermark stays unread"
        );
    }

    #[test]
    fn deletions_remove() {
        let mut list = vec![
            notification(9, false),
            notification(6, true),
            notification(2, true),
        ];
        apply_change(&mut list, &NotificationChange::Deleted { id: 9 }, true);
        assert_eq!(ids(&list), [(6, true), (2, true)]);
        list.insert(0, notification(10, false));
        apply_change(&mut list, &NotificationChange::ReadDeleted, true);
        assert_eq!(ids(&list), [(10, false)]);
    }
}
