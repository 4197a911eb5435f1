use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};
use uuid::Uuid;

use crate::{
    api::{
        system::{SystemStatus, get_system_status},
        tasks::{
            StartTask, Task, TaskOverview, TaskStatus, TaskSummary, get_job_kinds,
            get_task_overview,
        },
    },
    ui::{
        components::{FormError, JobForms, ProgressBar, StatusBadge, status_label},
        format::date_time,
        live::{ConnectionState, LiveConnection},
        live_tasks::live_overview,
        session::error_message,
    },
};

/// The dashboard: counts by status, running tasks with live bars, the queue, the latest
/// finished tasks, a form to start a task; then the server and this tab's live connection.
#[component]
pub fn HomePage() -> impl IntoView {
    let status = Resource::new(|| (), |()| get_system_status());
    let overview = Resource::new(|| (), |()| get_task_overview());
    view! {
        <Title text="Dashboard"/>
        <section class="page-header">
            <h1>"Dashboard"</h1>
            <p class="lede">
                "Tidings runs long background work and shows it to you live: progress as it "
                "happens, and a notification when it is done."
            </p>
        </section>
        <Suspense fallback=|| view! { <p class="muted">"Loading tasks…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(overview) => view! { <LiveOverview initial=overview/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <StartTaskCard/>
        <JobForms/>
        <div class="cards">
            <section class="card" aria-labelledby="server-heading">
                <h2 id="server-heading">"Server"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || status.get().map(|result| match result {
                        Ok(status) => view! { <ServerFacts status/> }.into_any(),
                        Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                    })}
                </Suspense>
            </section>
            <LiveConnectionCard/>
        </div>
    }
}

#[component]
fn ServerFacts(status: SystemStatus) -> impl IntoView {
    let schema = status
        .schema_version
        .map_or_else(|| "none".to_owned(), |v| v.to_string());
    view! {
        <dl class="facts">
            <dt>"Version"</dt>
            <dd>{status.server_version}</dd>
            <dt>"Database"</dt>
            <dd data-testid="database">{status.database}</dd>
            <dt>"Schema"</dt>
            <dd>{schema}</dd>
            <dt>"Installed"</dt>
            <dd>{date_time(status.installed_at)}</dd>
            <dt>"Running since"</dt>
            <dd>{date_time(status.started_at)}</dd>
        </dl>
    }
}

/// Shows the tab's connection and measures its round trip on request. The button only works
/// once the WASM has taken over the page.
#[component]
fn LiveConnectionCard() -> impl IntoView {
    let live = LiveConnection::expect();
    let round_trip = move || {
        live.round_trip_ms()
            .map_or_else(|| "—".to_owned(), |ms| format!("{ms:.1} ms"))
    };
    view! {
        <section class="card" aria-labelledby="live-heading">
            <h2 id="live-heading">"Live connection"</h2>
            <dl class="facts">
                <dt>"State"</dt>
                <dd>{move || live.state().label()}</dd>
                <dt>"Round trip"</dt>
                <dd data-testid="round-trip">{round_trip}</dd>
            </dl>
            <button
                type="button"
                class="button"
                disabled=move || live.state() != ConnectionState::Connected
                on:click=move |_| {
                    live.ping();
                }
            >
                "Measure round trip"
            </button>
        </section>
    }
}

#[component]
fn LiveOverview(initial: TaskOverview) -> impl IntoView {
    let overview = live_overview(initial);
    let summary = Signal::derive(move || overview.with(|overview| overview.summary));
    let ids = move |pick: fn(&Task) -> bool| {
        overview.with(|overview| {
            overview
                .active
                .iter()
                .chain(&overview.recent)
                .filter(|task| pick(task))
                .map(|task| task.id)
                .collect::<Vec<_>>()
        })
    };
    let find = move |id| {
        overview.with(|overview| {
            overview
                .active
                .iter()
                .chain(&overview.recent)
                .find(|task| task.id == id)
                .cloned()
        })
    };
    // A row outlives its task in the list by a moment (until `For` removes it): it keeps
    // showing the last state it saw.
    let row = move |id| {
        let first = untrack(|| find(id));
        let task = Memo::new(move |previous: Option<&Option<Task>>| {
            find(id)
                .or_else(|| previous.cloned().flatten())
                .or_else(|| first.clone())
        });
        view! {
            {move || task.get().map(|_| view! {
                <TaskCard task=Signal::derive(move || task.get().expect("a listed task"))/>
            })}
        }
        .into_any()
    };
    let running = Signal::derive(move || ids(|task| task.status == TaskStatus::Running));
    let queued = Signal::derive(move || ids(|task| task.status == TaskStatus::Pending));
    let finished = Signal::derive(move || ids(|task| task.status.is_finished()));
    view! {
        <SummaryTiles summary/>
        {task_section("running", "Running", "Nothing is running.", running, row)}
        {task_section("queued", "Queued", "The queue is empty.", queued, row)}
        {task_section("recent", "Recently finished", "No task has finished yet.", finished, row)}
        <p><A href="/tasks">"All tasks →"</A></p>
    }
}

