//! Pages and components, rendered on the server and hydrated in the browser.

pub mod components;
pub mod form_check;
pub mod format;
pub mod layout;
pub mod live;
pub mod live_notifications;
pub mod live_tasks;
pub mod pages;
pub mod progress;
pub mod session;
