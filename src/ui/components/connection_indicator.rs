use leptos::prelude::*;

use crate::ui::live::LiveConnection;

/// The state of the tab's live connection, announced to screen readers when it changes.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let live = LiveConnection::expect();
    view! {
        <p class="connection" data-state=move || live.state().key() role="status" aria-live="polite">
            <span class="connection__dot" aria-hidden="true"></span>
            <span class="connection__label">{move || live.state().label()}</span>
        </p>
    }
}
