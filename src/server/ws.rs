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

use std::{error::Error as _, time::Duration};

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
/// Bytes read from the socket at a time. Client frames are small requests; the default of
/// 128 KiB per connection would dominate the memory of an idle connection.
const READ_BUFFER_BYTES: usize = 4 * 1024;
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
    let mut live = state.live.connect(Dialect::Native);
    let outbox = live.outbox().clone();
    outbox.reply(frame(&ServerMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        server_version: crate::VERSION.to_owned(),
    }));
    let mut pings = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = Instant::now();
    let mut batch = Vec::new();
    let closing = loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break Some(close(close_code::AWAY, "server is shutting down")),
            () = outbox.closing() => {
                let reason = outbox.close_reason().unwrap_or("closing");
                break Some(close(close_code::AGAIN, reason));
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= IDLE_TIMEOUT {
                    tracing::debug!("websocket peer stopped answering pings");
                    break None;
                }
                let mut ping = vec![Message::Ping(Default::default())];
                if send_all(&mut socket, &mut ping, &outbox).await.is_err() {
                    break None;
                }
            }
            ready = outbox.next_batch(&mut batch) => {
                if ready && send_all(&mut socket, &mut batch, &outbox).await.is_err() {
                    break None;
                }
            }
            frame = socket.recv() => {
                last_heard = Instant::now();
                match frame {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(message)) => answer(&state, &caller, &mut live, message).await,
                    Some(Err(error)) => break close_after_error(&error),
                }
            }
        }
    };
    if let Some(frame) = closing {
        // The peer may already be gone; there is nobody left to tell about a failure here.
        let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
    tracing::debug!("websocket closed");
}

/// Writes every queued item, then flushes once. Fails when the socket broke, when the client
/// does not take the frames within [`SEND_TIMEOUT`], or when the connection must close.
async fn send_all<T: Into<Message>>(
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
        live.outbox().reply(frame(&reply));
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

/// Registers the route first, then reads the snapshot, so that no update falls between them.
/// The snapshot is queued behind the updates already routed; clients skip what it covers.
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
    live.subscribe(route);
    match services::live::snapshot(state, caller, topic, after).await {
        Ok(snapshot) => {
            let task = match topic {
                Topic::Task { id } => Some(id),
                Topic::Tasks => None,
            };
            live.outbox().push(Outgoing::Frame(frame(&snapshot)), task);
            None
        }
        Err(error) => {
            if !already {
                live.unsubscribe(route);
            }
            Some(subscription_error(topic, &error))
        }
    }
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

fn close(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}
