use leptos::{ev::SubmitEvent, prelude::*, server_fn::ServerFn};
use leptos_meta::Title;
use leptos_router::{hooks::use_query_map, params::ParamsMap};

use crate::{
    api::{
        accounts::Role,
        notifications::{
            CreateNotification, DeleteReadNotifications, MarkAllNotificationsRead, NewNotification,
            NotificationFilter, NotificationPage, Recipient, UnreadCount, list_notifications,
        },
    },
    ui::{
        components::{FormError, ItemPlace, NotificationItem, PostButton, item_key},
        live_notifications::{Inbox, InboxEvent, apply_change},
        session::{Session, error_message},
    },
};

/// The view of the inbox, as it stands in the URL: `?filter=unread&before=<id>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct View {
    unread_only: bool,
    before: Option<i64>,
}

impl View {
    fn from_query(query: &ParamsMap) -> Self {
        View {
            unread_only: query.get("filter").as_deref() == Some("unread"),
            before: query.get("before").and_then(|before| before.parse().ok()),
        }
    }

    fn filter(self) -> NotificationFilter {
        NotificationFilter {
            unread_only: self.unread_only,
            before: self.before,
            limit: None,
        }
    }

    /// The URL of this view's filter, starting before `before` (the newest page when `None`).
    fn href(self, before: Option<i64>) -> String {
        let mut query = Vec::new();
        if self.unread_only {
            query.push("filter=unread".to_owned());
        }
        if let Some(before) = before {
            query.push(format!("before={before}"));
        }
        if query.is_empty() {
            "/notifications".to_owned()
        } else {
            format!("/notifications?{}", query.join("&"))
        }
    }
}

/// The inbox: every notification of the user, all or unread only, newest first, paged; new
/// ones appear live on the first page. Administrators also send notifications here.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let query = use_query_map();
    let view_of_url = Memo::new(move |_| query.with(View::from_query));
    let reload = RwSignal::new(0_u32);
    let page = Resource::new(
        move || (view_of_url.get(), reload.get()),
        |(view, _)| list_notifications(view.filter()),
    );
    let is_admin = move || {
        Session::expect()
            .user()
            .is_some_and(|user| user.role == Role::Admin)
    };
    view! {
        <Title text="Notifications"/>
        <section class="page-header">
            <h1>"Notifications"</h1>
            <p class="lede">"What happened while you were away: finished tasks, failures and announcements."</p>
        </section>
        <section class="card card--inbox" aria-labelledby="inbox-heading">
            <h2 id="inbox-heading" class="visually-hidden">"Inbox"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(page) => view! {
                            <InboxList page view=view_of_url.get_untracked() reload/>
                        }.into_any(),
                        Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <Show when=is_admin>
            <SendNotificationCard/>
        </Show>
    }
}

/// The All / Unread tabs and the actions on every notification. `loaded` is the unread count
/// the page was loaded with, `newest_shown` the newest notification it shows ("mark all read"
/// goes up to it when the form is posted without the WASM).
#[component]
fn InboxToolbar(view: View, loaded: UnreadCount, newest_shown: Option<i64>) -> impl IntoView {
    let inbox = Inbox::expect();
    let unread = Signal::derive(move || inbox.unread_since(Some(loaded)));
    let current = move |unread_only: bool| (view.unread_only == unread_only).then_some("page");
    let unread_text = move || match unread.get() {
        0 => String::new(),
        count => count.to_string(),
    };
    view! {
        <div class="inbox-toolbar">
            <nav class="tabs" aria-label="Show">
                <a href="/notifications" aria-current=current(false)>"All"</a>
                <a href="/notifications?filter=unread" aria-current=current(true)>
                    "Unread"
                    <span class="tabs__count" data-testid="unread-tab-count">{unread_text}</span>
                </a>
            </nav>
            <div class="inbox-toolbar__actions">
                <PostButton
                    action=MarkAllNotificationsRead::url()
                    label="Mark all read"
                    field="up_to"
                    value=newest_shown
                    disabled=Signal::derive(move || unread.get() == 0)
                    on_press=move |()| inbox.mark_all_read()
                />
                <PostButton
                    action=DeleteReadNotifications::url()
                    label="Clear read"
                    on_press=move |()| inbox.delete_read()
                />
            </div>
        </div>
        <FormError message=Signal::derive(move || inbox.error())/>
    }
}

