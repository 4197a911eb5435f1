//! The app's WebSocket `/ws`: one connection per browser tab, speaking the typed messages of
//! [`crate::protocol`].
//!
//! The server greets with `hello`, answers every text frame (malformed ones with an `error`
//! reply, keeping the connection), serves subscriptions through the [`LiveHub`](crate::live),
//! pings the client to find dead peers, and closes with 1009 when a frame is too large, 1013
//! when the client cannot keep up with its updates, and 1001 ("going away") when the server
//! shuts down.
//!
//! Everything the connection sends — replies, snapshots, updates — goes through its outbox, so
//! it leaves in the order it was queued, and a client whose socket stops draining blocks only
//! its own task.

use std::{error::Error as _, sync::Arc, time::Duration};

use futures::SinkExt;

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code},
    },
    http::HeaderMap,
    response::Response,
};
use tokio::time::{Instant, interval_at};

use super::AppState;
use crate::{
    auth::{CurrentUser, middleware::is_same_origin},
    error::AppError,
    live::{Connection, Dialect, Outbox, Outgoing},
    protocol::{
        ClientMessage, ErrorCode, MAX_CLIENT_MESSAGE_BYTES, MAX_SUBSCRIPTIONS, PROTOCOL_VERSION,
        ServerMessage, Topic,
    },
    services,
};

/// How often the server pings an idle client.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// A client that sends nothing (not even a pong) for this long is considered gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A batch of frames that the client's network does not take within this time closes the
/// connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the socket at a time. Client frames are small requests (a larger one is
/// read in several steps); tungstenite's default of 128 KiB, resident for the life of each
/// connection, would dominate the memory of an idle connection.
pub(super) const READ_BUFFER_BYTES: usize = 1024;
/// Accepts the upgrade for a signed-in caller (session or API token) from a page of this site;
/// a socket opened by another site's page (cross-site WebSocket hijacking) is refused with 403.
pub async fn upgrade(
    caller: CurrentUser,
    headers: HeaderMap,
    State(state): State<AppState>,
    socket: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if !is_same_origin(&headers) {
        return Err(AppError::Forbidden("cross-site WebSocket refused".into()));
    }
    Ok(socket
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_connection(socket, caller, state)))
}

async fn serve_connection(mut socket: WebSocket, caller: CurrentUser, state: AppState) {
    tracing::debug!(user = %caller.user.username, "websocket connected");
    let live = state.live.connect(Dialect::Native);
    live.outbox().reply(frame(&ServerMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        server_version: crate::VERSION.to_owned(),
    }));
    let mut session = NativeSession {
        state,
        caller,
        live,
    };
    let closing = serve_socket(&mut socket, &mut session).await;
    // The connection no longer takes updates, whatever the closing handshake takes.
    drop(session);
    if let Some(frame) = closing {
        close_handshake(&mut socket, frame).await;
    }
    tracing::debug!("websocket closed");
}

/// What a protocol spoken on a hub connection does inside [`serve_socket`].
pub(super) trait SocketSession {
    /// The outbox of the session's hub connection, which feeds the socket.
    fn outbox(&self) -> &Arc<Outbox>;
    fn shutdown(&self) -> &tokio_util::sync::CancellationToken;
    /// Turns a batch taken from the outbox into frames.
    fn frames(&mut self, batch: &mut Vec<Outgoing>) -> impl Future<Output = Vec<Message>> + Send;
    /// Handles one frame from the client; replies go through the outbox.
    fn answer(&mut self, message: Message) -> impl Future<Output = ()> + Send;
}

