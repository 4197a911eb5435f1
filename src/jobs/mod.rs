//! The kinds of work Tidings runs as background tasks.

#[cfg(feature = "test-jobs")]
pub mod testing;

use crate::engine::JobRegistry;

/// Every job kind of this build. Adding a kind is its [`crate::engine::Job`] implementation and
/// one `register` line here.
pub fn registry() -> JobRegistry {
    let registry = JobRegistry::default();
    #[cfg(feature = "test-jobs")]
    let registry = testing::with_test_jobs(registry);
    registry
}