/// A card listing tasks, or saying `empty` when there are none. Type-erased: the dashboard's
/// three lists would otherwise make one type too deep for the compiler.
fn task_section(
    key: &'static str,
    title: &'static str,
    empty: &'static str,
    ids: Signal<Vec<Uuid>>,
    row: impl Fn(Uuid) -> AnyView + Clone + Send + Sync + 'static,
) -> AnyView {
    let heading = format!("{key}-heading");
    let labelled_by = heading.clone();
    view! {
        <section class="card" aria-labelledby=labelled_by>
            <h2 id=heading>{title}</h2>
            <ul class="task-cards" data-testid=key>
                <For each=move || ids.get() key=|id| *id children=row.clone()/>
            </ul>
            <Show when=move || ids.with(Vec::is_empty)>
                <p class="muted">{empty}</p>
            </Show>
        </section>
    }
    .into_any()
}

/// Counts by status, each a link to the list of those tasks.
#[component]
fn SummaryTiles(summary: Signal<TaskSummary>) -> impl IntoView {
    let tile = move |status: TaskStatus, count: fn(&TaskSummary) -> i64| {
        view! {
            <li class="tile" data-status=status.as_str()>
                <a href=format!("/tasks?status={}", status.as_str())>
                    <span class="tile__count" data-testid=format!("count-{}", status.as_str())>
                        {move || count(&summary.get())}
                    </span>
                    <span class="tile__label">{status_label(status)}</span>
                </a>
            </li>
        }
    };
    view! {
        <ul class="tiles" aria-label="Tasks by status">
            {tile(TaskStatus::Running, |summary| summary.running)}
            {tile(TaskStatus::Pending, |summary| summary.pending)}
            {tile(TaskStatus::Completed, |summary| summary.completed)}
            {tile(TaskStatus::Failed, |summary| summary.failed)}
            {tile(TaskStatus::Cancelled, |summary| summary.cancelled)}
        </ul>
    }
}

/// One task of the overview: its name and status, and its bar or its place in the queue.
#[component]
fn TaskCard(task: Signal<Task>) -> impl IntoView {
    let field = move |read: fn(&Task) -> String| move || task.with(read);
    let status = Signal::derive(move || task.with(|task| task.status));
    let cancelling = Signal::derive(move || task.with(|task| task.cancel_requested));
    view! {
        <li class="task-card" data-status=move || status.get().as_str()>
            <div class="task-card__head">
                <a class="task-card__name" href=field(|task| format!("/tasks/{}", task.id))>
                    {field(|task| task.name.clone())}
                </a>
                <span class="task-card__kind">{field(|task| task.kind.clone())}</span>
                <StatusBadge status cancelling/>
            </div>
            {move || match status.get() {
                TaskStatus::Pending => view! {
                    <p class="task-card__note">
                        {field(|task| task.queue_position.map_or_else(
                            || "Waiting to start".to_owned(),
                            |position| format!("Position {position} in the queue"),
                        ))}
                    </p>
                }.into_any(),
                TaskStatus::Running => view! { <ProgressBar task/> }.into_any(),
                _ => view! {
                    <p class="task-card__note">
                        {field(|task| match (&task.error, task.completed_at) {
                            (Some(error), _) => error.clone(),
                            (None, Some(at)) => format!("Ended {}", date_time(at)),
                            (None, None) => String::new(),
                        })}
                    </p>
                }.into_any(),
            }}
        </li>
    }
}

/// Starts a task of any kind this server runs; opens the new task's page.
#[component]
fn StartTaskCard() -> impl IntoView {
    let start = ServerAction::<StartTask>::new();
    let kinds = Resource::new(|| (), |()| get_job_kinds());
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(task)) = start.value().get() {
            navigate(&format!("/tasks/{}", task.id), Default::default());
        }
    });
    view! {
        <section class="card" aria-labelledby="start-heading">
            <h2 id="start-heading">"Start a task"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let kinds = kinds.await.unwrap_or_default();
                    if kinds.is_empty() {
                        return view! { <p class="muted">"This server has no job kinds to start."</p> }.into_any();
                    }
                    view! {
                        <ActionForm action=start attr:class="form form--inline">
                            <label>
                                "Kind"
                                <select name="kind" required>
                                    {kinds.into_iter().map(|kind| view! { <option value=kind.clone()>{kind.clone()}</option> }).collect_view()}
                                </select>
                            </label>
                            <label>
                                "Name"
                                <input name="name" type="text" maxlength="200" placeholder="Defaults to the kind"/>
                            </label>
                            <label class="form__wide">
                                "Input (JSON)"
                                <textarea name="input" rows="2" spellcheck="false" placeholder="{}"></textarea>
                            </label>
                            <button class="button" type="submit" disabled=move || start.pending().get()>"Start"</button>
                        </ActionForm>
                    }.into_any()
                })}
            </Suspense>
            <FormError message=Signal::derive(move || error_message(start.value().get()))/>
        </section>
    }
}
