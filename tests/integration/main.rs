//! Integration tests: the real server on an ephemeral port, real HTTP and WebSocket clients,
//! real SQLite files and real PostgreSQL databases (one fresh database per test).
//!
//! PostgreSQL tests need `TIDINGS_TEST_POSTGRES_URL`, a URL of a role that may create databases
//! (`scripts/test.sh` starts a local server and sets it).

mod support;

mod accounts;
mod auto_ingest;
mod bulk_analysis;
mod bulk_save;
mod compat_ws;
mod database;
mod fetch;
mod health;
mod ingest_api;
mod keyword_check;
mod leptos_settings;
mod live;
mod notifications;
mod notifications_live;
mod pages;
mod process;
mod scheduler;
mod tasks;
mod tasks_api;
mod websocket;
