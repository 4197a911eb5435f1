//! The tab's live connection to the server: the one WebSocket (`/ws`) of this browser tab,
//! shared with every component through context.
//!
//! The server renders the page with the connection in [`ConnectionState::Connecting`]; once the
//! WASM has hydrated, the browser connects, and reconnects after any loss with capped
//! exponential backoff and jitter. Frames that do not parse are logged and ignored.
//!
//! Components subscribe to topics with [`LiveConnection::subscribe`]; the connection sends the
//! subscriptions whenever it is (re)connected — for a task with the newest event sequence
//! number seen, so the server replays only what was missed — and hands each message to the
//! subscribers of its topic.

use std::{collections::HashMap, time::Duration};

use futures::channel::mpsc::UnboundedSender;
use leptos::prelude::*;

use crate::protocol::{ClientMessage, ServerMessage, Topic};

/// First reconnection delay; doubled on every failed attempt up to [`RECONNECT_MAX_DELAY`].
pub const RECONNECT_BASE_DELAY: Duration = Duration::from_millis(500);
/// Longest pause between two reconnection attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);
/// How long a page waits after a change before asking for a fresh snapshot (see
/// [`LiveConnection::debounced_refresh`]).
const REFRESH_DELAY: Duration = Duration::from_millis(250);
/// How often the browser pings the server; a ping unanswered by the next one means the
/// connection is dead even if the browser has not noticed.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Before the first connection; also what the server renders.
    Connecting,
    /// The server greeted this tab and answers.
    Connected,
    /// The connection was lost; attempt `attempt` is scheduled.
    Reconnecting { attempt: u32 },
}

impl ConnectionState {
    /// Short text for people.
    pub fn label(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "Connecting…",
            ConnectionState::Connected => "Live",
            ConnectionState::Reconnecting { .. } => "Reconnecting…",
        }
    }

    /// Stable name for styles and tests (`data-state`).
    pub fn key(self) -> &'static str {
        match self {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting { .. } => "reconnecting",
        }
    }
}

/// The delay before reconnection attempt `attempt` (1-based): exponential, capped, and spread
/// by `random` in `[0, 1)` over its upper half so that many tabs do not reconnect in lockstep
/// after a server restart.
pub fn reconnect_delay(attempt: u32, random: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    let delay = RECONNECT_BASE_DELAY
        .saturating_mul(1 << doublings)
        .min(RECONNECT_MAX_DELAY);
    delay.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
}

/// The components listening to one topic, and how far the tab has seen it.
struct TopicListeners {
    /// The newest event sequence number seen (task topics), sent on resubscription.
    after: Option<i64>,
    listeners: Vec<(u64, Callback<ServerMessage>)>,
}

/// Handle to the tab's connection; `Copy`, obtained with [`LiveConnection::expect`].
#[derive(Clone, Copy)]
pub struct LiveConnection {
    state: RwSignal<ConnectionState>,
    round_trip_ms: RwSignal<Option<f64>>,
    next_nonce: StoredValue<u64>,
    /// Messages for the socket task; `None` on the server and before the WASM has started.
    outbox: StoredValue<Option<UnboundedSender<ClientMessage>>>,
    topics: StoredValue<HashMap<Topic, TopicListeners>>,
    next_listener: StoredValue<u64>,
}

impl LiveConnection {
    /// Creates the tab's connection and provides it to the component tree; it opens on
    /// [`LiveConnection::connect`].
    pub fn provide() -> Self {
        let live = LiveConnection {
            state: RwSignal::new(ConnectionState::Connecting),
            round_trip_ms: RwSignal::new(None),
            next_nonce: StoredValue::new(1),
            outbox: StoredValue::new(None),
            topics: StoredValue::new(HashMap::new()),
            next_listener: StoredValue::new(0),
        };
        provide_context(live);
        live
    }

