//! What auto-ingest works with: the feeds it reads, the topics it judges against, the keyword
//! groups it watches. Administrators add, change and delete them here.

use leptos::{html, prelude::*};

use crate::{
    api::{
        ingest::{KeywordGroup, SaveKeywordGroup, SaveSource, SaveTopic, Source, Topic},
        tasks::Task,
    },
    error::AppError,
    ui::{
        components::{FormError, KeywordChips, StatusBadge, TimeAgo},
        form_check::CheckedForm,
        live_tasks::LiveTask,
        session::error_message,
    },
};

use super::{IngestActions, Loaded, count_done, is_admin};

type Listed<T> = Resource<Result<Vec<T>, AppError>>;

/// Wires a form that adds an object (`adding`) or changes one: counts its saves into `saved`,
/// then empties the form after an addition or closes it after a change. Answers the form's
/// node.
fn wire_save_form<S>(
    action: ServerAction<S>,
    saved: RwSignal<u32>,
    adding: bool,
) -> NodeRef<html::Form>
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    count_done(action, saved);
    let node = NodeRef::<html::Form>::new();
    if adding {
        reset_on_success(action, node);
    } else {
        close_on_success(action, node);
    }
    node
}

/// What a save form says once it has saved `name`.
fn saved_message(adding: bool, name: &str) -> String {
    if adding {
        format!("Added “{name}”.")
    } else {
        "Saved.".to_owned()
    }
}

/// Empties a form once its action succeeded (the form for adding; a changed item's form shows
/// its new values when the list loads again).
fn reset_on_success<S>(action: ServerAction<S>, form: NodeRef<html::Form>)
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    Effect::new(move |previous: Option<usize>| {
        let version = action.version().get();
        let succeeded = action.value().with(|value| matches!(value, Some(Ok(_))));
        if previous.is_some_and(|previous| previous != version)
            && succeeded
            && let Some(form) = form.get_untracked()
        {
            form.reset();
        }
        version
    });
}

/// Closes the `<details>` around a form once its action succeeded (an item's form for changing
/// it: the list then shows the new values).
fn close_on_success<S>(action: ServerAction<S>, form: NodeRef<html::Form>)
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    #[cfg(feature = "hydrate")]
    Effect::new(move |previous: Option<usize>| {
        let version = action.version().get();
        let succeeded = action
            .value()
            .with_untracked(|value| matches!(value, Some(Ok(_))));
        if previous.is_some_and(|previous| previous != version)
            && succeeded
            && let Some(form) = form.get_untracked()
            && let Ok(Some(details)) = form.closest("details")
        {
            let _ = details.remove_attribute("open");
        }
        version
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (action, form);
}

/// A link to a feed or page the server accepted (http or https); plain text otherwise.
fn external_link(url: String, class: &'static str) -> AnyView {
    if url.starts_with("https://") || url.starts_with("http://") {
        let href = url.clone();
        view! {
            <a class=class href=href target="_blank" rel="noopener noreferrer">{url}</a>
        }
        .into_any()
    } else {
        view! { <span class=class>{url}</span> }.into_any()
    }
}

// Sources

#[component]
pub(super) fn SourcesCard(
    sources: Listed<Source>,
    topics: Listed<Topic>,
    actions: IngestActions,
) -> impl IntoView {
    let error = Signal::derive(move || {
        error_message(actions.enable_source.value().get())
            .or_else(|| error_message(actions.delete_source.value().get()))
    });
    view! {
        <section class="card" aria-labelledby="sources-heading">
            <h2 id="sources-heading">"Sources"</h2>
            <FormError message=error/>
            <Loaded resource=sources show=move |sources| view! { <SourceTable sources actions admin=is_admin()/> }/>
            // Inside a boundary: the session is a resource.
            <Suspense>
            <Show when=is_admin>
                <h3 class="card__subheading">"Add a source"</h3>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        let topics = topics.await.unwrap_or_default();
                        view! { <SourceForm topics saved=actions.sources_saved/> }.into_any()
                    })}
                </Transition>
            </Show>
            </Suspense>
        </section>
    }
    .into_any()
}

