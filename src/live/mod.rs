//! The live layer's hub: routes the task engine's updates to the WebSocket connections that
//! subscribed to them.
//!
//! Every connection registers here and gets an [`Outbox`]. Its subscriptions are routes: one
//! task, one owner's tasks, every task (administrators), or one user's notifications. For each update the hub serialises
//! the app's frame once, on first use, and pushes it into the outbox of each subscriber
//! (connections speaking the original system's protocol get the shared update and write their
//! own frame) — a push never waits, so a slow client delays nobody; the outbox merges or
//! closes (see [`outbox`]).
//!
//! The hub does not know about snapshots: a connection reserves the snapshot's place in its
//! outbox, registers the route, then reads the snapshot, so an update is either in the snapshot
//! or delivered after it (clients ignore updates older than what they know), never before it.

pub mod outbox;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{api::tasks::TaskUpdate, protocol::ServerMessage};
pub use outbox::{OUTBOX_CAPACITY, Outbox, Outgoing, Pushed, Reservation};

/// Which updates a subscription receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Task(Uuid),
    /// Every task of one user.
    Owner(i64),
    /// Every task.
    All,
    /// One user's notifications (and the broadcasts).
    Inbox(i64),
}

/// How a connection wants its frames written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Frames of the app's protocol ([`ServerMessage::TaskUpdate`]).
    Native,
    /// The updates themselves, for a connection that writes another protocol.
    Updates,
}

type ConnectionId = u64;

struct Subscriber {
    dialect: Dialect,
    outbox: Arc<Outbox>,
}

#[derive(Default)]
struct Routes {
    by_task: HashMap<Uuid, HashMap<ConnectionId, Subscriber>>,
    by_owner: HashMap<i64, HashMap<ConnectionId, Subscriber>>,
    all: HashMap<ConnectionId, Subscriber>,
    by_inbox: HashMap<i64, HashMap<ConnectionId, Subscriber>>,
}

impl Routes {
    fn subscribers(&mut self, route: Route) -> &mut HashMap<ConnectionId, Subscriber> {
        match route {
            Route::Task(id) => self.by_task.entry(id).or_default(),
            Route::Owner(owner) => self.by_owner.entry(owner).or_default(),
            Route::All => &mut self.all,
            Route::Inbox(user) => self.by_inbox.entry(user).or_default(),
        }
    }

    fn remove(&mut self, route: Route, connection: ConnectionId) -> bool {
        match route {
            Route::Task(id) => remove_from(&mut self.by_task, id, connection),
            Route::Owner(owner) => remove_from(&mut self.by_owner, owner, connection),
            Route::All => self.all.remove(&connection).is_some(),
            Route::Inbox(user) => remove_from(&mut self.by_inbox, user, connection),
        }
    }

    /// The subscriber sets an update of this task reaches.
    fn for_update(
        &self,
        task: Uuid,
        owner: Option<i64>,
    ) -> impl Iterator<Item = &HashMap<ConnectionId, Subscriber>> {
        [
            self.by_task.get(&task),
            owner.and_then(|owner| self.by_owner.get(&owner)),
            Some(&self.all),
        ]
        .into_iter()
        .flatten()
        .filter(|subscribers| !subscribers.is_empty())
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, HashMap<ConnectionId, Subscriber>>,
    key: K,
    connection: ConnectionId,
) -> bool {
    let Some(subscribers) = map.get_mut(&key) else {
        return false;
    };
    let removed = subscribers.remove(&connection).is_some();
    if subscribers.is_empty() {
        map.remove(&key);
    }
    removed
}

/// Counters of the live layer, for metrics and benchmarks.
#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    subscriptions: AtomicU64,
    updates: AtomicU64,
    notifications: AtomicU64,
    frames_queued: AtomicU64,
    ticks_replaced: AtomicU64,
    slow_closed: AtomicU64,
    lag_resets: AtomicU64,
}

/// A reading of the hub's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveMetrics {
    /// Connections open now.
    pub connections: u64,
    /// Subscriptions held now, over all connections.
    pub subscriptions: u64,
    /// Task updates routed since start.
    pub updates: u64,
    /// Notification changes routed since start.
    pub notifications: u64,
    /// Frames queued for connections since start.
    pub frames_queued: u64,
    /// Progress ticks dropped because a newer one replaced them before they were sent.
    pub ticks_replaced: u64,
    /// Connections closed because they could not keep up.
    pub slow_closed: u64,
    /// Times the hub fell behind the engine and reset every connection.
    pub lag_resets: u64,
}

