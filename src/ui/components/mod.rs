//! Small building blocks shared by pages.

mod connection_indicator;
mod form_error;

pub use connection_indicator::ConnectionIndicator;
pub use form_error::FormError;
