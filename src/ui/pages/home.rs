use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::system::{SystemStatus, get_system_status},
    ui::{
        format::date_time,
        live::{ConnectionState, LiveConnection},
    },
};

/// The dashboard: what the server runs on, and this tab's live connection.
#[component]
pub fn HomePage() -> impl IntoView {
    let status = Resource::new(|| (), |()| get_system_status());
    view! {
        <Title text="Dashboard"/>
        <section class="page-header">
            <h1>"Dashboard"</h1>
            <p class="lede">
                "Tidings runs long background work and shows it to you live: progress as it "
                "happens, and a notification when it is done."
            </p>
        </section>
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
