//! The test harness: temporary databases, a running server, and clients for it.

mod database;
mod server;
mod websocket;

pub use database::{Backend, TestDatabase};
pub use server::TestServer;
pub use websocket::WsClient;
