//! The app's WebSocket `/ws`, message by message.

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{Actors, Backend, TestServer, WsClient};
use tidings::protocol::{MAX_CLIENT_MESSAGE_BYTES, PROTOCOL_VERSION};

#[tokio::test]
async fn greets_then_answers_ping_with_pong() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let mut socket = open(&server, &actors).await;
    let hello = socket.receive_json().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["protocol_version"], PROTOCOL_VERSION);
    for nonce in [0_u64, 42, u64::MAX] {
        socket
            .send_json(json!({ "type": "ping", "nonce": nonce }))
            .await;
        assert_eq!(
            socket.receive_json().await,
            json!({ "type": "pong", "nonce": nonce })
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_connection_stays_open() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let mut socket = open(&server, &actors).await;
    socket.receive_json().await;
    let bad_frames = [
        "not json",
        "{",
        "[]",
        r#"{"type":"ping"}"#,
        r#"{"type":"ping","nonce":"seven"}"#,
        r#"{"type":"ping","nonce":-1}"#,
        r#"{"type":"subscribe_everything"}"#,
        r#"{"type":"ping","nonce":1,"admin":true}"#,
    ];
    for frame in bad_frames {
        socket.send_text(frame).await;
        let reply = socket.receive_json().await;
        assert_eq!(reply["type"], "error", "for {frame}");
        assert_eq!(reply["code"], "malformed_message", "for {frame}");
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    socket.send_binary(vec![0, 159, 146, 150]).await;
    let reply = socket.receive_json().await;
    assert_eq!(reply["code"], "unsupported_frame");
    socket
        .send_json(json!({ "type": "ping", "nonce": 5 }))
        .await;
    assert_eq!(socket.receive_json().await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009_and_others_are_unaffected() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let mut bystander = open(&server, &actors).await;
    bystander.receive_json().await;

    let mut socket = open(&server, &actors).await;
    socket.receive_json().await;
    let padding = "x".repeat(MAX_CLIENT_MESSAGE_BYTES);
    socket
        .send_text(format!(r#"{{"type":"ping","nonce":1,"pad":"{padding}"}}"#))
        .await;
    let close = socket
        .receive_close()
        .await
        .expect("a close frame with a reason");
    assert_eq!(close.code, CloseCode::Size);
    assert!(close.reason.contains("too large"), "{}", close.reason);

    // Just under the limit is still answered (with an error: the frame is not a valid ping).
    let mut socket = open(&server, &actors).await;
    socket.receive_json().await;
    socket
        .send_text(" ".repeat(MAX_CLIENT_MESSAGE_BYTES - 2) + "{}")
        .await;
    assert_eq!(socket.receive_json().await["code"], "malformed_message");

    bystander
        .send_json(json!({ "type": "ping", "nonce": 9 }))
        .await;
    assert_eq!(
        bystander.receive_json().await,
        json!({ "type": "pong", "nonce": 9 })
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let (server, actors) = TestServer::with_actors(Backend::Sqlite).await;
    let mut socket = open(&server, &actors).await;
    socket.receive_json().await;
    let stopping = tokio::spawn(server.stop());
    let close = socket.receive_close().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Away);
    stopping.await.unwrap();
}

async fn open(server: &TestServer, actors: &Actors) -> WsClient {
    actors
        .user_a
        .websocket(server, "/ws")
        .await
        .expect("signed-in users may connect")
}