#[component]
fn SourceTable(sources: Vec<Source>, actions: IngestActions, admin: bool) -> impl IntoView {
    if sources.is_empty() {
        let hint = if admin {
            "No sources yet. Add the RSS or Atom feed of a site below."
        } else {
            "No sources yet. Administrators add them."
        };
        return view! { <p class="muted">{hint}</p> }.into_any();
    }
    let rows = sources
        .into_iter()
        .map(|source| view! { <SourceRow source actions admin/> })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="table table--stack" data-testid="sources">
                <thead>
                    <tr>
                        <th scope="col">"Source"</th>
                        <th scope="col">"Topic"</th>
                        <th scope="col">"Enabled"</th>
                        <th scope="col">"Last fetched"</th>
                        <th scope="col">"Last error"</th>
                        {admin.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn SourceRow(source: Source, actions: IngestActions, admin: bool) -> impl IntoView {
    let Source {
        id,
        name,
        feed_url,
        topic_name,
        enabled,
        last_fetched_at,
        last_error,
        ..
    } = source;
    let topic = match topic_name {
        Some(topic) => view! { <span>{topic}</span> }.into_any(),
        None => view! { <span class="muted">"Best of all topics"</span> }.into_any(),
    };
    let fetched = match last_fetched_at {
        Some(at) => view! { <TimeAgo time=at/> }.into_any(),
        None => view! { <span class="muted">"Never"</span> }.into_any(),
    };
    let fetch_error = match last_error {
        Some(error) => view! { <span class="source__error">{error}</span> }.into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };
    let toggle_name = name.clone();
    let toggle = admin.then(|| {
        let name = toggle_name;
        let (label, next) = if enabled { ("Disable", false) } else { ("Enable", true) };
        view! {
            <ActionForm action=actions.enable_source attr:class="inline">
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="enabled" value=next.to_string()/>
                <button class="button button--quiet" type="submit" aria-label=format!("{label} {name}")>{label}</button>
            </ActionForm>
        }
    });
    let delete_name = name.clone();
    let delete = admin.then(|| {
        let name = delete_name;
        view! {
            <td class="table__actions">
                <ActionForm action=actions.delete_source>
                    <input type="hidden" name="id" value=id/>
                    <button class="button button--quiet button--quiet-danger" type="submit"
                        aria-label=format!("Delete {name}")>"Delete"</button>
                </ActionForm>
            </td>
        }
    });
    let row_name = name.clone();
    view! {
        <tr data-source=row_name>
            <td data-label="Source">
                <strong class="source__name">{name}</strong>
                {external_link(feed_url, "source__feed mono")}
            </td>
            <td data-label="Topic">{topic}</td>
            <td data-label="Enabled">
                <span class="badge" class:badge--off=!enabled>{if enabled { "On" } else { "Off" }}</span>
                {toggle}
            </td>
            <td data-label="Last fetched">{fetched}</td>
            <td data-label="Last error">{fetch_error}</td>
            {delete}
        </tr>
    }
    .into_any()
}

/// Adds a source: name, feed URL and the topic its articles are judged against.
#[component]
fn SourceForm(topics: Vec<Topic>, saved: RwSignal<u32>) -> impl IntoView {
    let action = ServerAction::<SaveSource>::new();
    let pending = action.pending();
    count_done(action, saved);
    let node = NodeRef::<html::Form>::new();
    reset_on_success(action, node);
    let form = CheckedForm::new(move || error_message(action.value().get()));
    let added = move || {
        action
            .value()
            .get()
            .and_then(Result::ok)
            .map(|source| format!("Added “{}”.", source.name))
    };
    let options = topics
        .into_iter()
        .map(|topic| view! { <option value=topic.id.to_string()>{topic.name}</option> })
        .collect_view();
    view! {
        <ActionForm action node_ref=node attr:class="form form--inline source-form">
            <label>
                "Name"
                <input name="source[name]" type="text" maxlength="200" required autocomplete="off"
                    aria-invalid=form.marks("name")/>
            </label>
            <label class="form__wide">
                "Feed URL"
                <input name="source[feed_url]" type="url" maxlength="2000" required spellcheck="false"
                    placeholder="https://example.com/feed.xml" aria-invalid=form.marks("feed_url")/>
            </label>
            <label>
                "Topic"
                <select name="source[topic_id]" aria-invalid=form.marks("topic_id")>
                    <option value="">"Best of all topics"</option>
                    {options}
                </select>
            </label>
            <button class="button" type="submit" disabled=pending
                on:click=form.on_submit_click(|args: &SaveSource| args.source.validate())>
                "Add source"
            </button>
        </ActionForm>
        <FormError message=form.error()/>
        <p class="form-success" role="status">{added}</p>
    }
    .into_any()
}

// Topics

#[component]
pub(super) fn TopicsCard(topics: Listed<Topic>, actions: IngestActions) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="topics-heading">
            <h2 id="topics-heading">"Topics"</h2>
            <FormError message=Signal::derive(move || error_message(actions.delete_topic.value().get()))/>
            <Loaded resource=topics show=move |topics| view! { <TopicList topics actions admin=is_admin()/> }/>
            // Inside a boundary: the session is a resource.
            <Suspense>
            <Show when=is_admin>
                <h3 class="card__subheading">"Add a topic"</h3>
                <TopicForm topic=None saved=actions.topics_saved/>
            </Show>
            </Suspense>
        </section>
    }
    .into_any()
}

