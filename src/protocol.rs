//! The typed messages of the app's WebSocket (`/ws`), shared by the server and the WASM client.
//!
//! Every frame is one JSON object whose `type` field names the variant, e.g.
//! `{"type":"ping","nonce":7}`. Both sides parse frames with [`ClientMessage::parse`] /
//! [`ServerMessage::parse`], which never panic: a frame that does not parse is an error value.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{
    notifications::{Notification, UnreadCount},
    tasks::{Task, TaskEvent, TaskSummary, TaskUpdate},
};

/// Version of this protocol, announced in [`ServerMessage::Hello`]. Bumped on breaking changes so
/// that an old tab can tell it must reload.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest client frame the server accepts, in bytes. Larger frames close the connection with
/// close code 1009 ("message too big").
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// Messages sent by the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Asks for a [`ServerMessage::Pong`] carrying the same nonce; used to measure round trips
    /// and to notice a dead connection that the browser has not reported yet.
    Ping { nonce: u64 },
    /// Asks for the topic's current state ([`ServerMessage::TaskSnapshot`],
    /// [`ServerMessage::TasksSnapshot`] or [`ServerMessage::NotificationsSnapshot`]) and then
    /// its live updates. Subscribing again to a topic
    /// already subscribed answers a fresh snapshot.
    Subscribe {
        topic: Topic,
        /// For a task: the newest event sequence number the client has seen. The snapshot then
        /// carries only the events after it, when the log still has them all.
        #[serde(default)]
        after: Option<i64>,
    },
    /// Stops the topic's updates; answered with [`ServerMessage::Unsubscribed`].
    Unsubscribe { topic: Topic },
}

/// What a client can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", from = "TopicFrame")]
pub enum Topic {
    /// One task: its state and every change of it.
    Task { id: Uuid },
    /// Every task the user may see: their own, or everybody's for an administrator.
    Tasks,
    /// The user's own notifications (administrators too see only theirs and broadcasts).
    Notifications,
}

/// How a [`Topic`] is read: serde ignores `deny_unknown_fields` on the unit variants of an
/// internally tagged enum, so `{"kind":"tasks","owner":1}` would pass as `Tasks`; an empty
/// struct variant refuses it.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TopicFrame {
    Task { id: Uuid },
    Tasks {},
    Notifications {},
}

impl From<TopicFrame> for Topic {
    fn from(frame: TopicFrame) -> Self {
        match frame {
            TopicFrame::Task { id } => Topic::Task { id },
            TopicFrame::Tasks {} => Topic::Tasks,
            TopicFrame::Notifications {} => Topic::Notifications,
        }
    }
}

/// Most events a task snapshot carries; a client further behind gets the newest ones and
/// replaces its timeline.
pub const SNAPSHOT_EVENTS_LIMIT: u32 = 200;
/// Most topics one connection may subscribe to at once.
pub const MAX_SUBSCRIPTIONS: usize = 100;
/// Newest notifications a [`ServerMessage::NotificationsSnapshot`] carries (the bell's list).
pub const SNAPSHOT_NOTIFICATIONS_LIMIT: u32 = 10;

