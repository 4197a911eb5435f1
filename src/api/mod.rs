//! Server functions: the typed API of the UI. Compiled for both sides — in the browser each
//! function is a typed HTTP call, on the server it calls the service layer.

pub mod accounts;
pub mod ingest;
pub mod notifications;
pub mod system;
pub mod tasks;
