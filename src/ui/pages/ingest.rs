//! `/ingest`: auto-ingest at a glance and in detail — counts, the run in progress (live), the
//! settings, the last runs, the feeds it reads, the topics articles are judged against, the
//! keyword groups and their alerts. Everybody may look, run it and read alerts; changing
//! settings, sources, topics and groups is for administrators, whose forms only they see.

mod alerts;
mod catalog;

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    api::{
        accounts::Role,
        ingest::{
            AutoIngestConfig, DeleteKeywordGroup, DeleteSource, DeleteTopic, IngestStats,
            IngestStatus, MarkKeywordAlertsRead, RunAutoIngest, RunKeywordCheck,
            SaveAutoIngestConfig, SetSourceEnabled, get_ingest_stats, get_ingest_status,
            list_keyword_alerts, list_keyword_groups, list_sources, list_topics,
        },
        tasks::{Task, TaskEventKind, TaskFilter, TaskStatus, list_tasks},
    },
    error::AppError,
    protocol::{ServerMessage, Topic},
    ui::{
        components::{FormError, ProgressBar, StatusBadge, TimeAgo},
        form_check::CheckedForm,
        live::LiveConnection,
        live_tasks::LiveTask,
        session::{Session, error_message},
    },
};

use alerts::AlertsCard;
use catalog::{GroupsCard, SourcesCard, TopicsCard};

/// The kind of the auto-ingest job.
const AUTO_INGEST_KIND: &str = "auto_ingest";
/// How many of the last runs the page lists.
const LAST_RUNS: u32 = 5;

/// Every action of the page. A change reloads what it affects; `finished` counts the tasks
/// followed here (runs, keyword checks) that ended, which changes nearly everything.
#[derive(Clone, Copy)]
pub(super) struct IngestActions {
    run: ServerAction<RunAutoIngest>,
    save_config: ServerAction<SaveAutoIngestConfig>,
    delete_topic: ServerAction<DeleteTopic>,
    enable_source: ServerAction<SetSourceEnabled>,
    delete_source: ServerAction<DeleteSource>,
    delete_group: ServerAction<DeleteKeywordGroup>,
    check: ServerAction<RunKeywordCheck>,
    mark_read: ServerAction<MarkKeywordAlertsRead>,
    /// Saves by the forms of topics, sources and groups (each form has its own action, so that
    /// an error shows under the form that caused it).
    topics_saved: RwSignal<u32>,
    sources_saved: RwSignal<u32>,
    groups_saved: RwSignal<u32>,
    finished: RwSignal<u32>,
    /// Whether a keyword check or "mark read" is being sent (made once: a memo made in a
    /// list would belong to that list).
    checking: Memo<bool>,
    marking: Memo<bool>,
    /// A task started elsewhere (the scheduler's run, say) while no run was shown.
    new_task: RwSignal<u32>,
}

impl IngestActions {
    fn new() -> Self {
        let check = ServerAction::<RunKeywordCheck>::new();
        let mark_read = ServerAction::<MarkKeywordAlertsRead>::new();
        IngestActions {
            run: ServerAction::new(),
            save_config: ServerAction::new(),
            delete_topic: ServerAction::new(),
            enable_source: ServerAction::new(),
            delete_source: ServerAction::new(),
            delete_group: ServerAction::new(),
            check,
            mark_read,
            checking: check.pending(),
            marking: mark_read.pending(),
            topics_saved: RwSignal::new(0),
            sources_saved: RwSignal::new(0),
            groups_saved: RwSignal::new(0),
            finished: RwSignal::new(0),
            new_task: RwSignal::new(0),
        }
    }

    fn topics_changed(self) -> (u32, usize) {
        (self.topics_saved.get(), self.delete_topic.version().get())
    }

    fn sources_changed(self) -> (u32, usize, usize) {
        (
            self.sources_saved.get(),
            self.enable_source.version().get(),
            self.delete_source.version().get(),
        )
    }

