use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::accounts::{Login, local_redirect_target},
    ui::{
        components::FormError,
        session::{error_message, full_page_load},
    },
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    Effect::new(move |_| {
        if matches!(login.value().get(), Some(Ok(()))) {
            full_page_load(local_redirect_target(Some(&next())));
        }
    });
    view! {
        <Title text="Sign in"/>
        <section class="auth-card">
            <h1>"Sign in"</h1>
            <ActionForm action=login attr:class="stack">
                <input type="hidden" name="next" value=next/>
                <label>
                    "Username"
                    <input name="username" autocomplete="username" required autofocus/>
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <FormError message=Signal::derive(move || error_message(login.value().get()))/>
                <button class="button" type="submit" disabled=move || login.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
        </section>
    }
}