/// Messages sent by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection: the connection is ready for requests.
    Hello {
        protocol_version: u32,
        server_version: String,
    },
    /// Answer to [`ClientMessage::Ping`].
    Pong { nonce: u64 },
    /// The current state of a subscribed task: the first answer to
    /// [`ClientMessage::Subscribe`] for [`Topic::Task`]. Updates follow as
    /// [`ServerMessage::TaskUpdate`].
    TaskSnapshot {
        task: Box<Task>,
        /// The log entries the client has not seen, oldest first.
        events: Vec<TaskEvent>,
        /// `true` when `events` are the newest entries rather than all those after the client's
        /// `after` (a first subscription, or a gap too old to replay): the client replaces its
        /// timeline instead of appending.
        replaces_timeline: bool,
    },
    /// The current state of [`Topic::Tasks`]: counts by status, the tasks running or waiting,
    /// and the latest finished ones.
    TasksSnapshot {
        summary: TaskSummary,
        active: Vec<Task>,
        recent: Vec<Task>,
    },
    /// A live change of a task the client subscribed to (directly or through
    /// [`Topic::Tasks`]). A client applies it only when its `seq` is not older than what it
    /// knows, and appends its event only when the event's `seq` is newer.
    TaskUpdate { update: TaskUpdate },
    /// The current state of [`Topic::Notifications`]: the unread count and the newest
    /// notifications. Changes follow as [`ServerMessage::NotificationUpdate`].
    NotificationsSnapshot {
        unread: UnreadCount,
        latest: Vec<Notification>,
    },
    /// A change of the user's notifications, made in this tab, another tab or by the server.
    NotificationUpdate {
        change: NotificationChange,
        /// The unread count after the change; `None` for a broadcast, whose count differs by
        /// reader (the client asks for its own). Apply it only if it is newer than the count
        /// the client has ([`UnreadCount::newest`]).
        unread: Option<UnreadCount>,
    },
    /// Answer to [`ClientMessage::Unsubscribe`].
    Unsubscribed { topic: Topic },
    /// A request could not be handled; the connection stays open unless a close frame follows.
    Error {
        code: ErrorCode,
        message: String,
        /// The subscription the error is about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<Topic>,
    },
}

/// What happened to a user's notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotificationChange {
    /// A new notification — or a new version of one the client may have (same id: the
    /// notification of a task that was retried and ended again, or now follows the retry):
    /// the client replaces its copy.
    Created { notification: Notification },
    /// One notification was marked read.
    Read { id: i64 },
    /// Every notification up to and including `up_to` was marked read.
    AllRead { up_to: i64 },
    /// One notification was deleted.
    Deleted { id: i64 },
    /// Every read notification was deleted.
    ReadDeleted,
}

/// Machine-readable reason of a [`ServerMessage::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known message.
    MalformedMessage,
    /// Binary frames carry nothing in this protocol.
    UnsupportedFrame,
    /// The task does not exist or belongs to somebody else.
    NotFound,
    /// The connection already has [`MAX_SUBSCRIPTIONS`] subscriptions.
    TooManySubscriptions,
    /// The server could not answer now (its database did not); try again later.
    Unavailable,
}

impl ClientMessage {
    /// Parses one text frame from a client.
    pub fn parse(frame: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(frame)
    }
}

impl ServerMessage {
    /// Parses one text frame from the server.
    pub fn parse(frame: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(frame)
    }

    /// The error reply to a frame that [`ClientMessage::parse`] rejected. The parser's own text
    /// says what was wrong (unknown type, missing field, wrong type) without echoing the frame.
    pub fn malformed(error: &serde_json::Error) -> Self {
        ServerMessage::Error {
            code: ErrorCode::MalformedMessage,
            message: format!("malformed message: {error}"),
            topic: None,
        }
    }