/// The hub; cheap to clone.
#[derive(Clone, Default)]
pub struct LiveHub {
    inner: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    routes: RwLock<Routes>,
    /// Every open connection, to reset them all when updates were lost.
    outboxes: RwLock<HashMap<ConnectionId, Arc<Outbox>>>,
    next_id: AtomicU64,
    counters: Counters,
}

impl LiveHub {
    /// Routes the engine's updates until `shutdown`.
    pub fn start(&self, updates: Receiver<TaskUpdate>, shutdown: CancellationToken) {
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = hub.route(updates) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }

    async fn route(&self, mut updates: Receiver<TaskUpdate>) {
        loop {
            match updates.recv().await {
                Ok(update) => self.deliver(&update),
                Err(RecvError::Lagged(missed)) => self.reset_everyone(missed),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Registers a new connection; dropping the [`Connection`] unregisters it.
    pub fn connect(&self, dialect: Dialect) -> Connection {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::default());
        self.inner
            .outboxes
            .write()
            .expect("outboxes lock")
            .insert(id, outbox.clone());
        self.inner
            .counters
            .connections
            .fetch_add(1, Ordering::Relaxed);
        Connection {
            hub: self.clone(),
            id,
            dialect,
            outbox,
            routes: HashSet::new(),
        }
    }

    /// Pushes one update to every connection subscribed to it, each once.
    pub fn deliver(&self, update: &TaskUpdate) {
        let counters = &self.inner.counters;
        counters.updates.fetch_add(1, Ordering::Relaxed);
        let frames = Frames::new(update);
        let routes = self.inner.routes.read().expect("routes lock");
        let sets: Vec<_> = routes.for_update(update.task_id, update.owner_id).collect();
        // A connection may hold several routes to the same task; it gets the update once.
        let mut seen = HashSet::new();
        let mut queued = 0;
        for subscribers in &sets {
            for (id, subscriber) in subscribers.iter() {
                if sets.len() > 1 && !seen.insert(*id) {
                    continue;
                }
                let frame = frames.get(subscriber.dialect);
                let pushed = if update.event.is_none() {
                    subscriber.outbox.push_progress(frame, update.task_id)
                } else {
                    subscriber.outbox.push(frame, Some(update.task_id))
                };
                match pushed {
                    Pushed::Queued => queued += 1,
                    Pushed::Replaced => {
                        counters.ticks_replaced.fetch_add(1, Ordering::Relaxed);
                    }
                    Pushed::Overflowed => self.overflowed(*id),
                    Pushed::Closed => {}
                }
            }
        }
        counters.frames_queued.fetch_add(queued, Ordering::Relaxed);
    }

    /// Pushes a change of notifications to every connection following `recipient`'s inbox, or
    /// every inbox for a broadcast (`None`).
    pub fn deliver_notification(&self, recipient: Option<i64>, message: &ServerMessage) {
        let frame = Outgoing::Frame(message.to_frame().into());
        let routes = self.inner.routes.read().expect("routes lock");
        let mut queued = 0;
        let inboxes: Vec<&HashMap<ConnectionId, Subscriber>> = match recipient {
            Some(user) => routes.by_inbox.get(&user).into_iter().collect(),
            None => routes.by_inbox.values().collect(),
        };
        for (id, subscriber) in inboxes.into_iter().flatten() {
            match subscriber.outbox.push(frame.clone(), None) {
                Pushed::Queued => queued += 1,
                Pushed::Overflowed => self.overflowed(*id),
                Pushed::Replaced | Pushed::Closed => {}
            }
        }
        let counters = &self.inner.counters;
        counters.notifications.fetch_add(1, Ordering::Relaxed);
        counters.frames_queued.fetch_add(queued, Ordering::Relaxed);
    }

    /// Counts a connection closed because its outbox overflowed.
    fn overflowed(&self, connection: ConnectionId) {
        self.inner
            .counters
            .slow_closed
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(connection, "closing a client that cannot keep up");
    }

    /// The hub missed updates (it fell too far behind the engine): nobody can tell which
    /// tasks they were about, so every connection is closed and its client resumes from a
    /// snapshot.
    fn reset_everyone(&self, missed: u64) {
        tracing::warn!(
            missed,
            "live updates were lost; every client will resubscribe"
        );
        self.inner
            .counters
            .lag_resets
            .fetch_add(1, Ordering::Relaxed);
        for outbox in self.inner.outboxes.read().expect("outboxes lock").values() {
            outbox.close("the server fell behind; resubscribe");
        }
    }

    pub fn metrics(&self) -> LiveMetrics {
        let counters = &self.inner.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LiveMetrics {
            connections: read(&counters.connections),
            subscriptions: read(&counters.subscriptions),
            updates: read(&counters.updates),
            notifications: read(&counters.notifications),
            frames_queued: read(&counters.frames_queued),
            ticks_replaced: read(&counters.ticks_replaced),
            slow_closed: read(&counters.slow_closed),
            lag_resets: read(&counters.lag_resets),
        }
    }
}

/// One update as each dialect wants it, made on first use and shared by every subscriber.
struct Frames<'a> {
    update: &'a TaskUpdate,
    native: OnceLock<Utf8Bytes>,
    shared: OnceLock<Arc<TaskUpdate>>,
}

impl<'a> Frames<'a> {
    fn new(update: &'a TaskUpdate) -> Self {
        Frames {
            update,
            native: OnceLock::new(),
            shared: OnceLock::new(),
        }
    }

