//! The app's WebSocket `/ws`: one connection per browser tab, speaking the typed messages of
//! [`crate::protocol`].
//!
//! The server greets with `hello`, answers every text frame (malformed ones with an `error`
//! reply, keeping the connection), pings the client to find dead peers, closes with 1009 when a
//! frame is too large and with 1001 ("going away") when the server shuts down.

use std::{error::Error as _, time::Duration};

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code},
    },
    http::HeaderMap,
    response::Response,
};
use tokio::time::{Instant, interval_at};
use tokio_util::sync::CancellationToken;

use super::AppState;
use crate::{
    auth::{CurrentUser, middleware::is_same_origin},
    error::AppError,
    protocol::{
        ClientMessage, ErrorCode, MAX_CLIENT_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage,
    },
};

/// How often the server pings an idle client.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// A client that sends nothing (not even a pong) for this long is considered gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_connection(socket, caller, state.shutdown)))
}

/// What the connection does after a frame from the client.
enum Next {
    Reply(ServerMessage),
    Continue,
    Stop,
}

async fn serve_connection(mut socket: WebSocket, caller: CurrentUser, shutdown: CancellationToken) {
    tracing::debug!(user = %caller.user.username, "websocket connected");
    let hello = ServerMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        server_version: crate::VERSION.to_owned(),
    };
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    let mut pings = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = Instant::now();
    let closing = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Some(close(close_code::AWAY, "server is shutting down")),
            _ = pings.tick() => {
                if last_heard.elapsed() >= IDLE_TIMEOUT {
                    tracing::debug!("websocket peer stopped answering pings");
                    break None;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            frame = socket.recv() => {
                last_heard = Instant::now();
                let next = match frame {
                    None => Next::Stop,
                    Some(Ok(message)) => answer(message),
                    Some(Err(error)) => break close_after_error(&error),
                };
                match next {
                    Next::Reply(reply) if send(&mut socket, &reply).await.is_ok() => {}
                    Next::Continue => {}
                    Next::Reply(_) | Next::Stop => break None,
                }
            }
        }
    };
    if let Some(frame) = closing {
        // The peer may already be gone; there is nobody left to tell about a failure here.
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    tracing::debug!("websocket closed");
}

/// The reply to one frame from the client.
fn answer(message: Message) -> Next {
    match message {
        Message::Text(text) => Next::Reply(match ClientMessage::parse(&text) {
            Ok(message) => handle(message),
            Err(error) => ServerMessage::malformed(&error),
        }),
        Message::Binary(_) => Next::Reply(ServerMessage::Error {
            code: ErrorCode::UnsupportedFrame,
            message: "binary frames are not supported; send JSON text frames".into(),
        }),
        // axum answers pings by itself; any frame from the client already counted as a sign of life.
        Message::Ping(_) | Message::Pong(_) => Next::Continue,
        Message::Close(_) => Next::Stop,
    }
}

fn handle(message: ClientMessage) -> ServerMessage {
    match message {
        ClientMessage::Ping { nonce } => ServerMessage::Pong { nonce },
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), axum::Error> {
    socket.send(Message::Text(message.to_frame().into())).await
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