/// One page of notifications, kept up to date by the changes the inbox hears of.
#[component]
fn InboxList(page: NotificationPage, view: View, reload: RwSignal<u32>) -> impl IntoView {
    let inbox = Inbox::expect();
    inbox.saw_all(&page.notifications);
    let newest_shown = page
        .notifications
        .first()
        .map(|notification| notification.id);
    let notifications = RwSignal::new(page.notifications);
    let first_page = view.before.is_none();
    inbox.follow(Callback::new(move |event| match event {
        InboxEvent::Changed(change) => {
            notifications.update(|list| apply_change(list, &change, first_page));
        }
        InboxEvent::Reconnected => reload.update(|count| *count += 1),
    }));
    let empty_text = if view.unread_only {
        "You are all caught up: nothing unread."
    } else if first_page {
        "No notifications yet. Finished tasks and announcements will show up here."
    } else {
        "Nothing older."
    };
    let older = page.next_cursor.map(|cursor| view.href(Some(cursor)));
    let newest = view.before.map(|_| view.href(None));
    view! {
        <InboxToolbar view loaded=page.unread newest_shown/>
        <ul class="notifications" data-testid="inbox">
            <For
                each=move || notifications.get()
                key=item_key
                children=move |notification| view! {
                    <NotificationItem notification place=ItemPlace::Inbox/>
                }
            />
        </ul>
        <Show when=move || notifications.with(Vec::is_empty)>
            <p class="inbox-empty muted">{empty_text}</p>
        </Show>
        {(newest.is_some() || older.is_some()).then(|| view! {
            <nav class="pager" aria-label="Pages">
                {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
                {older.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
            </nav>
        })}
    }
    .into_any()
}

/// The form's fields; every text as typed.
#[derive(Clone, Copy)]
struct SendForm {
    everyone: RwSignal<bool>,
    username: RwSignal<String>,
    kind: RwSignal<String>,
    title: RwSignal<String>,
    message: RwSignal<String>,
    link: RwSignal<String>,
}

impl SendForm {
    fn new() -> Self {
        SendForm {
            everyone: RwSignal::new(false),
            username: RwSignal::new(String::new()),
            kind: RwSignal::new("announcement".to_owned()),
            title: RwSignal::new(String::new()),
            message: RwSignal::new(String::new()),
            link: RwSignal::new(String::new()),
        }
    }

    fn notification(self) -> NewNotification {
        let trimmed = |field: RwSignal<String>| field.with_untracked(|text| text.trim().to_owned());
        NewNotification {
            recipient: if self.everyone.get_untracked() {
                Recipient::Everyone
            } else {
                Recipient::User(trimmed(self.username))
            },
            kind: trimmed(self.kind),
            title: trimmed(self.title),
            message: self.message.get_untracked(),
            link: Some(trimmed(self.link)).filter(|link| !link.is_empty()),
        }
    }

    /// Empties what is particular to one notification, keeping recipient and type.
    fn clear(self) {
        for field in [self.title, self.message, self.link] {
            field.set(String::new());
        }
    }
}

/// The field an error names ("link: must be …" names `link`).
fn field_in_error(error: &str) -> Option<&str> {
    error.split_once(':').map(|(field, _)| field)
}

/// Administrators send a notification to one user or to everyone. The form is checked in the
/// browser first, with the same rules as the server, and needs the WASM to send.
#[component]
fn SendNotificationCard() -> impl IntoView {
    let send = ServerAction::<CreateNotification>::new();
    let form = SendForm::new();
    let invalid = RwSignal::new(None::<String>);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    Effect::new(move |_| {
        if matches!(send.value().get(), Some(Ok(_))) {
            form.clear();
        }
    });
    let error = Signal::derive(move || invalid.get().or_else(|| error_message(send.value().get())));
    let names_field = move |field: &'static str| {
        move || {
            error
                .with(|error| error.as_deref().and_then(field_in_error) == Some(field))
                .to_string()
        }
    };
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let notification = form.notification();
        match notification.validate() {
            Ok(()) => {
                invalid.set(None);
                send.dispatch(CreateNotification { notification });
            }
            Err(problem) => invalid.set(Some(problem.to_string())),
        }
    };
    let sent = move || matches!(send.value().get(), Some(Ok(_))) && invalid.with(Option::is_none);
    view! {
        <section class="card" aria-labelledby="send-heading">
            <h2 id="send-heading">"Send a notification"</h2>
            <form class="form send-form" on:submit=submit novalidate>
                <fieldset class="send-form__recipient">
                    <legend>"To"</legend>
                    <label class="choice">
                        <input type="radio" name="recipient" prop:checked=move || !form.everyone.get()
                            on:change=move |_| form.everyone.set(false)/>
                        "One user"
                    </label>
                    <label class="choice">
                        <input type="radio" name="recipient" prop:checked=move || form.everyone.get()
                            on:change=move |_| form.everyone.set(true)/>
                        "Everyone"
                    </label>
                    <label class="send-form__username">
                        "Username"
                        <input type="text" autocomplete="off" maxlength="32" bind:value=form.username
                            disabled=move || form.everyone.get() aria-invalid=names_field("username")/>
                    </label>
                </fieldset>
                <label>
                    "Type"
                    <input type="text" maxlength="50" spellcheck="false" bind:value=form.kind
                        aria-invalid=names_field("type")/>
                </label>
                <label>
                    "Title"
                    <input type="text" maxlength="255" bind:value=form.title aria-invalid=names_field("title")/>
                </label>
                <label class="form__wide">
                    "Message"
                    <textarea rows="3" bind:value=form.message aria-invalid=names_field("message")></textarea>
                </label>
                <label class="form__wide">
                    <span>"Link " <small class="muted">"(optional: a path like /tasks or an http(s) address)"</small></span>
                    <input type="text" maxlength="500" spellcheck="false" bind:value=form.link
                        aria-invalid=names_field("link")/>
                </label>
                <FormError message=error/>
                <Show when=sent>
                    <p class="form-success" role="status">"Notification sent."</p>
                </Show>
                <button class="button" type="submit" disabled=move || !hydrated.get() || send.pending().get()>
                    "Send"
                </button>
            </form>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_round_trips_through_its_url() {
        let unread_older = View {
            unread_only: true,
            before: Some(42),
        };
        assert_eq!(
            unread_older.href(unread_older.before),
            "/notifications?filter=unread&before=42"
        );
        assert_eq!(unread_older.href(None), "/notifications?filter=unread");
        assert_eq!(View::default().href(None), "/notifications");
        let query = ParamsMap::from_iter([
            ("filter".to_owned(), "unread".to_owned()),
            ("before".to_owned(), "42".to_owned()),
        ]);
        assert_eq!(View::from_query(&query), unread_older);
        let nonsense = ParamsMap::from_iter([("before".to_owned(), "x".to_owned())]);
        assert_eq!(View::from_query(&nonsense), View::default());
    }

    #[test]
    fn errors_name_their_field() {
        assert_eq!(field_in_error("link: must be a path"), Some("link"));
        assert_eq!(field_in_error("not found"), None);
    }
}
