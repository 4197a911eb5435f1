use chrono::{DateTime, Utc};
use leptos::{prelude::*, server_fn::ServerFn};
use uuid::Uuid;

use crate::{
    api::notifications::{DeleteNotification, MarkNotificationRead, Notification},
    ui::{
        components::{PostButton, ProgressBar, TimeAgo},
        live_notifications::Inbox,
        live_tasks::watch_task,
    },
};

/// What tells two versions of a notification apart in a keyed list: a new version of a task's
/// notification follows the retry (another task) or tells a new ending (another time); reading
/// it changes its look.
pub fn item_key(notification: &Notification) -> (i64, bool, DateTime<Utc>, Option<Uuid>) {
    (
        notification.id,
        notification.read,
        notification.created_at,
        notification.task_id,
    )
}

/// Where a notification is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemPlace {
    /// The bell's dropdown: with the live progress of a task still running.
    Bell,
    /// The inbox page: with a delete button.
    Inbox,
}

/// One notification: unread marker, title (a link when it has one: opening it marks it read),
/// message, when, and its actions. Every text is rendered as text.
#[component]
pub fn NotificationItem(
    notification: Notification,
    place: ItemPlace,
    /// Called when the notification's link is opened (the bell closes).
    #[prop(optional, into)]
    on_open: Option<Callback<()>>,
) -> impl IntoView {
    let inbox = Inbox::expect();
    let broadcast = notification.is_broadcast();
    let Notification {
        id,
        kind,
        title,
        message,
        link,
        task_id,
        read,
        created_at,
        ..
    } = notification;
    let open = move |_| {
        if !read {
            inbox.mark_read(id);
        }
        if let Some(on_open) = on_open {
            on_open.run(());
        }
    };
    let heading = match link {
        Some(href) => {
            // The server accepts only app paths and http(s) URLs; other sites open in a new tab
            // and learn nothing about this one.
            let external = !href.starts_with('/');
            view! {
                <a
                    class="notification__link"
                    href=href
                    target=external.then_some("_blank")
                    rel=external.then_some("noopener noreferrer")
                    on:click=open
                >
                    {title.clone()}
                </a>
            }
            .into_any()
        }
        None => view! { <span>{title.clone()}</span> }.into_any(),
    };
    let progress = task_id
        .filter(|_| place == ItemPlace::Bell)
        .map(|id| view! { <UnfinishedTaskProgress id/> });
    let audience = broadcast.then_some(" · to everyone");
    view! {
        <li class="notification" class:notification--unread=!read data-testid="notification">
            <span class="notification__marker" aria-hidden="true"></span>
            <div class="notification__body">
                <p class="notification__title">
                    {heading}
                    {(!read).then_some(view! { <span class="visually-hidden">" (unread)"</span> })}
                </p>
                {(!message.is_empty()).then(|| view! { <p class="notification__message">{message}</p> })}
                <p class="notification__meta">
                    <TimeAgo time=created_at/>
                    " · "
                    <span class="notification__kind">{kind}</span>
                    {audience}
                </p>
                {progress}
            </div>
            <div class="notification__actions">
                {(!read).then(|| view! {
                    <PostButton
                        action=MarkNotificationRead::url()
                        label="Mark read"
                        name=format!("Mark read: {title}")
                        field="id"
                        value=Some(id)
                        on_press=move |()| inbox.mark_read(id)
                    />
                })}
                {(place == ItemPlace::Inbox).then(|| view! {
                    <PostButton
                        action=DeleteNotification::url()
                        label="Delete"
                        name=format!("Delete: {title}")
                        field="id"
                        value=Some(id)
                        on_press=move |()| inbox.delete(id)
                    />
                })}
            </div>
        </li>
    }
    .into_any()
}

/// The live progress of the task a notification is about, while that task has not finished;
/// nothing once it has. Follows the task only while shown.
#[component]
fn UnfinishedTaskProgress(id: Uuid) -> impl IntoView {
    let task = watch_task(id);
    let unfinished =
        move || task.with(|task| task.as_ref().is_some_and(|task| !task.status.is_finished()));
    view! {
        <Show when=unfinished>
            <ProgressBar task=Signal::derive(move || task.get().expect("shown once the task is known"))/>
        </Show>
    }
    .into_any()
}