    fn groups_changed(self) -> (u32, usize) {
        (self.groups_saved.get(), self.delete_group.version().get())
    }

    fn alerts_changed(self) -> (usize, u32) {
        (self.mark_read.version().get(), self.finished.get())
    }
}

/// Counts the completed submissions of `action` in `counter`, for the lists that show what it
/// changed to load again.
pub(super) fn count_done<S>(action: ServerAction<S>, counter: RwSignal<u32>)
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    Effect::new(move |previous: Option<usize>| {
        let version = action.version().get();
        if previous.is_some_and(|previous| previous != version) {
            counter.update(|count| *count += 1);
        }
        version
    });
}

fn is_admin() -> bool {
    Session::expect()
        .user()
        .is_some_and(|user| user.role == Role::Admin)
}

#[component]
pub fn IngestPage() -> impl IntoView {
    let actions = IngestActions::new();
    let status = Resource::new(
        move || {
            (
                actions.run.version().get(),
                actions.save_config.version().get(),
                actions.sources_changed(),
                actions.finished.get(),
                actions.new_task.get(),
            )
        },
        |_| get_ingest_status(),
    );
    let stats = Resource::new(
        move || {
            (
                actions.topics_changed(),
                actions.sources_changed(),
                actions.groups_changed(),
                actions.alerts_changed(),
            )
        },
        |_| get_ingest_stats(),
    );
    let runs = Resource::new(
        move || {
            (
                actions.run.version().get(),
                actions.finished.get(),
                actions.new_task.get(),
            )
        },
        |_| {
            list_tasks(TaskFilter {
                kind: Some(AUTO_INGEST_KIND.to_owned()),
                limit: Some(LAST_RUNS),
                ..TaskFilter::default()
            })
        },
    );
    let topics = Resource::new(move || actions.topics_changed(), |_| list_topics());
    let sources = Resource::new(
        move || {
            (
                actions.sources_changed(),
                actions.topics_changed(),
                actions.finished.get(),
            )
        },
        |_| list_sources(),
    );
    let groups = Resource::new(
        move || {
            (
                actions.groups_changed(),
                actions.alerts_changed(),
                actions.delete_topic.version().get(),
            )
        },
        |_| list_keyword_groups(),
    );
    let alerts = Resource::new(
        move || (actions.alerts_changed(), actions.groups_changed()),
        |_| list_keyword_alerts(true),
    );
    // What the page was loaded with: it seeds the forms and the run shown, which then live
    // on their own. (What a `Transition` shows again when its resource reloads must not hold
    // state of its own: the old content is disposed of while it is still on screen.)
    let loaded = Resource::new(|| (), |()| get_ingest_status());
    let run_active = RwSignal::new(false);
    notice_new_tasks(actions, run_active);
    let run = actions.run;
    let running = run.pending();

    view! {
        <Title text="Ingest"/>
        <section class="page-header">
            <h1>"Ingest"</h1>
            <p class="lede">
                "Auto-ingest reads your feeds, judges every new article against its topic and keeps "
                "the relevant ones; keyword groups raise alerts for the articles that mention them."
            </p>
        </section>
        <Loaded resource=stats show=move |stats| view! { <StatsTiles stats/> }/>
        <div class="cards cards--ingest">
            <section class="card" aria-labelledby="run-heading">
                <h2 id="run-heading">"Auto-ingest"</h2>
                <Loaded resource=status show=move |status| view! { <RunFacts status/> }/>
                <ActionForm action=run>
                    <button class="button" type="submit" disabled=running>"Run now"</button>
                </ActionForm>
                <FormError message=Signal::derive(move || match run.value().get() {
                    // "Already in progress" no longer holds once that run has ended.
                    Some(Err(AppError::Conflict(_))) if !run_active.get() => None,
                    outcome => error_message(outcome),
                })/>
                <Suspense>
                    {move || Suspend::new(async move {
                        let seed = loaded.await.ok().and_then(|status| status.running);
                        view! { <RunArea seed status actions run_active/> }.into_any()
                    })}
                </Suspense>
            </section>
            <section class="card" aria-labelledby="settings-heading">
                <h2 id="settings-heading">"Settings"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match loaded.await {
                            Ok(status) if is_admin() => view! {
                                <SettingsForm config=status.config action=actions.save_config/>
                            }.into_any(),
                            Ok(status) => view! { <SettingsFacts config=status.config/> }.into_any(),
                            Err(error) => error_view(error.to_string()),
                        }
                    })}
                </Suspense>
            </section>
        </div>
        <section class="card" aria-labelledby="runs-heading">
            <h2 id="runs-heading">"Last runs"</h2>
            <Loaded resource=runs show=move |page| view! { <LastRuns runs=page.tasks/> }/>
        </section>
        <SourcesCard sources topics actions/>
        <div class="cards cards--ingest">
            <TopicsCard topics actions/>
            <GroupsCard groups topics actions/>
        </div>
        <AlertsCard alerts actions/>
    }
    .into_any()
}

