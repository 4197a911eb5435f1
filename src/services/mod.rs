//! The service layer: the logic of Tidings, once. Server functions, REST handlers and
//! WebSocket handlers parse their input, call a service and render its answer.

pub mod accounts;
pub mod articles;
pub mod ingest;
pub mod live;
pub mod notifications;
pub mod scheduler;
pub mod system;
pub mod tasks;