#[component]
fn TopicList(topics: Vec<Topic>, actions: IngestActions, admin: bool) -> impl IntoView {
    if topics.is_empty() {
        return view! { <p class="muted">"No topics yet."</p> }.into_any();
    }
    let items = topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.clone();
            let row_name = topic.name.clone();
            let manage = admin.then(|| {
                let id = topic.id;
                let edited = topic.clone();
                view! {
                    <div class="item__actions">
                        <details class="edit">
                            <summary class="button button--quiet" aria-label=format!("Edit {name}")>"Edit"</summary>
                            <TopicForm topic=Some(edited) saved=actions.topics_saved/>
                        </details>
                        <ActionForm action=actions.delete_topic>
                            <input type="hidden" name="id" value=id/>
                            <button class="button button--quiet button--quiet-danger" type="submit"
                                aria-label=format!("Delete {name}")>"Delete"</button>
                        </ActionForm>
                    </div>
                }
            });
            view! {
                <li class="item" data-topic=row_name>
                    <div class="item__body">
                        <strong class="item__name">{topic.name}</strong>
                        {(!topic.description.is_empty()).then(|| view! {
                            <p class="item__text muted">{topic.description}</p>
                        })}
                        <KeywordChips keywords=topic.keywords/>
                    </div>
                    {manage}
                </li>
            }
        })
        .collect_view();
    view! { <ul class="items" data-testid="topics">{items}</ul> }.into_any()
}