/// The socket loop of every hub connection: sends what the outbox gives, answers the client,
/// pings it and notices when it is gone. Answers the close frame owed to the client, if any.
pub(super) async fn serve_socket(
    socket: &mut WebSocket,
    session: &mut impl SocketSession,
) -> Option<CloseFrame> {
    let mut pings = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = Instant::now();
    let mut batch = Vec::new();
    let outbox = session.outbox().clone();
    let outbox = outbox.as_ref();
    let shutdown = session.shutdown().clone();
    // Made once, not on every turn of the loop (each makes a waiter with its own lock).
    let shutting_down = shutdown.cancelled();
    let closing = outbox.closing();
    tokio::pin!(shutting_down, closing);
    loop {
        tokio::select! {
            () = &mut shutting_down => break Some(close(close_code::AWAY, "server is shutting down")),
            () = &mut closing => break closed_by_outbox(outbox),
            _ = pings.tick() => {
                if last_heard.elapsed() >= IDLE_TIMEOUT {
                    tracing::debug!("websocket peer stopped answering pings");
                    break None;
                }
                let mut ping = vec![Message::Ping(Default::default())];
                if send_all(socket, &mut ping, outbox).await.is_err() {
                    break closed_by_outbox(outbox);
                }
            }
            ready = outbox.next_batch(&mut batch) => {
                if ready {
                    let mut frames = session.frames(&mut batch).await;
                    if send_all(socket, &mut frames, outbox).await.is_err() {
                        break closed_by_outbox(outbox);
                    }
                }
            }
            frame = socket.recv() => {
                last_heard = Instant::now();
                match frame {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(message)) => session.answer(message).await,
                    Some(Err(error)) => break close_after_error(&error),
                }
            }
        }
    }
}

/// The app's protocol on one connection.
struct NativeSession {
    state: AppState,
    caller: CurrentUser,
    live: Connection,
}

impl SocketSession for NativeSession {
    fn outbox(&self) -> &Arc<Outbox> {
        self.live.outbox()
    }

    fn shutdown(&self) -> &tokio_util::sync::CancellationToken {
        &self.state.shutdown
    }

    async fn frames(&mut self, batch: &mut Vec<Outgoing>) -> Vec<Message> {
        batch.drain(..).map(Message::from).collect()
    }

    async fn answer(&mut self, message: Message) {
        answer(&self.state, &self.caller, &mut self.live, message).await;
    }
}

/// Sends the close frame, then reads until the client answers it or leaves (for at most
/// [`SEND_TIMEOUT`]). Dropping the socket with the client's frames unread (pongs, requests) would
/// reset the connection, and a reset discards whatever the client has not read yet — a client
/// that was behind would lose the close frame and never learn why it was closed.
pub(super) async fn close_handshake(socket: &mut WebSocket, frame: CloseFrame) {
    let handshake = async {
        socket.send(Message::Close(Some(frame))).await?;
        while let Some(message) = socket.recv().await {
            if let Message::Close(_) = message? {
                break;
            }
        }
        Ok::<(), axum::Error>(())
    };
    // The peer may already be gone; there is nobody left to tell about a failure here.
    let _ = tokio::time::timeout(SEND_TIMEOUT, handshake).await;
}

/// The close frame owed after a send failed: 1013 when the failure is the outbox closing the
/// connection (the client did not keep up, or the hub lost updates) — the send it interrupted
/// is usually the one its client was too slow to take; nothing when the socket broke.
fn closed_by_outbox(outbox: &Outbox) -> Option<CloseFrame> {
    outbox
        .close_reason()
        .map(|reason| close(close_code::AGAIN, reason))
}

/// Writes every queued item, then flushes once. Fails when the socket broke, when the client
/// does not take the frames within [`SEND_TIMEOUT`], or when the connection must close.
pub(super) async fn send_all<T: Into<Message>>(
    socket: &mut WebSocket,
    batch: &mut Vec<T>,
    outbox: &Outbox,
) -> Result<(), ()> {
    let sending = async {
        for item in batch.drain(..) {
            socket.feed(item.into()).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        sent = tokio::time::timeout(SEND_TIMEOUT, sending) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(()),
        },
        () = outbox.closing() => Err(()),
    }
}

impl From<Outgoing> for Message {
    fn from(item: Outgoing) -> Self {
        match item {
            Outgoing::Frame(frame) => Message::Text(frame),
            Outgoing::Update(update) => Message::Text(frame(&ServerMessage::TaskUpdate {
                update: (*update).clone(),
            })),
        }
    }
}