fn error_view(message: String) -> AnyView {
    view! { <p class="form-error" role="alert">{message}</p> }.into_any()
}

/// What `resource` loads, drawn by `show`: "Loading…" at first, the previous view while it
/// loads again, and the error if it fails.
#[component]
pub(super) fn Loaded<T, V, F>(resource: Resource<Result<T, AppError>>, show: F) -> impl IntoView
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: IntoView + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
{
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let show = show.clone();
                Suspend::new(async move {
                    match resource.await {
                        Ok(loaded) => show(loaded).into_any(),
                        Err(error) => error_view(error.to_string()),
                    }
                })
            }}
        </Transition>
    }
}

/// A run may start without this page (the scheduler, the dashboard, another tab): while no
/// run is shown, a task that starts reloads the status, which lists it when it is one.
fn notice_new_tasks(actions: IngestActions, run_active: RwSignal<bool>) {
    let listener = Callback::new(move |message| {
        if let ServerMessage::TaskUpdate { update } = message {
            let new = update
                .event
                .as_ref()
                .is_some_and(|event| event.kind == TaskEventKind::Status && event.seq == 1);
            if new && !run_active.get_untracked() {
                actions.new_task.update(|count| *count += 1);
            }
        }
    });
    LiveConnection::expect().subscribe(Topic::Tasks, None, listener);
}

/// Counts of what ingestion stored; each links to those articles.
#[component]
fn StatsTiles(stats: IngestStats) -> impl IntoView {
    let tile = |label: &'static str,
                count: i64,
                href: &'static str,
                tone: &'static str,
                key: &'static str| {
        view! {
            <li class="tile" data-tone=tone>
                <a href=href>
                    <span class="tile__count" data-testid=format!("stat-{key}")>{count}</span>
                    <span class="tile__label">{label}</span>
                </a>
            </li>
        }
    };
    let sources = format!("{} of {} enabled", stats.enabled_sources, stats.sources);
    view! {
        <ul class="tiles" aria-label="Ingested articles">
            {tile("Articles", stats.articles, "/articles", "accent", "articles")}
            {tile("Approved", stats.approved, "/articles?status=approved", "ok", "approved")}
            {tile("Off topic", stats.filtered_relevance, "/articles?status=filtered_relevance", "warn", "filtered-relevance")}
            {tile("Low quality", stats.filtered_quality, "/articles?status=filtered_quality", "warn", "filtered-quality")}
            {tile("Errors", stats.errors, "/articles?status=error", "danger", "errors")}
            {tile("Unread alerts", stats.unread_alerts, "#alerts-heading", "accent", "unread-alerts")}
        </ul>
        <p class="ingest-summary muted">
            "Sources: " {sources} " · Topics: " {stats.topics} " · Keyword groups: " {stats.keyword_groups}
            {stats.last_ingested_at.map(|at| view! { " · Last article stored " <TimeAgo time=at/> })}
        </p>
    }
    .into_any()
}

