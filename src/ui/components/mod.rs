//! Small building blocks shared by pages.

mod connection_indicator;
mod form_error;
mod progress_bar;
mod status_badge;

pub use connection_indicator::ConnectionIndicator;
pub use form_error::FormError;
pub use progress_bar::{Clock, ProgressBar};
pub use status_badge::{StatusBadge, status_label};
