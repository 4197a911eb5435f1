use leptos::prelude::*;

use crate::api::tasks::TaskStatus;

/// What people call each status.
pub fn status_label(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "Queued",
        TaskStatus::Running => "Running",
        TaskStatus::Completed => "Completed",
        TaskStatus::Failed => "Failed",
        TaskStatus::Cancelled => "Cancelled",
    }
}

/// A task's status as a coloured label; "Cancelling…" while a cancelled task still runs.
#[component]
pub fn StatusBadge(
    #[prop(into)] status: Signal<TaskStatus>,
    #[prop(into, optional)] cancelling: Signal<bool>,
) -> impl IntoView {
    let key = move || {
        if cancelling.get() && status.get() == TaskStatus::Running {
            "cancelling"
        } else {
            status.get().as_str()
        }
    };
    let text = move || {
        if key() == "cancelling" {
            "Cancelling…"
        } else {
            status_label(status.get())
        }
    };
    view! {
        <span class="status" data-status=key data-testid="status">
            {text}
        </span>
    }
}
