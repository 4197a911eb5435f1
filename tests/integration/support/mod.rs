//! The test harness: temporary databases, a running server, and clients for it.

mod actors;
mod database;
pub mod ingest;
pub mod notifications;
mod server;
pub mod tasks;
mod websocket;

pub use actors::{Actor, Actors, Expect, PASSWORD};
pub use database::{Backend, TestDatabase};
pub use server::{TestServer, session_cookie};
pub use websocket::WsClient;