/// Handles one frame from the client; every reply goes through the outbox.
async fn answer(state: &AppState, caller: &CurrentUser, live: &mut Connection, message: Message) {
    let reply = match message {
        Message::Text(text) => match ClientMessage::parse(&text) {
            Ok(request) => handle(state, caller, live, request).await,
            Err(error) => Some(ServerMessage::malformed(&error)),
        },
        Message::Binary(_) => Some(ServerMessage::Error {
            code: ErrorCode::UnsupportedFrame,
            message: "binary frames are not supported; send JSON text frames".into(),
            topic: None,
        }),
        // axum answers pings by itself; any frame from the client already counted as a sign of
        // life.
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => None,
    };
    if let Some(reply) = reply {
        live.reply(frame(&reply));
    }
}

async fn handle(
    state: &AppState,
    caller: &CurrentUser,
    live: &mut Connection,
    request: ClientMessage,
) -> Option<ServerMessage> {
    match request {
        ClientMessage::Ping { nonce } => Some(ServerMessage::Pong { nonce }),
        ClientMessage::Subscribe { topic, after } => {
            subscribe(state, caller, live, topic, after).await
        }
        ClientMessage::Unsubscribe { topic } => {
            live.unsubscribe(services::live::route(caller, topic));
            Some(ServerMessage::Unsubscribed { topic })
        }
    }
}

/// Checks access first, then reserves the snapshot's place in the outbox, registers the route,
/// and reads the snapshot into that place. Every update routed before the read is in the
/// snapshot, and every update routed after the reservation leaves after the snapshot (clients
/// skip what it already covers), so no update arrives ahead of an older snapshot — and no
/// update of a task the caller may not see is ever routed to it.
async fn subscribe(
    state: &AppState,
    caller: &CurrentUser,
    live: &mut Connection,
    topic: Topic,
    after: Option<i64>,
) -> Option<ServerMessage> {
    let route = services::live::route(caller, topic);
    let already = live.is_subscribed(route);
    if !already && live.route_count() >= MAX_SUBSCRIPTIONS {
        return Some(ServerMessage::Error {
            code: ErrorCode::TooManySubscriptions,
            message: format!("a connection may hold at most {MAX_SUBSCRIPTIONS} subscriptions"),
            topic: Some(topic),
        });
    }
    if let Err(error) = services::live::authorize(state, caller, topic, after).await {
        return Some(subscription_error(topic, &error));
    }
    let task = match topic {
        Topic::Task { id } => Some(id),
        Topic::Tasks | Topic::Notifications => None,
    };
    let place = live.reserve(task);
    live.subscribe(route);
    let answer = match services::live::snapshot(state, caller, topic, after).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            if !already {
                live.unsubscribe(route);
            }
            subscription_error(topic, &error)
        }
    };
    place.fill(Outgoing::Frame(frame(&answer)));
    None
}

fn subscription_error(topic: Topic, error: &AppError) -> ServerMessage {
    let (code, message) = match error {
        AppError::NotFound => (ErrorCode::NotFound, "no such task".to_owned()),
        AppError::BadRequest(reason) => (ErrorCode::MalformedMessage, reason.clone()),
        _ => (
            ErrorCode::Unavailable,
            "the server cannot answer now; try again".to_owned(),
        ),
    };
    ServerMessage::Error {
        code,
        message,
        topic: Some(topic),
    }
}

fn frame(message: &ServerMessage) -> Utf8Bytes {
    message.to_frame().into()
}

/// The close frame to send after a receive error: 1009 for an oversized frame, 1002 for a
/// protocol violation; nothing when the connection itself broke.
fn close_after_error(error: &axum::Error) -> Option<CloseFrame> {
    match error
        .source()
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
    {
        Some(tungstenite::Error::Capacity(_)) => {
            tracing::debug!(%error, "websocket frame too large");
            let reason =
                format!("message too large: the limit is {MAX_CLIENT_MESSAGE_BYTES} bytes");
            Some(close(close_code::SIZE, &reason))
        }
        Some(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_)) => {
            tracing::debug!(%error, "websocket protocol error");
            Some(close(close_code::PROTOCOL, "protocol error"))
        }
        _ => {
            tracing::debug!(%error, "websocket connection lost");
            None
        }
    }
}

pub(super) fn close(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
