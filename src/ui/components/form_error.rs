use leptos::prelude::*;

/// The error of a form, announced to screen readers; takes no space when there is none.
#[component]
pub fn FormError(#[prop(into)] message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || message.get().is_some()>
            <p class="form-error" role="alert">{move || message.get()}</p>
        </Show>
    }
}
