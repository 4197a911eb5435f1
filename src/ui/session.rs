//! The signed-in user as the UI knows it, and the helpers of forms that change it.
//!
//! Signing in, setting up and signing out end with a full page load, so that every part of
//! the page (the header, the live connection) starts again from the new session.

use leptos::prelude::*;

use crate::{
    api::accounts::{User, get_current_user},
    error::AppError,
};

/// The signed-in user of this page, loaded once per page load (and resolved on the server).
#[derive(Clone, Copy)]
pub struct Session(Resource<Result<Option<User>, AppError>>);

impl Session {
    pub fn provide() -> Self {
        let session = Session(Resource::new(|| (), |()| get_current_user()));
        provide_context(session);
        session
    }

    pub fn expect() -> Self {
        expect_context()
    }

    /// The signed-in user; `None` while loading, when signed out, or if the server failed.
    /// Read it inside `<Suspense>` or `<Transition>`.
    pub fn user(&self) -> Option<User> {
        self.0.get().and_then(Result::ok).flatten()
    }
}

/// The message of a failed server action, for showing under its form.
pub fn error_message<T>(outcome: Option<Result<T, AppError>>) -> Option<String> {
    match outcome {
        Some(Err(error)) => Some(error.to_string()),
        _ => None,
    }
}

/// Loads `path` as a new page (not a client-side navigation).
pub fn full_page_load(path: &str) {
    #[cfg(feature = "hydrate")]
    if web_sys::window().is_none_or(|window| window.location().assign(path).is_err()) {
        leptos::logging::warn!("could not navigate to {path}");
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}