    /// Opens the socket (in the browser, once; later calls do nothing) and keeps it open,
    /// reconnecting whenever it drops.
    pub fn connect(&self) {
        #[cfg(feature = "hydrate")]
        if self.outbox.with_value(Option::is_none) {
            browser::start(*self);
        }
    }

    /// The connection provided by [`LiveConnection::provide`].
    pub fn expect() -> Self {
        expect_context()
    }

    pub fn state(&self) -> ConnectionState {
        self.state.get()
    }

    /// Round trip of the latest answered ping, in milliseconds.
    pub fn round_trip_ms(&self) -> Option<f64> {
        self.round_trip_ms.get()
    }

    /// Sends a ping to measure the round trip. Returns `false` when not connected.
    pub fn ping(&self) -> bool {
        let nonce = self.take_nonce();
        self.send(ClientMessage::Ping { nonce })
    }

    /// Queues a message for the server. Returns `false` when not connected.
    pub fn send(&self, message: ClientMessage) -> bool {
        self.state.get_untracked() == ConnectionState::Connected
            && self.outbox.with_value(|outbox| {
                outbox
                    .as_ref()
                    .is_some_and(|sender| sender.unbounded_send(message).is_ok())
            })
    }

    /// Calls `listener` with every message about `topic` — its snapshots, updates and errors —
    /// until the calling component is disposed. `after` is the newest event sequence number the
    /// component already shows (from the server-rendered page), so that the first snapshot
    /// carries only what is newer. A listener joining a topic that is already followed asks
    /// for a fresh snapshot too (every listener of the topic receives it), so that it starts
    /// from the current state like the first one did.
    pub fn subscribe(&self, topic: Topic, after: Option<i64>, listener: Callback<ServerMessage>) {
        let id = self.next_listener.get_value();
        self.next_listener.set_value(id + 1);
        // How far the tab has seen the topic: what this listener says, or more if the topic
        // is already followed. `None` only once the connection itself is gone.
        let seen = self.topics.try_update_value(|topics| {
            let entry = topics.entry(topic).or_insert(TopicListeners {
                after,
                listeners: Vec::new(),
            });
            entry.listeners.push((id, listener));
            entry.after
        });
        if let Some(after) = seen {
            self.send(ClientMessage::Subscribe { topic, after });
        }
        let live = *self;
        on_cleanup(move || live.unsubscribe(topic, id));
    }

    fn unsubscribe(&self, topic: Topic, id: u64) {
        let last = self.topics.try_update_value(|topics| {
            let Some(entry) = topics.get_mut(&topic) else {
                return false;
            };
            entry.listeners.retain(|(listener, _)| *listener != id);
            let empty = entry.listeners.is_empty();
            if empty {
                topics.remove(&topic);
            }
            empty
        });
        if last == Some(true) {
            self.send(ClientMessage::Unsubscribe { topic });
        }
    }

    /// Asks again for `topic`'s snapshot (e.g. to refresh counts after tasks changed state).
    pub fn refresh(&self, topic: Topic) {
        let after = self
            .topics
            .with_value(|topics| topics.get(&topic).map(|entry| entry.after));
        if let Some(after) = after {
            self.send(ClientMessage::Subscribe { topic, after });
        }
    }

    /// A callback that asks for a fresh snapshot of `topic` once, [`REFRESH_DELAY`] after the
    /// first of a burst of calls, so that a burst of changes costs one snapshot.
    pub fn debounced_refresh(self, topic: Topic) -> Callback<()> {
        let scheduled = StoredValue::new(false);
        Callback::new(move |()| {
            if scheduled.get_value() {
                return;
            }
            scheduled.set_value(true);
            set_timeout(
                move || {
                    scheduled.set_value(false);
                    self.refresh(topic);
                },
                REFRESH_DELAY,
            );
        })
    }

