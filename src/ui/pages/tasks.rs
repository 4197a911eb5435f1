use std::collections::HashSet;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{A, Form},
    hooks::use_query_map,
    params::ParamsMap,
};
use uuid::Uuid;

use crate::{
    api::{
        accounts::Role,
        tasks::{CleanupTasks, Task, TaskFilter, TaskPage, TaskStatus, cancel_task, list_tasks},
    },
    ui::{
        components::{FormError, StatusBadge, status_label},
        format::{date_time, query_text, with_query},
        live_tasks::live_task_list,
        session::{Session, error_message},
    },
};

/// The filters of the listing, as they stand in the URL (so a view can be bookmarked).
#[derive(Clone, Debug, Default, PartialEq)]
struct Filters {
    status: Option<TaskStatus>,
    kind: Option<String>,
    owner: Option<String>,
    text: Option<String>,
    cursor: Option<Uuid>,
}

impl Filters {
    fn from_query(query: &ParamsMap) -> Self {
        let text = |name| query_text(query, name);
        Filters {
            status: text("status").as_deref().and_then(TaskStatus::parse),
            kind: text("kind"),
            owner: text("owner"),
            text: text("q"),
            cursor: text("cursor").and_then(|cursor| cursor.parse().ok()),
        }
    }

    fn to_filter(&self) -> TaskFilter {
        TaskFilter {
            status: self.status,
            kind: self.kind.clone(),
            owner: self.owner.clone(),
            text: self.text.clone(),
            cursor: self.cursor,
            limit: None,
        }
    }

    /// The URL of this view, starting at `cursor`.
    fn href(&self, cursor: Option<Uuid>) -> String {
        let pairs = [
            (
                "status",
                self.status.map(|status| status.as_str().to_owned()),
            ),
            ("kind", self.kind.clone()),
            ("owner", self.owner.clone()),
            ("q", self.text.clone()),
            ("cursor", cursor.map(|cursor| cursor.to_string())),
        ];
        with_query("/tasks", pairs)
    }
}

/// Every task the user may see, filtered, paged, live; bulk cancel; cleanup for admins.
#[component]
pub fn TasksPage() -> impl IntoView {
    let query = use_query_map();
    let filters = Memo::new(move |_| query.with(Filters::from_query));
    let cleanup = ServerAction::<CleanupTasks>::new();
    let reload = RwSignal::new(0_u32);
    let page = Resource::new(
        move || (filters.get(), cleanup.version().get(), reload.get()),
        |(filters, _, _)| list_tasks(filters.to_filter()),
    );
    let is_admin = move || {
        Session::expect()
            .user()
            .is_some_and(|user| user.role == Role::Admin)
    };
    view! {
        <Title text="Tasks"/>
        <section class="page-header">
            <h1>"Tasks"</h1>
            <p class="lede">"Every background task you can see, newest first. Updates arrive live."</p>
        </section>
        <section class="card" aria-labelledby="filters-heading">
            <h2 id="filters-heading" class="visually-hidden">"Filters"</h2>
            <FilterForm filters is_admin=Signal::derive(is_admin)/>
        </section>
        <section class="card" aria-labelledby="list-heading">
            <h2 id="list-heading" class="visually-hidden">"Task list"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(page) => view! {
                            <TaskList page filters=filters.get_untracked() reload is_admin=is_admin()/>
                        }.into_any(),
                        Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Show when=is_admin>
            <CleanupCard action=cleanup/>
        </Show>
    }
}

