use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::accounts::{
        ApiTokenInfo, ChangePassword, CreateApiToken, RevokeApiToken, list_api_tokens,
    },
    ui::{components::FormError, format::date_time, session::Session, session::error_message},
};

/// The signed-in user's own account: password and personal API tokens.
#[component]
pub fn AccountPage() -> impl IntoView {
    let session = Session::expect();
    view! {
        <Title text="Account"/>
        <section class="page-header">
            <h1>"Your account"</h1>
            <Suspense>
                {move || session.user().map(|user| view! {
                    <p class="lede">
                        {user.display_name} " · " <code>{user.username}</code> " · " {user.role.as_str()}
                    </p>
                })}
            </Suspense>
        </section>
        <div class="cards">
            <ChangePasswordCard/>
            <ApiTokensCard/>
        </div>
    }
}

#[component]
fn ChangePasswordCard() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let changed = move || matches!(change.value().get(), Some(Ok(())));
    view! {
        <section class="card" aria-labelledby="password-heading">
            <h2 id="password-heading">"Password"</h2>
            <ActionForm action=change attr:class="stack">
                <label>
                    "Current password"
                    <input type="password" name="current_password" autocomplete="current-password" required/>
                </label>
                <label>
                    "New password"
                    <input type="password" name="new_password" autocomplete="new-password" required minlength="8"/>
                </label>
                <label>
                    "Repeat the new password"
                    <input type="password" name="new_password_confirmation" autocomplete="new-password" required minlength="8"/>
                </label>
                <FormError message=Signal::derive(move || error_message(change.value().get()))/>
                <Show when=changed>
                    <p class="form-success" role="status">"Password changed. Your other sessions were signed out."</p>
                </Show>
                <button class="button" type="submit" disabled=move || change.pending().get()>"Change password"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn ApiTokensCard() -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_tokens(),
    );
    let created_secret = move || {
        create
            .value()
            .get()
            .and_then(Result::ok)
            .map(|created| created.secret)
    };
    view! {
        <section class="card" aria-labelledby="tokens-heading">
            <h2 id="tokens-heading">"API tokens"</h2>
            <p class="muted">
                "Scripts authenticate with " <code>"Authorization: Bearer <token>"</code>
                " on the REST API and the WebSocket."
            </p>
            <ActionForm action=create attr:class="inline-form">
                <label class="grow">
                    "Name"
                    <input name="name" required maxlength="100" placeholder="e.g. nightly import"/>
                </label>
                <button class="button" type="submit" disabled=move || create.pending().get()>"Create token"</button>
            </ActionForm>
            <FormError message=Signal::derive(move || error_message(create.value().get()))/>
            {move || created_secret().map(|secret| view! {
                <div class="secret" role="status">
                    <p>"Copy this token now: it will not be shown again."</p>
                    <code data-testid="new-token">{secret}</code>
                </div>
            })}
            <FormError message=Signal::derive(move || error_message(revoke.value().get()))/>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || tokens.get().map(|result| match result {
                    Ok(tokens) if tokens.is_empty() => view! { <p class="muted">"No tokens yet."</p> }.into_any(),
                    Ok(tokens) => view! { <TokenList tokens revoke/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TokenList(tokens: Vec<ApiTokenInfo>, revoke: ServerAction<RevokeApiToken>) -> impl IntoView {
    view! {
        <ul class="token-list">
            {tokens.into_iter().map(|token| {
                let used = token.last_used_at.map_or_else(|| "never used".to_owned(), |t| format!("last used {}", date_time(t)));
                view! {
                    <li>
                        <div>
                            <strong>{token.name}</strong>
                            <small class="muted">"created " {date_time(token.created_at)} " · " {used}</small>
                        </div>
                        <ActionForm action=revoke>
                            <input type="hidden" name="id" value=token.id/>
                            <button class="button button--quiet" type="submit">"Revoke"</button>
                        </ActionForm>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}