/// "every 30 min", "every 2 h", "every 45 s".
fn interval_text(secs: u64) -> String {
    match secs {
        0..60 => format!("every {secs} s"),
        60..3600 if secs.is_multiple_of(60) => format!("every {} min", secs / 60),
        60..3600 => format!("every {} min {} s", secs / 60, secs % 60),
        _ if secs.is_multiple_of(3600) => format!("every {} h", secs / 3600),
        _ => format!("every {} min", secs / 60),
    }
}

fn schedule_text(status: &IngestStatus) -> String {
    match (status.enabled, status.schedule_interval_secs) {
        (true, Some(secs)) => format!("On, {}", interval_text(secs)),
        (true, None) => "On, but this server has no schedule".to_owned(),
        (false, _) => "Off: runs only when started".to_owned(),
    }
}

/// When auto-ingest runs and what it reads.
#[component]
fn RunFacts(status: IngestStatus) -> impl IntoView {
    let schedule = schedule_text(&status);
    let sources = match status.pending_sources {
        0 => "No enabled source".to_owned(),
        1 => "1 enabled source".to_owned(),
        count => format!("{count} enabled sources"),
    };
    view! {
        <dl class="facts">
            <dt>"Scheduled runs"</dt>
            <dd data-testid="schedule">{schedule}</dd>
            <dt>"Reads"</dt>
            <dd>{sources}</dd>
        </dl>
    }
    .into_any()
}

/// The run in progress, or the last one this page saw: the one the page was loaded with,
/// then the one "Run now" started, or one the status lists as running.
#[component]
fn RunArea(
    seed: Option<Task>,
    status: Resource<Result<IngestStatus, AppError>>,
    actions: IngestActions,
    run_active: RwSignal<bool>,
) -> impl IntoView {
    let shown = RwSignal::new(seed);
    let adopt = move |task: Task| {
        if shown.with_untracked(|shown| shown.as_ref().map(|shown| shown.id)) != Some(task.id) {
            shown.set(Some(task));
        }
    };
    Effect::new(move |_| {
        if let Some(Ok(task)) = actions.run.value().get() {
            adopt(task);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(status)) = status.get()
            && let Some(task) = status.running
        {
            adopt(task);
        }
    });
    let shown_id = Memo::new(move |_| shown.with(|shown| shown.as_ref().map(|task| task.id)));
    let finished = actions.finished;
    view! {
        {move || match shown_id.get().and_then(|_| shown.get_untracked()) {
            Some(task) => view! { <RunProgress task finished run_active/> }.into_any(),
            None => view! { <p class="run__none muted">"No run in progress."</p> }.into_any(),
        }}
    }
    .into_any()
}

/// The counters of an auto-ingest run's detail.
#[derive(Clone, Debug, Default, PartialEq)]
struct RunCounts {
    batch_completed: i64,
    total_batches: i64,
    processed: i64,
    approved: i64,
    filtered_relevance: i64,
    filtered_quality: i64,
    errors: i64,
}