/// Adds a topic, or changes `topic`.
#[component]
fn TopicForm(topic: Option<Topic>, saved: RwSignal<u32>) -> impl IntoView {
    let action = ServerAction::<SaveTopic>::new();
    let pending = action.pending();
    let adding = topic.is_none();
    let node = wire_save_form(action, saved, adding);
    let form = CheckedForm::new(move || error_message(action.value().get()));
    let done = move || {
        let saved = action.value().get().and_then(Result::ok);
        saved.map(|topic| saved_message(adding, &topic.name))
    };
    let (id, name, description, keywords) = match topic {
        Some(topic) => (
            Some(topic.id.to_string()),
            topic.name,
            topic.description,
            topic.keywords.join(", "),
        ),
        None => (None, String::new(), String::new(), String::new()),
    };
    view! {
        <ActionForm action node_ref=node attr:class="stack topic-form">
            {id.map(|id| view! { <input type="hidden" name="id" value=id/> })}
            <label>
                "Name"
                <input name="topic[name]" type="text" maxlength="200" required autocomplete="off"
                    value=name aria-invalid=form.marks("name")/>
            </label>
            <label>
                <span>"Description " <small class="muted">"(optional)"</small></span>
                <textarea name="topic[description]" rows="2" maxlength="2000"
                    aria-invalid=form.marks("description")>{description}</textarea>
            </label>
            <label>
                <span>"Keywords " <small class="muted">"(separated by commas or new lines)"</small></span>
                <textarea name="topic[keywords]" rows="2" spellcheck="false"
                    aria-invalid=form.marks("keywords")>{keywords}</textarea>
            </label>
            <FormError message=form.error()/>
            <p class="form-success" role="status">{done}</p>
            <button class="button" type="submit" disabled=pending
                on:click=form.on_submit_click(|args: &SaveTopic| args.topic.validate())>
                {if adding { "Add topic" } else { "Save topic" }}
            </button>
        </ActionForm>
    }
    .into_any()
}

// Keyword groups

#[component]
pub(super) fn GroupsCard(
    groups: Listed<KeywordGroup>,
    topics: Listed<Topic>,
    actions: IngestActions,
) -> impl IntoView {
    let check = actions.check;
    let error = Signal::derive(move || {
        error_message(check.value().get())
            .or_else(|| error_message(actions.delete_group.value().get()))
    });
    view! {
        <section class="card" aria-labelledby="groups-heading">
            <div class="card__head">
                <h2 id="groups-heading">"Keyword groups"</h2>
                <ActionForm action=check>
                    <button class="button button--quiet" type="submit" disabled=actions.checking>
                        "Check all"
                    </button>
                </ActionForm>
            </div>
            <FormError message=error/>
            {move || check.value().get().and_then(Result::ok).map(|task| view! {
                <KeywordCheckNotice task finished=actions.finished/>
            })}
            <Loaded resource=groups show=move |groups| view! { <GroupList groups actions admin=is_admin()/> }/>
            // Inside a boundary: the session is a resource.
            <Suspense>
            <Show when=is_admin>
                <h3 class="card__subheading">"Add a group"</h3>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        let topics = topics.await.unwrap_or_default();
                        view! { <GroupForm group=None topics saved=actions.groups_saved/> }.into_any()
                    })}
                </Transition>
            </Show>
            </Suspense>
        </section>
    }
    .into_any()
}

/// The keyword check just started here, live; the lists load again once it has ended.
#[component]
fn KeywordCheckNotice(task: Task, finished: RwSignal<u32>) -> impl IntoView {
    let ended_already = task.status.is_finished();
    let live = LiveTask::follow(task, Vec::new());
    let task = live.task;
    Effect::new(move |ended_before: Option<bool>| {
        let ended = task.with(|task| task.status.is_finished());
        if ended && ended_before == Some(false) && !ended_already {
            finished.update(|count| *count += 1);
        }
        ended
    });
    let status = Signal::derive(move || task.with(|task| task.status));
    view! {
        <p class="notice check-notice" role="status">
            <a href=move || task.with(|task| format!("/tasks/{}", task.id))>{move || task.with(|task| task.name.clone())}</a>
            " "
            <StatusBadge status/>
        </p>
    }
    .into_any()
}

