use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::A,
    hooks::{use_navigate, use_params_map},
};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    api::{
        accounts::{Role, User},
        tasks::{
            CancelTask, RetryTask, Task, TaskEvent, TaskEventKind, TaskStatus, get_task,
            get_task_events,
        },
    },
    error::AppError,
    ui::{
        components::{FormError, ProgressBar, StatusBadge},
        format::date_time,
        live_tasks::LiveTask,
        session::{Session, error_message},
    },
};

/// One task, live: its bar, its timeline, its result or error, and cancel / retry.
#[component]
pub fn TaskPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|params| params.get("id").and_then(|id| id.parse::<Uuid>().ok()));
    let loaded = Resource::new(id, |id| async move {
        let id = id.ok_or(AppError::NotFound)?;
        let (task, events) = futures::join!(get_task(id), get_task_events(id, 0));
        Ok::<_, AppError>((task?, events?))
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded.await {
                    Ok((task, events)) => view! { <TaskView task events/> }.into_any(),
                    Err(AppError::NotFound) => view! { <MissingTask/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn MissingTask() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Task not found"/>
        <section class="page-header">
            <h1>"Task not found"</h1>
            <p class="lede">"There is no such task, or it is not yours to see."</p>
            <p><A href="/tasks">"All tasks"</A></p>
        </section>
    }
}

#[component]
fn TaskView(task: Task, events: Vec<TaskEvent>) -> impl IntoView {
    let live = LiveTask::follow(task, events);
    let task = live.task;
    let status = Signal::derive(move || task.with(|task| task.status));
    let cancelling = Signal::derive(move || task.with(|task| task.cancel_requested));
    let title = move || task.with(|task| task.name.clone());
    view! {
        <Title text=title/>
        <section class="page-header">
            <p class="breadcrumbs"><A href="/tasks">"Tasks"</A></p>
            <h1 class="task-title">
                <span>{title}</span>
                <StatusBadge status cancelling/>
            </h1>
            <Show when=move || live.gone.get()>
                <p class="form-error" role="alert">"This task was deleted."</p>
            </Show>
        </section>
        <section class="card" aria-labelledby="progress-heading">
            <h2 id="progress-heading">"Progress"</h2>
            <ProgressBar task/>
            <TaskFacts task/>
            <TaskActions task/>
        </section>
        <TaskOutcome task/>
        <section class="card" aria-labelledby="timeline-heading">
            <h2 id="timeline-heading">"Timeline"</h2>
            <ol class="timeline" data-testid="timeline">
                <For each=move || live.events.get() key=|event| event.seq let:event>
                    <TimelineEntry event/>
                </For>
            </ol>
        </section>
    }
}

#[component]
fn TaskFacts(task: RwSignal<Task>) -> impl IntoView {
    let text = move |read: fn(&Task) -> String| move || task.with(read);
    view! {
        <dl class="facts facts--columns">
            <dt>"Kind"</dt>
            <dd>{text(|task| task.kind.clone())}</dd>
            <dt>"Owner"</dt>
            <dd>{text(|task| task.owner.clone().unwrap_or_else(|| "system".to_owned()))}</dd>
            <dt>"Attempt"</dt>
            <dd>{text(|task| format!("{} of {}", task.attempt.max(1), task.max_attempts))}</dd>
            <dt>"Queue"</dt>
            <dd>{text(|task| task.queue_position.map_or_else(|| "—".to_owned(), |position| format!("position {position}")))}</dd>
            <dt>"Created"</dt>
            <dd>{text(|task| date_time(task.created_at))}</dd>
            <dt>"Started"</dt>
            <dd>{text(|task| optional_time(task.started_at))}</dd>
            <dt>"Ended"</dt>
            <dd>{text(|task| optional_time(task.completed_at))}</dd>
        </dl>
    }
}

fn optional_time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), date_time)
}