#[component]
fn FilterForm(filters: Memo<Filters>, is_admin: Signal<bool>) -> impl IntoView {
    let value =
        move |read: fn(&Filters) -> Option<String>| move || filters.with(read).unwrap_or_default();
    let selected =
        move |status: Option<TaskStatus>| move || filters.with(|filters| filters.status == status);
    view! {
        <Form method="GET" action="/tasks" attr:class="form form--inline">
            <label>
                "State"
                <select name="status">
                    <option value="" selected=selected(None)>"Any"</option>
                    {TaskStatus::ALL.into_iter().map(|status| view! {
                        <option value=status.as_str() selected=selected(Some(status))>{status_label(status)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>
                "Kind"
                <input name="kind" type="text" maxlength="100" prop:value=value(|filters| filters.kind.clone())/>
            </label>
            <Show when=move || is_admin.get()>
                <label>
                    "Owner"
                    <input name="owner" type="text" maxlength="100" prop:value=value(|filters| filters.owner.clone())/>
                </label>
            </Show>
            <label>
                "Search"
                <input name="q" type="search" maxlength="200" placeholder="Name or kind" prop:value=value(|filters| filters.text.clone())/>
            </label>
            <button class="button" type="submit">"Filter"</button>
            <A href="/tasks" attr:class="button button--quiet">"Clear"</A>
        </Form>
    }
}

#[component]
fn TaskList(
    page: TaskPage,
    filters: Filters,
    reload: RwSignal<u32>,
    is_admin: bool,
) -> impl IntoView {
    let (tasks, arrived) = live_task_list(page.tasks);
    let selected = RwSignal::new(HashSet::<Uuid>::new());
    let older = page.next_cursor.map(|cursor| filters.href(Some(cursor)));
    let newest = filters.cursor.is_some().then(|| filters.href(None));
    view! {
        <Show when=move || { arrived.get() > 0 }>
            <p class="notice" role="status">
                {move || match arrived.get() { 1 => "1 new task.".to_owned(), n => format!("{n} new tasks.") }}
                " "
                <button class="button button--quiet" type="button" on:click=move |_| reload.update(|n| *n += 1)>"Show"</button>
            </p>
        </Show>
        <BulkCancel tasks selected/>
        <div class="table-scroll">
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col"><span class="visually-hidden">"Select"</span></th>
                        <th scope="col">"Task"</th>
                        <th scope="col">"Kind"</th>
                        {is_admin.then(|| view! { <th scope="col">"Owner"</th> })}
                        <th scope="col">"State"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || tasks.with(|tasks| tasks.iter().map(|task| task.id).collect::<Vec<_>>()) key=|id| *id let:id>
                        <TaskRow task=Signal::derive(move || tasks.with(|tasks| tasks.iter().find(|task| task.id == id).cloned()).expect("a listed task")) selected is_admin/>
                    </For>
                </tbody>
            </table>
        </div>
        <Show when=move || tasks.with(Vec::is_empty)>
            <p class="muted">"No tasks match."</p>
        </Show>
        <nav class="pager" aria-label="Pages">
            {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
            {older.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
        </nav>
    }
}

#[component]
fn TaskRow(task: Signal<Task>, selected: RwSignal<HashSet<Uuid>>, is_admin: bool) -> impl IntoView {
    let id = task.with_untracked(|task| task.id);
    let status = Signal::derive(move || task.with(|task| task.status));
    let cancelling = Signal::derive(move || task.with(|task| task.cancel_requested));
    let name = task.with_untracked(|task| task.name.clone());
    view! {
        <tr data-status=move || status.get().as_str()>
            <td>
                <input
                    type="checkbox"
                    aria-label=format!("Select {name}")
                    disabled=move || status.get().is_finished()
                    prop:checked=move || selected.with(|selected| selected.contains(&id))
                    on:change=move |event| {
                        let checked = event_target_checked(&event);
                        selected.update(|selected| {
                            if checked { selected.insert(id); } else { selected.remove(&id); }
                        });
                    }
                />
            </td>
            <td><a href=format!("/tasks/{id}")>{name.clone()}</a></td>
            <td class="mono">{move || task.with(|task| task.kind.clone())}</td>
            {is_admin.then(|| view! { <td>{move || task.with(|task| task.owner.clone().unwrap_or_default())}</td> })}
            <td><StatusBadge status cancelling/></td>
            <td>
                <progress class="mini-bar" max="100" aria-label=format!("Progress of {name}")
                    value=move || task.with(|task| format!("{:.0}", task.progress.progress))></progress>
                <span class="mini-bar__text">{move || task.with(|task| format!("{:.0}%", task.progress.progress))}</span>
            </td>
            <td>{move || task.with(|task| date_time(task.created_at))}</td>
        </tr>
    }
}

/// Cancels the selected tasks, one request each; the rows follow live.
#[component]
fn BulkCancel(tasks: RwSignal<Vec<Task>>, selected: RwSignal<HashSet<Uuid>>) -> impl IntoView {
    let errors = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let cancel = move |_| {
        let ids: Vec<Uuid> = selected.get_untracked().into_iter().collect();
        busy.set(true);
        leptos::task::spawn_local(async move {
            let mut failed = Vec::new();
            for id in ids {
                match cancel_task(id).await {
                    Ok(task) => tasks.update(|tasks| {
                        for listed in tasks.iter_mut().filter(|listed| {
                            listed.id == id && listed.last_event_seq <= task.last_event_seq
                        }) {
                            *listed = task.clone();
                        }
                    }),
                    Err(error) => failed.push(error.to_string()),
                }
            }
            selected.set(HashSet::new());
            errors.set((!failed.is_empty()).then(|| failed.join("; ")));
            busy.set(false);
        });
    };
    let count = move || selected.with(HashSet::len);
    view! {
        <div class="actions">
            <button class="button button--danger" type="button" disabled=move || count() == 0 || busy.get() on:click=cancel>
                {move || match count() { 0 => "Cancel selected".to_owned(), n => format!("Cancel {n} selected") }}
            </button>
        </div>
        <FormError message=errors/>
    }
}

/// Deletes finished tasks older than a given age (admins: everybody's).
#[component]
fn CleanupCard(action: ServerAction<CleanupTasks>) -> impl IntoView {
    let done = move || match action.value().get() {
        Some(Ok(1)) => Some("Deleted 1 finished task.".to_owned()),
        Some(Ok(count)) => Some(format!("Deleted {count} finished tasks.")),
        _ => None,
    };
    view! {
        <section class="card" aria-labelledby="cleanup-heading">
            <h2 id="cleanup-heading">"Clean up"</h2>
            <ActionForm action attr:class="form form--inline">
                <label>
                    "Delete finished tasks older than (hours)"
                    <input name="max_age_hours" type="number" min="0" max="100000" value="24" required/>
                </label>
                <button class="button" type="submit" disabled=move || action.pending().get()>"Clean up"</button>
            </ActionForm>
            <p class="form-success" role="status">{done}</p>
            <FormError message=Signal::derive(move || error_message(action.value().get()))/>
        </section>
    }
}
