//! Tidings: long-running background work that people can watch.
//!
//! One crate, compiled twice: with `ssr` it is the server (binary `tidings`), with `hydrate` it
//! is the WASM that makes the server-rendered pages live.
//!
//! - Shared by both sides: [`app`] and [`ui`] (pages and components), [`api`] (server functions),
//!   [`protocol`] (WebSocket messages), [`error`].
//! - Server only (`ssr`): [`analysis`] (fetching, feeds, text extraction and scoring for the
//!   ingest jobs), [`config`], [`db`] (all SQL), [`auth`] (credentials, the current
//!   user, request middleware), [`engine`] (the task queue and runners), [`jobs`] (the kinds of
//!   work), [`live`] (routing task updates to WebSocket subscribers), [`services`] (the
//!   logic), [`server`] (HTTP routes, WebSocket, shutdown).

pub mod api;
pub mod app;
pub mod error;
pub mod protocol;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod analysis;
#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod engine;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod live;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod services;

/// The version of Tidings, shown in the UI and reported by the server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Entry point of the WASM bundle: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