    fn get(&self, dialect: Dialect) -> Outgoing {
        match dialect {
            Dialect::Native => Outgoing::Frame(
                self.native
                    .get_or_init(|| {
                        let message = ServerMessage::TaskUpdate {
                            update: self.update.clone(),
                        };
                        message.to_frame().into()
                    })
                    .clone(),
            ),
            Dialect::Updates => Outgoing::Update(
                self.shared
                    .get_or_init(|| Arc::new(self.update.clone()))
                    .clone(),
            ),
        }
    }
}

/// One connection's registration with the hub: its outbox and its routes. Dropping it removes
/// every route.
pub struct Connection {
    hub: LiveHub,
    id: ConnectionId,
    dialect: Dialect,
    outbox: Arc<Outbox>,
    routes: HashSet<Route>,
}

impl Connection {
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Queues a reply to the client's request. A reply that does not fit closes the
    /// connection like an update that does not.
    pub fn reply(&self, frame: Utf8Bytes) -> Pushed {
        let pushed = self.outbox.reply(frame);
        if pushed == Pushed::Overflowed {
            self.hub.overflowed(self.id);
        }
        pushed
    }

    /// Holds the outbox's next place for a frame about `task` that is still being made (a
    /// snapshot): take it *before* registering the route whose updates must follow that frame.
    /// See [`Outbox::reserve`].
    pub fn reserve(&self, task: Option<Uuid>) -> Reservation {
        let (reservation, pushed) = self.outbox.reserve(task);
        if pushed == Pushed::Overflowed {
            self.hub.overflowed(self.id);
        }
        reservation
    }

    /// How many routes this connection holds.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    pub fn is_subscribed(&self, route: Route) -> bool {
        self.routes.contains(&route)
    }