impl RunCounts {
    /// Reads `{batch_completed, total_batches, results: {processed, approved, …}}`; the
    /// counters may stand beside the batch numbers too.
    fn from_detail(detail: &Value) -> Option<Self> {
        let results = detail.get("results").filter(|results| results.is_object());
        let count = |name: &str| {
            results
                .and_then(|results| results.get(name))
                .or_else(|| detail.get(name))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        detail.is_object().then(|| RunCounts {
            batch_completed: count("batch_completed"),
            total_batches: count("total_batches"),
            processed: count("processed"),
            approved: count("approved"),
            filtered_relevance: count("filtered_relevance"),
            filtered_quality: count("filtered_quality"),
            errors: count("errors"),
        })
    }

    /// "3 approved · 1 off topic · 0 low quality · 0 errors".
    fn outcome_text(&self) -> String {
        format!(
            "{} approved · {} off topic · {} low quality · {} errors",
            self.approved, self.filtered_relevance, self.filtered_quality, self.errors
        )
    }
}

/// A run, live: its bar and stage, and the counts of its latest detail.
#[component]
fn RunProgress(task: Task, finished: RwSignal<u32>, run_active: RwSignal<bool>) -> impl IntoView {
    let ended_already = task.status.is_finished();
    let initial_detail = task.detail.clone();
    let live = LiveTask::follow(task, Vec::new());
    let task = live.task;
    // Tell the page once the run ends: what it shows changed.
    Effect::new(move |ended_before: Option<bool>| {
        let ended = task.with(|task| task.status.is_finished());
        if ended_before != Some(ended) {
            run_active.set(!ended);
        }
        if ended && ended_before == Some(false) && !ended_already {
            finished.update(|count| *count += 1);
        }
        ended
    });
    let counts = Memo::new(move |_| {
        let latest = live.events.with(|events| {
            events
                .iter()
                .rev()
                .find(|event| event.kind == TaskEventKind::Detail)
                .map(|event| event.data.clone())
        });
        latest
            .or_else(|| initial_detail.clone())
            .as_ref()
            .and_then(RunCounts::from_detail)
    });
    let status = Signal::derive(move || task.with(|task| task.status));
    let cancelling = Signal::derive(move || task.with(|task| task.cancel_requested));
    let href = move || task.with(|task| format!("/tasks/{}", task.id));
    let name = move || task.with(|task| task.name.clone());
    let batches = move || {
        counts.with(|counts| {
            counts
                .as_ref()
                .filter(|counts| counts.total_batches > 0)
                .map(|counts| {
                    format!(
                        "Batch {} of {}",
                        counts.batch_completed, counts.total_batches
                    )
                })
        })
    };
    let outcome = move || counts.with(|counts| counts.as_ref().map(RunCounts::outcome_text));
    view! {
        <div class="run" data-testid="run">
            <div class="run__head">
                <a class="run__name" href=href>{name}</a>
                <StatusBadge status cancelling/>
            </div>
            <ProgressBar task/>
            <p class="run__counts" data-testid="run-counts">
                <span>{batches}</span>
                <span>{outcome}</span>
            </p>
            <Show when=move || status.get() == TaskStatus::Failed>
                <p class="form-error">{move || task.with(|task| task.error.clone())}</p>
            </Show>
        </div>
    }
    .into_any()
}

/// The settings, as administrators change them. Checked in the browser before they are sent.
#[component]
fn SettingsForm(
    config: AutoIngestConfig,
    action: ServerAction<SaveAutoIngestConfig>,
) -> impl IntoView {
    let form = CheckedForm::new(move || error_message(action.value().get()));
    let saved = move || matches!(action.value().get(), Some(Ok(_)));
    let pending = action.pending();
    let on_off = move |name: &'static str, label: &'static str, on: bool, field: &'static str| {
        view! {
            <label>
                {label}
                <select name=name aria-invalid=form.marks(field)>
                    <option value="true" selected=on>"On"</option>
                    <option value="false" selected=!on>"Off"</option>
                </select>
            </label>
        }
    };
    view! {
        <ActionForm action attr:class="settings-form">
            {on_off("config[enabled]", "Scheduled runs", config.enabled, "enabled")}
            {on_off("config[quality_control_enabled]", "Quality control", config.quality_control_enabled, "quality_control_enabled")}
            <label>
                <span>"Relevance threshold " <small class="muted">"(0–1)"</small></span>
                <input name="config[min_relevance_threshold]" type="number" min="0" max="1" step="0.05" required
                    value=config.min_relevance_threshold.to_string() aria-invalid=form.marks("min_relevance_threshold")/>
            </label>
            <label>
                <span>"Batch size " <small class="muted">"(1–100)"</small></span>
                <input name="config[batch_size]" type="number" min="1" max="100" step="1" required
                    value=config.batch_size.to_string() aria-invalid=form.marks("batch_size")/>
            </label>
            <label>
                <span>"Batches at once " <small class="muted">"(1–16)"</small></span>
                <input name="config[max_concurrent_batches]" type="number" min="1" max="16" step="1" required
                    value=config.max_concurrent_batches.to_string() aria-invalid=form.marks("max_concurrent_batches")/>
            </label>
            <div class="settings-form__foot">
                <FormError message=form.error()/>
                <Show when=saved>
                    <p class="form-success" role="status">"Settings saved."</p>
                </Show>
                <button class="button" type="submit" disabled=pending
                    on:click=form.on_submit_click(|args: &SaveAutoIngestConfig| args.config.validate())>
                    "Save settings"
                </button>
            </div>
        </ActionForm>
    }
    .into_any()
}

