//! The root of the UI: the HTML shell the server renders and the router of pages.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::ui::{
    components::Clock,
    layout::Layout,
    live::LiveConnection,
    pages::{
        AccountPage, ArticlePage, ArticlesPage, HomePage, IngestPage, LoginPage, NotFound,
        NotificationsPage, SetupPage, TaskPage, TasksPage, UsersPage,
    },
    session::Session,
};

/// The document around the app, rendered only on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Pages render with [`SsrMode::Async`]: the server waits for their data and sends complete
/// HTML, so every page works before (or without) the WASM. Which pages need a signed-in user
/// is decided before rendering, by `auth::middleware`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Session::provide();
    LiveConnection::provide();
    Clock::provide();

    view! {
        <Stylesheet id="leptos" href="/pkg/tidings.css"/>
        <Title formatter=|page: String| format!("{page} · Tidings")/>
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("tasks") view=TasksPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("tasks"), ParamSegment("id"))
                        view=TaskPage
                        ssr=SsrMode::Async
                    />
                    <Route path=StaticSegment("ingest") view=IngestPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("articles") view=ArticlesPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("articles"), ParamSegment("id"))
                        view=ArticlePage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("notifications")
                        view=NotificationsPage
                        ssr=SsrMode::Async
                    />
                    <Route path=StaticSegment("login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("setup") view=SetupPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("account") view=AccountPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("users"))
                        view=UsersPage
                        ssr=SsrMode::Async
                    />
                </Routes>
            </Layout>
        </Router>
    }
}
