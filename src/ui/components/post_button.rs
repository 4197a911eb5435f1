use leptos::prelude::*;

/// A button of a one-button form: in the hydrated page it runs `on_press`; before the WASM has
/// loaded (or without it) it posts the form to the server function at `action`, which answers
/// with a redirect back to the page. `field` names the one value the server function takes,
/// sent only while `value` has one.
#[component]
pub fn PostButton(
    action: &'static str,
    label: &'static str,
    /// The accessible name, when the label alone would be ambiguous (one button per item).
    #[prop(optional, into)]
    name: Option<String>,
    #[prop(optional)] field: Option<&'static str>,
    #[prop(optional, into)] value: Signal<Option<i64>>,
    #[prop(optional, into)] disabled: Signal<bool>,
    #[prop(into)] on_press: Callback<()>,
) -> impl IntoView {
    let hidden_field = field.map(|field| {
        view! {
            <input
                type="hidden"
                name=field
                value=move || value.get().map(|value| value.to_string())
                disabled=move || value.with(Option::is_none)
            />
        }
    });
    view! {
        <form
            class="post-button"
            method="post"
            action=action
            on:submit=move |event| {
                event.prevent_default();
                on_press.run(());
            }
        >
            {hidden_field}
            <button class="button button--quiet" type="submit" aria-label=name disabled=disabled>
                {label}
            </button>
        </form>
    }
    .into_any()
}
