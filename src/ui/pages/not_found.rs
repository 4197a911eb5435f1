use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// Shown for any address that matches no page; the server answers it with status 404.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <section class="page-header">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <A href="/">"Back to the dashboard"</A></p>
        </section>
    }
}