    fn take_nonce(&self) -> u64 {
        let nonce = self.next_nonce.get_value();
        self.next_nonce.set_value(nonce.wrapping_add(1));
        nonce
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use futures::{SinkExt, StreamExt, channel::mpsc::UnboundedReceiver, select};
    use gloo_net::websocket::{Message, futures::WebSocket};
    use gloo_timers::future::{IntervalStream, TimeoutFuture};
    use leptos::{logging, prelude::*};

    use super::{ConnectionState, HEARTBEAT_INTERVAL, LiveConnection, reconnect_delay};
    use crate::protocol::{ClientMessage, ServerMessage, Topic};

    pub(super) fn start(live: LiveConnection) {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        live.outbox.set_value(Some(sender));
        leptos::task::spawn_local(run(live, receiver));
    }

    /// Connects, serves the connection until it ends, waits, and connects again, forever.
    async fn run(live: LiveConnection, mut outbox: UnboundedReceiver<ClientMessage>) {
        let Some(url) = socket_url() else {
            logging::error!("cannot tell the page's address; live updates are off");
            return;
        };
        let mut attempt = 0;
        loop {
            match WebSocket::open(&url) {
                Ok(socket) => {
                    if serve(live, socket, &mut outbox).await {
                        attempt = 0;
                    }
                }
                Err(error) => logging::warn!("cannot open the live connection: {error}"),
            }
            attempt += 1;
            live.state.set(ConnectionState::Reconnecting { attempt });
            let delay = reconnect_delay(attempt, js_sys::Math::random());
            TimeoutFuture::new(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX)).await;
        }
    }

