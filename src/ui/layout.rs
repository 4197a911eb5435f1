//! The frame around every page: header with navigation, live status and the user's menu,
//! main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    api::{
        accounts::{Logout, Role, User},
        notifications::UnreadCount,
    },
    ui::{
        components::{Bell, ConnectionIndicator},
        live::LiveConnection,
        live_notifications::Inbox,
        session::{Session, full_page_load},
    },
};

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let session = Session::expect();
    let live = LiveConnection::expect();
    let inbox = Inbox::provide();
    // The live connection needs a session: open it once the user is known.
    Effect::new(move |_| {
        if session.user().is_some() {
            live.connect();
        }
    });
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <div class="site-header__inner">
                <A href="/" attr:class="brand">
                    <img src="/favicon.svg" alt="" width="28" height="28"/>
                    <span>"Tidings"</span>
                </A>
                // The bell's count is read here, in the header's one boundary: a boundary or a
                // resource created only once the user is known would be numbered differently
                // on the server and in the hydrating browser.
                <Suspense>
                    {move || session.user().map(|user| {
                        let unread = inbox.loaded_unread().get().and_then(Result::ok);
                        view! { <SignedInHeader user unread/> }
                    })}
                </Suspense>
            </div>
        </header>
        <main id="main" class="site-main">{children()}</main>
        <footer class="site-footer">
            <p>"Tidings " {crate::VERSION} " · background work you can watch"</p>
        </footer>
    }
}

#[component]
fn SignedInHeader(user: User, unread: Option<UnreadCount>) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if matches!(logout.value().get(), Some(Ok(()))) {
            full_page_load("/login");
        }
    });
    view! {
        <nav class="site-nav" aria-label="Main">
            <A href="/" exact=true>"Dashboard"</A>
            <A href="/tasks">"Tasks"</A>
            <A href="/ingest">"Ingest"</A>
            <A href="/articles">"Articles"</A>
            {(user.role == Role::Admin).then(|| view! { <A href="/admin/users">"Users"</A> })}
        </nav>
        <ConnectionIndicator/>
        <div class="user-menu">
            <Bell loaded=unread/>
            <A href="/account" attr:class="user-menu__name">{user.display_name}</A>
            <ActionForm action=logout>
                <button class="button button--quiet" type="submit">"Sign out"</button>
            </ActionForm>
        </div>
    }
}
