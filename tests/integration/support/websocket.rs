use std::{net::SocketAddr, time::Duration};

use futures::{SinkExt, StreamExt};
use reqwest::{StatusCode, header::HeaderName};
use serde_json::Value;
use tidings::{
    live::LiveMetrics,
    protocol::{ClientMessage, ServerMessage},
};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        Error, Message, client::IntoClientRequest, handshake::client::Request, http,
        protocol::CloseFrame,
    },
};

use super::TestServer;

/// How long a test waits for a frame before failing.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A WebSocket client for tests: send text or JSON, receive the next data frame.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects with extra request headers; a refused upgrade gives its HTTP status.
    pub async fn connect(url: &str, headers: &[(HeaderName, String)]) -> Result<Self, StatusCode> {
        match tokio_tungstenite::connect_async(upgrade_request(url, headers)).await {
            Ok((stream, _response)) => Ok(WsClient { stream }),
            Err(Error::Http(response)) => {
                Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
            }
            Err(error) => panic!("WebSocket connection failed: {error}"),
        }
    }

    /// Opens a WebSocket whose receive buffer is as small as the kernel allows, for a test that
    /// then stops reading it: the server's writes back up after a few kilobytes instead of after
    /// megabytes of loopback buffers.
    pub async fn connect_with_small_window(
        address: SocketAddr,
        path: &str,
        headers: &[(HeaderName, String)],
    ) -> Self {
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        socket
            .set_recv_buffer_size(4096)
            .expect("receive buffer size");
        let tcp = socket.connect(address).await.expect("TCP connection");
        let request = upgrade_request(&format!("ws://{address}{path}"), headers);
        let (stream, _response) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
                .await
                .expect("WebSocket upgrade");
        WsClient { stream }
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

    pub async fn send_message(&mut self, message: &ClientMessage) {
        self.send_text(message.to_frame()).await;
    }

    /// The next text frame, parsed as a server message.
    pub async fn receive_message(&mut self) -> ServerMessage {
        match self.next_data_frame().await {
            Message::Text(text) => ServerMessage::parse(&text)
                .unwrap_or_else(|error| panic!("not a server message ({error}): {text}")),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Receives messages up to and including the first that `last` accepts.
    pub async fn receive_until(
        &mut self,
        mut last: impl FnMut(&ServerMessage) -> bool,
    ) -> Vec<ServerMessage> {
        let mut received = Vec::new();
        loop {
            let message = self.receive_message().await;
            let done = last(&message);
            received.push(message);
            if done {
                return received;
            }
        }
    }

    /// Sends a ping and receives everything up to its pong: what the server had queued for
    /// this connection before it read the ping.
    pub async fn round_trip(&mut self, nonce: u64) -> Vec<ServerMessage> {
        self.send_message(&ClientMessage::Ping { nonce }).await;
        let mut received = self
            .receive_until(|message| *message == ServerMessage::Pong { nonce })
            .await;
        received.pop();
        received
    }

    /// Reads every frame until the connection ends; answers how many data frames came before
    /// the end and the close frame, if the server sent one.
    pub async fn drain_until_closed(&mut self, patience: Duration) -> (usize, Option<CloseFrame>) {
        let mut frames = 0;
        loop {
            let next = tokio::time::timeout(patience, self.stream.next())
                .await
                .expect("the connection ends within the timeout");
            match next {
                Some(Ok(Message::Close(frame))) => return (frames, frame),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(_)) => frames += 1,
                None | Some(Err(_)) => return (frames, None),
            }
        }
    }

    /// Closes the connection with a close handshake.
    pub async fn close(&mut self) {
        self.stream.close(None).await.expect("close frame sent");
        self.drain_until_closed(RECEIVE_TIMEOUT).await;
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

fn upgrade_request(url: &str, headers: &[(HeaderName, String)]) -> Request {
    let mut request = url.into_client_request().expect("valid WebSocket URL");
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    request
}

impl TestServer {
    /// Polls the live hub's counters until `done` holds for them; panics with `what` after
    /// [`METRICS_PATIENCE`].
    pub async fn wait_for_live(
        &self,
        what: &str,
        done: impl Fn(&LiveMetrics) -> bool,
    ) -> LiveMetrics {
        let deadline = tokio::time::Instant::now() + METRICS_PATIENCE;
        loop {
            let metrics = self.state().live.metrics();
            if done(&metrics) {
                return metrics;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the live hub never reached {what}: {metrics:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// How long [`TestServer::wait_for_live`] waits. A connection the server closes because its
/// client stopped reading may wait out the server's send timeout (10 s) first.
const METRICS_PATIENCE: Duration = Duration::from_secs(30);