    /// Serves one connection until it ends. Returns whether the server greeted us, i.e.
    /// whether the connection was ever up (so the backoff starts again from the beginning).
    async fn serve(
        live: LiveConnection,
        socket: WebSocket,
        outbox: &mut UnboundedReceiver<ClientMessage>,
    ) -> bool {
        let (mut sink, incoming) = socket.split();
        let mut incoming = incoming.fuse();
        let heartbeat_ms = u32::try_from(HEARTBEAT_INTERVAL.as_millis()).unwrap_or(u32::MAX);
        let mut heartbeat = IntervalStream::new(heartbeat_ms).fuse();
        let mut greeted = false;
        // Pings sent and not answered yet, with the time they were sent.
        let mut unanswered: Vec<(u64, f64)> = Vec::new();
        loop {
            let outgoing = select! {
                frame = incoming.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        match ServerMessage::parse(&text) {
                            Ok(message) => receive(live, message, &mut greeted, &mut unanswered),
                            Err(error) => logging::warn!("ignoring a malformed server frame: {error}"),
                        }
                        None
                    }
                    Some(Ok(Message::Bytes(_))) => None,
                    Some(Err(_)) | None => return greeted,
                },
                message = outbox.next() => message,
                _ = heartbeat.next() => {
                    if !unanswered.is_empty() {
                        logging::warn!("the server stopped answering; reconnecting");
                        return greeted;
                    }
                    Some(ClientMessage::Ping { nonce: live.take_nonce() })
                }
            };
            if let Some(message) = outgoing {
                if let Some(nonce) = message.ping_nonce() {
                    unanswered.push((nonce, now_ms()));
                }
                if sink.send(Message::Text(message.to_frame())).await.is_err() {
                    return greeted;
                }
            }
        }
    }

    fn receive(
        live: LiveConnection,
        message: ServerMessage,
        greeted: &mut bool,
        unanswered: &mut Vec<(u64, f64)>,
    ) {
        match message {
            ServerMessage::Hello { .. } => {
                *greeted = true;
                live.state.set(ConnectionState::Connected);
                for subscription in subscriptions(live) {
                    live.send(subscription);
                }
            }
            ServerMessage::Pong { nonce } => {
                if let Some(index) = unanswered.iter().position(|(sent, _)| *sent == nonce) {
                    let (_, sent_at) = unanswered[index];
                    live.round_trip_ms.set(Some(now_ms() - sent_at));
                    unanswered.drain(..=index);
                }
            }
            ServerMessage::Error {
                code,
                message,
                topic: None,
            } => {
                logging::warn!("server reported {code:?}: {message}");
            }
            message => dispatch(live, message),
        }
    }

    /// `ws://host/ws` or `wss://host/ws` for the page's own origin.
    fn socket_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" {
            "wss"
        } else {
            "ws"
        };
        Some(format!("{scheme}://{}/ws", location.host().ok()?))
    }

    /// Every subscription, to send again after connecting.
    fn subscriptions(live: LiveConnection) -> Vec<ClientMessage> {
        live.topics.with_value(|topics| {
            topics
                .iter()
                .map(|(topic, entry)| ClientMessage::Subscribe {
                    topic: *topic,
                    after: entry.after,
                })
                .collect()
        })
    }

    /// Hands a message to the listeners of the topics it is about, and remembers the newest
    /// event seen.
    fn dispatch(live: LiveConnection, message: ServerMessage) {
        let seen = newest_event(&message);
        let mut listeners = Vec::new();
        live.topics.update_value(|all| {
            for topic in message_topics(&message) {
                let Some(entry) = all.get_mut(&topic) else {
                    continue;
                };
                if let (Topic::Task { .. }, Some(seen)) = (topic, seen) {
                    entry.after = Some(entry.after.map_or(seen, |after| after.max(seen)));
                }
                listeners.extend(entry.listeners.iter().map(|(_, listener)| *listener));
            }
        });
        for listener in listeners {
            listener.run(message.clone());
        }
    }

    /// The topics a server message is about.
    fn message_topics(message: &ServerMessage) -> Vec<Topic> {
        match message {
            ServerMessage::TaskSnapshot { task, .. } => vec![Topic::Task { id: task.id }],
            ServerMessage::TasksSnapshot { .. } => vec![Topic::Tasks],
            ServerMessage::TaskUpdate { update } => {
                vec![Topic::Task { id: update.task_id }, Topic::Tasks]
            }
            ServerMessage::NotificationsSnapshot { .. }
            | ServerMessage::NotificationUpdate { .. } => vec![Topic::Notifications],
            ServerMessage::Error {
                topic: Some(topic), ..
            } => vec![*topic],
            _ => Vec::new(),
        }
    }

    /// The newest task event sequence number a message shows the tab.
    fn newest_event(message: &ServerMessage) -> Option<i64> {
        match message {
            ServerMessage::TaskSnapshot { task, .. } => Some(task.last_event_seq),
            ServerMessage::TaskUpdate { update } => update.event.as_ref().map(|event| event.seq),
            _ => None,
        }
    }

    fn now_ms() -> f64 {
        web_sys::window()
            .and_then(|window| window.performance())
            .map_or(0.0, |p| p.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_grows_exponentially_up_to_the_cap() {
        let upper = |attempt| reconnect_delay(attempt, 1.0);
        assert_eq!(upper(1), RECONNECT_BASE_DELAY);
        assert_eq!(upper(2), RECONNECT_BASE_DELAY * 2);
        assert_eq!(upper(3), RECONNECT_BASE_DELAY * 4);
        assert_eq!(upper(100), RECONNECT_MAX_DELAY);
        assert_eq!(upper(u32::MAX), RECONNECT_MAX_DELAY);
    }

    #[test]
    fn jitter_spreads_each_delay_over_its_upper_half() {
        for attempt in 1..20 {
            let full = reconnect_delay(attempt, 1.0);
            assert_eq!(reconnect_delay(attempt, 0.0), full / 2);
            let middle = reconnect_delay(attempt, 0.5);
            assert!(
                middle > full / 2 && middle < full,
                "attempt {attempt}: {middle:?}"
            );
        }
        // Out-of-range randomness cannot produce a zero or an overlong delay.
        assert_eq!(reconnect_delay(1, -3.0), RECONNECT_BASE_DELAY / 2);
        assert_eq!(reconnect_delay(1, 7.0), RECONNECT_BASE_DELAY);
    }
}