#[component]
fn GroupList(groups: Vec<KeywordGroup>, actions: IngestActions, admin: bool) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="muted">"No keyword groups yet."</p> }.into_any();
    }
    let check = actions.check;
    let items = groups
        .into_iter()
        .map(|group| {
            let name = group.name.clone();
            let row_name = group.name.clone();
            let check_label = format!("Check {name} now");
            let id = group.id;
            let manage = admin.then(|| {
                let edited = group.clone();
                view! {
                    <details class="edit">
                        <summary class="button button--quiet" aria-label=format!("Edit {name}")>"Edit"</summary>
                        <GroupForm group=Some(edited) topics=Vec::new() saved=actions.groups_saved/>
                    </details>
                    <ActionForm action=actions.delete_group>
                        <input type="hidden" name="id" value=id/>
                        <button class="button button--quiet button--quiet-danger" type="submit"
                            aria-label=format!("Delete {name}")>"Delete"</button>
                    </ActionForm>
                }
            });
            let unread = match group.unread_alerts {
                0 => None,
                1 => Some("1 unread alert".to_owned()),
                count => Some(format!("{count} unread alerts")),
            };
            view! {
                <li class="item" data-group=row_name>
                    <div class="item__body">
                        <strong class="item__name">{group.name}</strong>
                        {unread.map(|text| view! { <span class="badge badge--alerts">{text}</span> })}
                        {group.topic.map(|topic| view! { <p class="item__text muted">"Topic: " {topic}</p> })}
                        <KeywordChips keywords=group.keywords/>
                    </div>
                    <div class="item__actions">
                        <ActionForm action=check>
                            <input type="hidden" name="group_id" value=id/>
                            <button class="button button--quiet" type="submit" aria-label=check_label
                                disabled=actions.checking>
                                "Check now"
                            </button>
                        </ActionForm>
                        {manage}
                    </div>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="items" data-testid="groups">{items}</ul> }.into_any()
}

/// Adds a keyword group, or changes `group` (whose topic then stays as typed).
#[component]
fn GroupForm(
    group: Option<KeywordGroup>,
    topics: Vec<Topic>,
    saved: RwSignal<u32>,
) -> impl IntoView {
    let action = ServerAction::<SaveKeywordGroup>::new();
    let pending = action.pending();
    let adding = group.is_none();
    let node = wire_save_form(action, saved, adding);
    let form = CheckedForm::new(move || error_message(action.value().get()));
    let done = move || {
        let saved = action.value().get().and_then(Result::ok);
        saved.map(|group| saved_message(adding, &group.name))
    };
    let (id, name, topic, keywords) = match group {
        Some(group) => (
            Some(group.id.to_string()),
            group.name,
            group.topic.unwrap_or_default(),
            group.keywords.join(", "),
        ),
        None => (None, String::new(), String::new(), String::new()),
    };
    let list = format!("group-topics-{}", id.as_deref().unwrap_or("new"));
    let options = topics
        .into_iter()
        .map(|topic| view! { <option value=topic.name></option> })
        .collect_view();
    view! {
        <ActionForm action node_ref=node attr:class="stack group-form">
            {id.map(|id| view! { <input type="hidden" name="id" value=id/> })}
            <label>
                "Name"
                <input name="group[name]" type="text" maxlength="200" required autocomplete="off"
                    value=name aria-invalid=form.marks("name")/>
            </label>
            <label>
                <span>"Topic " <small class="muted">"(optional: only its articles are checked)"</small></span>
                <input name="group[topic]" type="text" maxlength="200" autocomplete="off" list=list.clone()
                    value=topic aria-invalid=form.marks("topic")/>
            </label>
            <datalist id=list>{options}</datalist>
            <label>
                <span>"Keywords " <small class="muted">"(separated by commas or new lines)"</small></span>
                <textarea name="group[keywords]" rows="2" spellcheck="false" required
                    aria-invalid=form.marks("keywords")>{keywords}</textarea>
            </label>
            <FormError message=form.error()/>
            <p class="form-success" role="status">{done}</p>
            <button class="button" type="submit" disabled=pending
                on:click=form.on_submit_click(|args: &SaveKeywordGroup| args.group.validate())>
                {if adding { "Add group" } else { "Save group" }}
            </button>
        </ActionForm>
    }
    .into_any()
}
