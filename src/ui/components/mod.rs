//! Small building blocks shared by pages.

mod connection_indicator;

pub use connection_indicator::ConnectionIndicator;
