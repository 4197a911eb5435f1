use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::ui::{
    components::Clock,
    format::{date_time, time_ago},
};

/// When something happened, relative to now ("3 min ago") once the browser's clock ticks; the
/// exact time before that (on the server and during hydration) and on hover.
#[component]
pub fn TimeAgo(time: DateTime<Utc>) -> impl IntoView {
    let clock = use_context::<Clock>();
    let exact = date_time(time);
    let text = {
        let exact = exact.clone();
        move || {
            clock
                .and_then(Clock::time)
                .map_or_else(|| exact.clone(), |now| time_ago(time, now))
        }
    };
    view! { <time datetime=time.to_rfc3339() title=exact>{text}</time> }.into_any()
}