/// The settings, for those who may not change them.
#[component]
fn SettingsFacts(config: AutoIngestConfig) -> impl IntoView {
    let on_off = |on: bool| if on { "On" } else { "Off" };
    view! {
        <dl class="facts">
            <dt>"Scheduled runs"</dt>
            <dd>{on_off(config.enabled)}</dd>
            <dt>"Quality control"</dt>
            <dd>{on_off(config.quality_control_enabled)}</dd>
            <dt>"Relevance threshold"</dt>
            <dd>{format!("{:.2}", config.min_relevance_threshold)}</dd>
            <dt>"Batch size"</dt>
            <dd>{config.batch_size}</dd>
            <dt>"Batches at once"</dt>
            <dd>{config.max_concurrent_batches}</dd>
        </dl>
        <p class="muted">"Administrators change these."</p>
    }
    .into_any()
}

/// The latest auto-ingest runs, each a link to its task.
#[component]
fn LastRuns(runs: Vec<Task>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted">"No run yet."</p> }.into_any();
    }
    let rows = runs
        .into_iter()
        .map(|task| {
            let summary = task
                .result
                .as_ref()
                .and_then(|result| result.get("summary"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let outcome = task
                .error
                .clone()
                .or(summary)
                .or_else(|| {
                    task.detail.as_ref().and_then(RunCounts::from_detail).map(|counts| {
                        format!("{} processed · {}", counts.processed, counts.outcome_text())
                    })
                })
                .unwrap_or_default();
            let status = task.status;
            view! {
                <tr>
                    <td data-label="Run" class="nowrap"><a href=format!("/tasks/{}", task.id)>{task.name}</a></td>
                    <td data-label="State"><StatusBadge status/></td>
                    <td data-label="Outcome" class="runs__outcome">{outcome}</td>
                    <td data-label="Started" class="nowrap"><TimeAgo time=task.created_at/></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="table table--stack" data-testid="runs">
                <thead>
                    <tr>
                        <th scope="col">"Run"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Started"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <p><a href="/tasks?kind=auto_ingest">"All runs →"</a></p>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_well() {
        assert_eq!(interval_text(45), "every 45 s");
        assert_eq!(interval_text(1800), "every 30 min");
        assert_eq!(interval_text(90), "every 1 min 30 s");
        assert_eq!(interval_text(7200), "every 2 h");
        assert_eq!(interval_text(5400), "every 90 min");
    }

    #[test]
    fn a_run_detail_gives_its_counts() {
        let detail = serde_json::json!({
            "batch_completed": 2, "total_batches": 3, "results": {"processed": 4, "approved": 3,
            "filtered_relevance": 1, "filtered_quality": 0, "errors": 0}
        });
        let counts = RunCounts::from_detail(&detail).expect("an object");
        assert_eq!(counts.total_batches, 3);
        assert_eq!(
            counts.outcome_text(),
            "3 approved · 1 off topic · 0 low quality · 0 errors"
        );
        assert_eq!(RunCounts::from_detail(&Value::Null), None);
        let flat = serde_json::json!({"batch_completed": 1, "total_batches": 3, "approved": 2});
        assert_eq!(
            RunCounts::from_detail(&flat).map(|counts| counts.approved),
            Some(2)
        );
    }
}