    /// Serialises the message as one text frame.
    pub fn to_frame(&self) -> String {
        // Serialising cannot fail: every map key is a string and no type has a fallible
        // `Serialize`.
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

impl ClientMessage {
    /// The nonce of a ping, whose pong the sender waits for.
    pub fn ping_nonce(&self) -> Option<u64> {
        match self {
            ClientMessage::Ping { nonce } => Some(*nonce),
            ClientMessage::Subscribe { .. } | ClientMessage::Unsubscribe { .. } => None,
        }
    }

    /// Serialises the message as one text frame.
    pub fn to_frame(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_has_a_stable_wire_format() {
        let ping = ClientMessage::Ping { nonce: 7 };
        assert_eq!(ping.to_frame(), r#"{"type":"ping","nonce":7}"#);
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping","nonce":7}"#).unwrap(),
            ping
        );
    }

    #[test]
    fn server_messages_round_trip() {
        let messages = [
            ServerMessage::Hello {
                protocol_version: PROTOCOL_VERSION,
                server_version: "1.0".into(),
            },
            ServerMessage::Pong { nonce: u64::MAX },
            ServerMessage::Error {
                code: ErrorCode::MalformedMessage,
                message: "x".into(),
                topic: None,
            },
            ServerMessage::Unsubscribed {
                topic: Topic::Task { id: Uuid::nil() },
            },
            ServerMessage::Error {
                code: ErrorCode::NotFound,
                message: "no such task".into(),
                topic: Some(Topic::Tasks),
            },
        ];
        for message in messages {
            assert_eq!(ServerMessage::parse(&message.to_frame()).unwrap(), message);
        }
    }

    #[test]
    fn notification_messages_have_a_stable_wire_format() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","topic":{"kind":"notifications"}}"#)
                .unwrap(),
            ClientMessage::Subscribe {
                topic: Topic::Notifications,
                after: None
            }
        );
        assert!(
            ClientMessage::parse(
                r#"{"type":"subscribe","topic":{"kind":"notifications","user":2}}"#
            )
            .is_err(),
            "somebody else's feed cannot even be asked for"
        );
        let update = ServerMessage::NotificationUpdate {
            change: NotificationChange::AllRead { up_to: 9 },
            unread: Some(UnreadCount {
                count: 0,
                version: 12,
            }),
        };
        assert_eq!(
            update.to_frame(),
            r#"{"type":"notification_update","change":{"kind":"all_read","up_to":9},"unread":{"count":0,"version":12}}"#
        );
        assert_eq!(ServerMessage::parse(&update.to_frame()).unwrap(), update);
    }

    #[test]
    fn subscriptions_have_a_stable_wire_format() {
        let id = Uuid::nil();
        let subscribe = ClientMessage::Subscribe {
            topic: Topic::Task { id },
            after: Some(4),
        };
        assert_eq!(
            subscribe.to_frame(),
            format!(r#"{{"type":"subscribe","topic":{{"kind":"task","id":"{id}"}},"after":4}}"#)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","topic":{"kind":"tasks"}}"#).unwrap(),
            ClientMessage::Subscribe {
                topic: Topic::Tasks,
                after: None
            }
        );
        assert_eq!(
            ClientMessage::parse(
                &ClientMessage::Unsubscribe {
                    topic: Topic::Tasks
                }
                .to_frame()
            )
            .unwrap(),
            ClientMessage::Unsubscribe {
                topic: Topic::Tasks
            }
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        for frame in [
            "",
            "not json",
            "null",
            "[]",
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","nonce":"7"}"#,
            r#"{"type":"ping","nonce":-1}"#,
            r#"{"type":"ping","nonce":1,"extra":true}"#,
            r#"{"type":"launch_missiles"}"#,
            r#"{"nonce":1}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","topic":{"kind":"task"}}"#,
            r#"{"type":"subscribe","topic":{"kind":"task","id":"not-a-uuid"}}"#,
            r#"{"type":"subscribe","topic":{"kind":"everything"}}"#,
            r#"{"type":"subscribe","topic":{"kind":"tasks","owner":1}}"#,
            r#"{"type":"subscribe","topic":{"kind":"tasks"},"after":"x"}"#,
            r#"{"type":"unsubscribe","topic":"tasks"}"#,
        ] {
            assert!(ClientMessage::parse(frame).is_err(), "accepted {frame:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_frame_parses_or_errs_without_panicking(frame in ".{0,512}") {
            let _ = ClientMessage::parse(&frame);
        }

        #[test]
        fn any_json_object_frame_parses_or_errs(
            kind in "[a-z_]{0,12}",
            nonce in proptest::num::i128::ANY,
            extra in proptest::option::of("[a-z]{1,8}"),
        ) {
            let mut frame = serde_json::json!({ "type": kind, "nonce": nonce.to_string() });
            if let Some(extra) = extra {
                frame[extra] = serde_json::Value::Bool(true);
            }
            proptest::prop_assert!(ClientMessage::parse(&frame.to_string()).is_err());
        }

        #[test]
        fn every_ping_round_trips(nonce in proptest::num::u64::ANY) {
            let ping = ClientMessage::Ping { nonce };
            proptest::prop_assert_eq!(ClientMessage::parse(&ping.to_frame()).unwrap(), ping);
        }
    }

    #[test]
    fn malformed_reply_names_the_problem() {
        let error = ClientMessage::parse(r#"{"type":"ping"}"#).unwrap_err();
        let ServerMessage::Error { code, message, .. } = ServerMessage::malformed(&error) else {
            panic!("expected an error message");
        };
        assert_eq!(code, ErrorCode::MalformedMessage);
        assert!(message.contains("nonce"), "{message}");
    }
}
