use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{StatusCode, header::HeaderName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Error, Message, client::IntoClientRequest, http, protocol::CloseFrame},
};

/// How long a test waits for a frame before failing.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A WebSocket client for tests: send text or JSON, receive the next data frame.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects with extra request headers; a refused upgrade gives its HTTP status.
    pub async fn connect(url: &str, headers: &[(HeaderName, String)]) -> Result<Self, StatusCode> {
        let mut request = url.into_client_request().expect("valid WebSocket URL");
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _response)) => Ok(WsClient { stream }),
            Err(Error::Http(response)) => {
                Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
            }
            Err(error) => panic!("WebSocket connection failed: {error}"),
        }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream
            .send(Message::text(text.into()))
            .await
            .expect("frame sent");
    }

    pub async fn send_json(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::binary(bytes))
            .await
            .expect("frame sent");
    }

    /// The next text frame, parsed as JSON (pings and pongs are skipped).
    pub async fn receive_json(&mut self) -> Value {
        match self.next_data_frame().await {
            Message::Text(text) => serde_json::from_str(&text).expect("server frames are JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Waits for the server to close the connection and returns its close frame.
    pub async fn receive_close(&mut self) -> Option<CloseFrame> {
        match self.next_data_frame().await {
            Message::Close(frame) => frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    async fn next_data_frame(&mut self) -> Message {
        loop {
            let frame = tokio::time::timeout(RECEIVE_TIMEOUT, self.stream.next())
                .await
                .expect("a frame within the timeout")
                .expect("connection still open")
                .expect("valid frame");
            if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
                return frame;
            }
        }
    }
}