    /// Starts routing `route`'s updates to this connection (again, harmlessly, if it already
    /// held it).
    pub fn subscribe(&mut self, route: Route) {
        if !self.routes.insert(route) {
            return;
        }
        let subscriber = Subscriber {
            dialect: self.dialect,
            outbox: self.outbox.clone(),
        };
        let hub = &self.hub.inner;
        hub.routes
            .write()
            .expect("routes lock")
            .subscribers(route)
            .insert(self.id, subscriber);
        hub.counters.subscriptions.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops routing `route`'s updates here. Returns whether the connection held it.
    pub fn unsubscribe(&mut self, route: Route) -> bool {
        if !self.routes.remove(&route) {
            return false;
        }
        let hub = &self.hub.inner;
        hub.routes
            .write()
            .expect("routes lock")
            .remove(route, self.id);
        hub.counters.subscriptions.fetch_sub(1, Ordering::Relaxed);
        true
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let hub = &self.hub.inner;
        if !self.routes.is_empty() {
            let mut routes = hub.routes.write().expect("routes lock");
            for route in &self.routes {
                routes.remove(*route, self.id);
            }
            hub.counters
                .subscriptions
                .fetch_sub(self.routes.len() as u64, Ordering::Relaxed);
        }
        hub.outboxes
            .write()
            .expect("outboxes lock")
            .remove(&self.id);
        hub.counters.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tasks::{TaskEvent, TaskEventKind, TaskProgress, TaskStatus};

    fn update(task: Uuid, owner: i64, seq: i64, event: bool) -> TaskUpdate {
        TaskUpdate {
            task_id: task,
            owner_id: Some(owner),
            status: TaskStatus::Running,
            cancel_requested: false,
            progress: TaskProgress::default(),
            seq,
            event: event.then(|| TaskEvent {
                seq,
                kind: TaskEventKind::Stage,
                data: serde_json::json!({ "stage": "x" }),
                created_at: chrono::Utc::now(),
            }),
        }
    }

    #[test]
    fn routes_reach_their_subscribers_once() {
        let hub = LiveHub::default();
        let task = Uuid::from_u128(1);
        let mut own = hub.connect(Dialect::Native);
        own.subscribe(Route::Task(task));
        own.subscribe(Route::Owner(7));
        let mut admin = hub.connect(Dialect::Native);
        admin.subscribe(Route::All);
        let mut stranger = hub.connect(Dialect::Native);
        stranger.subscribe(Route::Owner(8));
        stranger.subscribe(Route::Task(Uuid::from_u128(2)));

        hub.deliver(&update(task, 7, 1, true));
        assert_eq!(
            own.outbox().len(),
            1,
            "one frame despite two matching routes"
        );
        assert_eq!(admin.outbox().len(), 1);
        assert!(stranger.outbox().is_empty());
        assert_eq!(hub.metrics().subscriptions, 5);
        assert_eq!(hub.metrics().frames_queued, 2);
    }

    #[test]
    fn notifications_reach_their_reader_and_broadcasts_every_inbox() {
        let hub = LiveHub::default();
        let mut anns_tabs = [hub.connect(Dialect::Native), hub.connect(Dialect::Native)];
        for tab in &mut anns_tabs {
            tab.subscribe(Route::Inbox(7));
        }
        let mut bobs = hub.connect(Dialect::Native);
        bobs.subscribe(Route::Inbox(8));
        let mut tasks_only = hub.connect(Dialect::Native);
        tasks_only.subscribe(Route::Owner(7));
        let change = ServerMessage::NotificationUpdate {
            change: crate::protocol::NotificationChange::ReadDeleted,
            unread: None,
        };

        hub.deliver_notification(Some(7), &change);
        assert_eq!(anns_tabs.each_ref().map(|tab| tab.outbox().len()), [1, 1]);
        assert_eq!(bobs.outbox().len(), 0);

        hub.deliver_notification(None, &change);
        assert_eq!(anns_tabs.each_ref().map(|tab| tab.outbox().len()), [2, 2]);
        assert_eq!(bobs.outbox().len(), 1);
        assert_eq!(tasks_only.outbox().len(), 0, "a task route is not an inbox");
        assert_eq!(hub.metrics().notifications, 2);
    }

    #[test]
    fn dropping_a_connection_removes_its_routes() {
        let hub = LiveHub::default();
        let task = Uuid::from_u128(1);
        let mut connection = hub.connect(Dialect::Native);
        connection.subscribe(Route::Task(task));
        connection.subscribe(Route::Task(task));
        assert_eq!(
            hub.metrics().subscriptions,
            1,
            "subscribing twice holds one route"
        );
        assert!(connection.unsubscribe(Route::Task(task)));
        assert!(!connection.unsubscribe(Route::Task(task)));
        connection.subscribe(Route::All);
        drop(connection);
        assert_eq!(hub.metrics().connections, 0);
        assert_eq!(hub.metrics().subscriptions, 0);
        let routes = hub.inner.routes.read().unwrap();
        assert!(routes.by_task.is_empty() && routes.all.is_empty());
    }

    #[test]
    fn replies_that_do_not_fit_close_the_connection_and_are_counted() {
        let hub = LiveHub::default();
        let connection = hub.connect(Dialect::Native);
        for _ in 0..OUTBOX_CAPACITY {
            assert_eq!(
                connection.reply(Utf8Bytes::from_static("x")),
                Pushed::Queued
            );
        }
        assert_eq!(
            connection.reply(Utf8Bytes::from_static("x")),
            Pushed::Overflowed
        );
        assert_eq!(hub.metrics().slow_closed, 1);
        assert!(connection.outbox().close_reason().is_some());
    }

    #[test]
    fn ticks_merge_and_a_stuck_connection_is_closed_without_touching_others() {
        let hub = LiveHub::default();
        let task = Uuid::from_u128(1);
        let mut stuck = hub.connect(Dialect::Native);
        stuck.subscribe(Route::Task(task));
        for _ in 0..10 {
            hub.deliver(&update(task, 7, 0, false));
        }
        assert_eq!(stuck.outbox().len(), 1);
        assert_eq!(hub.metrics().ticks_replaced, 9);
        for seq in 1..=OUTBOX_CAPACITY as i64 {
            hub.deliver(&update(task, 7, seq, true));
        }
        assert!(stuck.outbox().close_reason().is_some());
        assert_eq!(hub.metrics().slow_closed, 1);
    }
}