/// Cancel while the task can still be stopped; retry once it has ended. Both are plain forms,
/// so they work before the WASM has loaded.
#[component]
fn TaskActions(task: RwSignal<Task>) -> impl IntoView {
    let cancel = ServerAction::<CancelTask>::new();
    let retry = ServerAction::<RetryTask>::new();
    Effect::new(move |_| {
        if let Some(Ok(cancelled)) = cancel.value().get() {
            task.update(|task| {
                if cancelled.last_event_seq >= task.last_event_seq {
                    *task = cancelled;
                }
            });
        }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(retried)) = retry.value().get() {
            navigate(&format!("/tasks/{}", retried.id), Default::default());
        }
    });
    let id = move || task.with(|task| task.id.to_string());
    let status = move || task.with(|task| task.status);
    let error = Signal::derive(move || {
        error_message(cancel.value().get()).or_else(|| error_message(retry.value().get()))
    });
    let session = Session::expect();
    let may_act = move || {
        session
            .user()
            .is_some_and(|user| task.with(|task| may_act_on(&user, task)))
    };
    view! {
        <Show when=may_act>
            <div class="actions">
                <Show when=move || !status().is_finished()>
                    <ActionForm action=cancel>
                        <input type="hidden" name="id" value=id/>
                        <button
                            class="button button--danger"
                            type="submit"
                            disabled=move || cancel.pending().get() || task.with(|task| task.cancel_requested)
                        >
                            {move || if task.with(|task| task.cancel_requested) { "Cancelling…" } else { "Cancel" }}
                        </button>
                    </ActionForm>
                </Show>
                <Show when=move || status().is_finished()>
                    <ActionForm action=retry>
                        <input type="hidden" name="id" value=id/>
                        <button class="button" type="submit" disabled=move || retry.pending().get()>"Retry"</button>
                    </ActionForm>
                </Show>
            </div>
        </Show>
        <FormError message=error/>
    }
}

/// Whether `user` may cancel or retry `task`: the server's rule — its owner or an
/// administrator; others may only watch the shared ingest runs.
fn may_act_on(user: &User, task: &Task) -> bool {
    user.role == Role::Admin || task.owner.as_deref() == Some(user.username.as_str())
}

/// The result of a completed task, or the error of a failed one.
#[component]
fn TaskOutcome(task: RwSignal<Task>) -> impl IntoView {
    let error = move || task.with(|task| task.error.clone());
    let result = move || {
        task.with(|task| {
            (task.status == TaskStatus::Completed)
                .then(|| task.result.as_ref().map(pretty_json))
                .flatten()
        })
    };
    view! {
        <Show when=move || error().is_some()>
            <section class="card card--error" aria-labelledby="error-heading">
                <h2 id="error-heading">"Error"</h2>
                <p class="error-text" data-testid="error">{error}</p>
            </section>
        </Show>
        <Show when=move || result().is_some()>
            <section class="card" aria-labelledby="result-heading">
                <h2 id="result-heading">"Result"</h2>
                <pre class="result" data-testid="result">{result}</pre>
            </section>
        </Show>
    }
}

fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[component]
fn TimelineEntry(event: TaskEvent) -> impl IntoView {
    let (label, text) = describe(&event);
    view! {
        <li class="timeline__entry" data-kind=event.kind.as_str()>
            <time datetime=event.created_at.to_rfc3339()>{date_time(event.created_at)}</time>
            <span class="timeline__label">{label}</span>
            <span class="timeline__text">{text}</span>
        </li>
    }
}

/// A log entry in words: its label and the text of its data.
fn describe(event: &TaskEvent) -> (&'static str, String) {
    let field = |name: &str| {
        event
            .data
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match event.kind {
        TaskEventKind::Status => {
            let status = field("status").unwrap_or_default();
            let text = match field("error") {
                Some(error) => format!("{status}: {error}"),
                None => status,
            };
            ("Status", text)
        }
        TaskEventKind::Stage => {
            let stage = field("stage").unwrap_or_default();
            let text = match field("message") {
                Some(message) if !message.is_empty() => format!("{stage} — {message}"),
                _ => stage,
            };
            ("Stage", text)
        }
        TaskEventKind::Detail => ("Detail", compact_json(&event.data)),
        TaskEventKind::Error => (
            "Item error",
            field("error").unwrap_or_else(|| compact_json(&event.data)),
        ),
        TaskEventKind::CancelRequested => ("Cancel", "cancellation requested".to_owned()),
        TaskEventKind::Retry => (
            "Retry",
            field("error").map_or_else(
                || "another attempt is scheduled".to_owned(),
                |error| format!("another attempt is scheduled after: {error}"),
            ),
        ),
    }
}

fn compact_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
