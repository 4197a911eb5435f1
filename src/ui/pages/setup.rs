use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::accounts::Setup,
    ui::{
        components::FormError,
        session::{error_message, full_page_load},
    },
};

/// First run: creates the administrator account.
#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<Setup>::new();
    Effect::new(move |_| {
        if matches!(setup.value().get(), Some(Ok(()))) {
            full_page_load("/");
        }
    });
    view! {
        <Title text="Set up"/>
        <section class="auth-card">
            <h1>"Welcome to Tidings"</h1>
            <p class="muted">"Create the administrator account. You can add more people afterwards."</p>
            <ActionForm action=setup attr:class="stack">
                <label>
                    "Username"
                    <input name="username" autocomplete="username" required minlength="3" maxlength="32"
                        pattern="[A-Za-z0-9_.\\-]+" autofocus/>
                    <small class="muted">"3–32 characters: letters, digits, _ . -"</small>
                </label>
                <label>
                    "Display name"
                    <input name="display_name" autocomplete="name" maxlength="100"/>
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="new-password" required minlength="8"/>
                </label>
                <label>
                    "Repeat the password"
                    <input type="password" name="password_confirmation" autocomplete="new-password" required minlength="8"/>
                </label>
                <FormError message=Signal::derive(move || error_message(setup.value().get()))/>
                <button class="button" type="submit" disabled=move || setup.pending().get()>
                    "Create administrator"
                </button>
            </ActionForm>
        </section>
    }
}
