use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::{
    api::tasks::{Task, TaskStatus},
    ui::progress::{ProgressHistory, duration_text, grouped, rate_text},
};

/// The browser's clock in milliseconds, ticking once a second; `None` on the server (and so
/// during hydration), where no figure that depends on time is rendered.
#[derive(Clone, Copy)]
pub struct Clock(RwSignal<Option<f64>>);

impl Clock {
    /// Provides the page's clock; it starts ticking once the page is hydrated.
    pub fn provide() {
        let now = RwSignal::new(None);
        Effect::new(move |_| {
            #[cfg(feature = "hydrate")]
            {
                let tick = move || now.set(Some(js_sys::Date::now()));
                tick();
                if let Ok(handle) =
                    set_interval_with_handle(tick, std::time::Duration::from_secs(1))
                {
                    on_cleanup(move || handle.clear());
                }
            }
        });
        provide_context(Clock(now));
    }

    fn now(self) -> Option<f64> {
        self.0.get()
    }

    /// The browser's time, tracked (it ticks once a second); `None` on the server and during
    /// hydration, where text that depends on it shows something else.
    pub fn time(self) -> Option<DateTime<Utc>> {
        self.now()
            .and_then(|ms| DateTime::from_timestamp_millis(ms as i64))
    }

    fn now_untracked(self) -> Option<f64> {
        self.0.get_untracked().or_else(browser_now)
    }
}

fn browser_now() -> Option<f64> {
    #[cfg(feature = "hydrate")]
    return Some(js_sys::Date::now());
    #[cfg(not(feature = "hydrate"))]
    None
}

/// A task's progress: the bar (a `<progress>` with its value as text), percent, processed/total,
/// rate and time left (from the history this tab has seen), the stage and current item, and a
/// "stalled" badge when a running task has not moved for a while. Every line keeps its height
/// whether it has text or not, so updates never move the page.
#[component]
pub fn ProgressBar(#[prop(into)] task: Signal<Task>) -> impl IntoView {
    let clock = use_context::<Clock>();
    let history = StoredValue::new(ProgressHistory::default());
    let last_seen = StoredValue::new(None::<(i64, Option<String>, Option<String>)>);
    Effect::new(move |_| {
        let progress = task.with(|task| task.progress.clone());
        let Some(now) = clock.and_then(Clock::now_untracked) else {
            return;
        };
        let key = (
            progress.processed_items,
            progress.stage.clone(),
            progress.current_item.clone(),
        );
        let changed = last_seen.get_value().as_ref() != Some(&key);
        last_seen.set_value(Some(key));
        history.update_value(|history| history.record(now, progress.processed_items, changed));
    });

    let percent = move || task.with(|task| task.progress.progress.clamp(0.0, 100.0));
    let running = move || task.with(|task| task.status == TaskStatus::Running);
    let count = move || {
        task.with(|task| {
            let progress = &task.progress;
            match progress.total_items {
                Some(total) => {
                    format!("{} / {}", grouped(progress.processed_items), grouped(total))
                }
                None if progress.processed_items > 0 => {
                    format!("{} items", grouped(progress.processed_items))
                }
                None => String::new(),
            }
        })
    };
    let value_text = move || {
        let count = count();
        if count.is_empty() {
            format!("{:.0}%", percent())
        } else {
            format!("{:.0}%, {count}", percent())
        }
    };
    let rate = move || {
        clock.and_then(Clock::now)?;
        running()
            .then(|| history.with_value(ProgressHistory::rate_per_sec))
            .flatten()
            .map(rate_text)
    };
    let eta = move || {
        clock.and_then(Clock::now)?;
        let (processed, total) =
            task.with(|task| (task.progress.processed_items, task.progress.total_items));
        running()
            .then(|| history.with_value(|history| history.eta_secs(processed, total)))
            .flatten()
            .map(|secs| format!("{} left", duration_text(secs)))
    };
    let stalled = move || {
        let now = clock.and_then(Clock::now);
        running() && now.is_some_and(|now| history.with_value(|history| history.is_stalled(now)))
    };
    let stage_line = move || {
        task.with(|task| {
            let progress = &task.progress;
            let stage = progress.stage.as_deref().or(progress.message.as_deref());
            match (stage, progress.current_item.as_deref()) {
                (Some(stage), Some(item)) => format!("{stage} · {item}"),
                (Some(text), None) | (None, Some(text)) => text.to_owned(),
                (None, None) => String::new(),
            }
        })
    };
    let label = move || task.with(|task| format!("Progress of {}", task.name));
    view! {
        <div class="progress" data-status=move || task.with(|task| task.status.as_str())>
            // A native bar: drawn from its `value` attribute, as rendered on the server and
            // without script or inline styles (which the Content-Security-Policy refuses).
            <progress
                class="progress__bar"
                max="100"
                value=move || format!("{:.0}", percent())
                aria-label=label
                aria-valuetext=value_text
            ></progress>
            <div class="progress__meta">
                <span class="progress__percent" data-testid="percent">
                    {move || format!("{:.0}%", percent())}
                </span>
                <span class="progress__count">{count}</span>
                <span class="progress__rate">{rate}</span>
                <span class="progress__eta">{eta}</span>
                <span class="badge badge--stalled" hidden=move || !stalled()>"Stalled"</span>
            </div>
            <p class="progress__stage">{stage_line}</p>
        </div>
    }
}
