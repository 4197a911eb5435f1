use leptos::{html, prelude::*};

use crate::{
    api::notifications::UnreadCount,
    ui::{
        components::{FormError, ItemPlace, NotificationItem, item_key},
        live_notifications::Inbox,
    },
};

/// The bell of the header: the unread count, live, and a dropdown of the newest notifications.
/// `loaded` is the count the server rendered the page with; before the WASM has loaded the
/// bell is a plain link to the inbox page.
#[component]
pub fn Bell(loaded: Option<UnreadCount>) -> impl IntoView {
    let inbox = Inbox::expect();
    let unread = Signal::derive(move || inbox.unread_since(loaded));
    let open = RwSignal::new(false);
    let menu = NodeRef::<html::Div>::new();
    let toggle_button = NodeRef::<html::A>::new();
    dismiss_on_escape_or_outside_use(open, menu, toggle_button);
    let toggle = move |event: leptos::ev::MouseEvent| {
        event.prevent_default();
        open.update(|open| *open = !*open);
    };
    // A link that acts as a button also answers the space bar.
    let space = move |event: leptos::ev::KeyboardEvent| {
        if event.key() == " " {
            event.prevent_default();
            open.update(|open| *open = !*open);
        }
    };
    view! {
        <div class="bell" node_ref=menu>
            <a
                class="bell__button"
                href="/notifications"
                role="button"
                node_ref=toggle_button
                aria-expanded=move || open.get().to_string()
                aria-controls="bell-panel"
                aria-label=move || accessible_name(unread.get())
                data-testid="bell"
                on:click=toggle
                on:keydown=space
            >
                <svg class="bell__icon" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
                    <path d="M12 3a6 6 0 0 0-6 6v3.6l-1.6 2.7A1 1 0 0 0 5.3 17h13.4a1 1 0 0 0 .9-1.7L18 12.6V9a6 6 0 0 0-6-6Z"/>
                    <path d="M9.5 19a2.5 2.5 0 0 0 5 0"/>
                </svg>
                <span class="bell__badge" data-testid="unread-badge" hidden=move || unread.get() == 0>
                    {move || badge_text(unread.get())}
                </span>
            </a>
            <span class="visually-hidden" aria-live="polite">
                {move || announcement(unread.get())}
            </span>
            <Show when=move || open.get()>
                <BellPanel unread close=Callback::new(move |()| open.set(false))/>
            </Show>
        </div>
    }
}

/// How the count reads to a screen reader: "Notifications, 3 unread".
fn accessible_name(unread: i64) -> String {
    match unread {
        0 => "Notifications, none unread".to_owned(),
        count => format!("Notifications, {count} unread"),
    }
}

/// What the live region announces when the count changes.
fn announcement(unread: i64) -> String {
    match unread {
        0 => "No unread notifications".to_owned(),
        1 => "1 unread notification".to_owned(),
        count => format!("{count} unread notifications"),
    }
}

/// The badge keeps to three characters so that it never grows past the bell.
fn badge_text(unread: i64) -> String {
    if unread > 99 {
        "99+".to_owned()
    } else {
        unread.to_string()
    }
}

/// While the dropdown is open: Escape closes it and gives the focus back to the bell; a click
/// or a focus outside of it closes it.
fn dismiss_on_escape_or_outside_use(
    open: RwSignal<bool>,
    menu: NodeRef<html::Div>,
    toggle_button: NodeRef<html::A>,
) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use leptos::{ev, wasm_bindgen::JsCast};
        if !open.get() {
            return;
        }
        let outside = move |target: Option<web_sys::EventTarget>| {
            let node = target.and_then(|target| target.dyn_into::<web_sys::Node>().ok());
            menu.get_untracked()
                .is_some_and(|menu| node.is_some_and(|node| !menu.contains(Some(&node))))
        };
        let escape = window_event_listener(ev::keydown, move |event| {
            if event.key() == "Escape" {
                event.prevent_default();
                open.set(false);
                if let Some(button) = toggle_button.get_untracked() {
                    let _ = button.focus();
                }
            }
        });
        let click = window_event_listener(ev::pointerdown, move |event| {
            if outside(event.target()) {
                open.set(false);
            }
        });
        let focus = window_event_listener(ev::focusin, move |event| {
            if outside(event.target()) {
                open.set(false);
            }
        });
        on_cleanup(move || {
            escape.remove();
            click.remove();
            focus.remove();
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (open, menu, toggle_button);
}

#[component]
fn BellPanel(unread: Signal<i64>, close: Callback<()>) -> impl IntoView {
    let inbox = Inbox::expect();
    let latest = inbox.latest();
    // `None` while loading, then whether the list is empty: the list itself is keyed below.
    let state = Memo::new(move |_| latest.with(|latest| latest.as_ref().map(Vec::is_empty)));
    let list = move || match state.get() {
        None => view! { <p class="bell-panel__empty muted">"Loading…"</p> }.into_any(),
        Some(true) => view! {
            <p class="bell-panel__empty muted">"No notifications yet. You will find them here."</p>
        }
        .into_any(),
        Some(false) => view! {
            <ul class="notifications notifications--compact">
                <For
                    each=move || latest.get().unwrap_or_default()
                    key=item_key
                    children=move |notification| view! {
                        <NotificationItem notification place=ItemPlace::Bell on_open=close/>
                    }
                />
            </ul>
        }
        .into_any(),
    };
    view! {
        <section id="bell-panel" class="bell-panel" aria-labelledby="bell-panel-heading">
            <header class="bell-panel__head">
                <h2 id="bell-panel-heading">"Notifications"</h2>
                <button
                    class="button button--quiet"
                    type="button"
                    disabled=move || unread.get() == 0
                    on:click=move |_| inbox.mark_all_read()
                >
                    "Mark all read"
                </button>
            </header>
            <FormError message=Signal::derive(move || inbox.error())/>
            <div class="bell-panel__list">{list}</div>
            <footer class="bell-panel__foot">
                <a href="/notifications" on:click=move |_| close.run(())>"See all notifications"</a>
            </footer>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_reads_well() {
        assert_eq!(accessible_name(0), "Notifications, none unread");
        assert_eq!(accessible_name(3), "Notifications, 3 unread");
        assert_eq!(announcement(0), "No unread notifications");
        assert_eq!(announcement(1), "1 unread notification");
        assert_eq!(announcement(12), "12 unread notifications");
        assert_eq!(badge_text(99), "99");
        assert_eq!(badge_text(100), "99+");
    }
}
