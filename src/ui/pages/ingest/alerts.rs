//! Keyword alerts: the unread ones, each a link to its article, marked read one by one or all
//! at once. Plain forms, so they work before the WASM has loaded.

use leptos::prelude::*;

use crate::{
    api::ingest::KeywordAlert,
    error::AppError,
    ui::{
        components::{FormError, KeywordChips, TimeAgo},
        session::error_message,
    },
};

use super::{IngestActions, Loaded};

#[component]
pub(super) fn AlertsCard(
    alerts: Resource<Result<Vec<KeywordAlert>, AppError>>,
    actions: IngestActions,
) -> impl IntoView {
    let mark_read = actions.mark_read;
    let marked = move || match mark_read.value().get() {
        Some(Ok(1)) => Some("Marked 1 alert read.".to_owned()),
        Some(Ok(count)) if count > 1 => Some(format!("Marked {count} alerts read.")),
        _ => None,
    };
    view! {
        <section class="card" aria-labelledby="alerts-heading">
            <div class="card__head">
                <h2 id="alerts-heading">"Keyword alerts"</h2>
                <ActionForm action=mark_read>
                    <button class="button button--quiet" type="submit" disabled=actions.marking>
                        "Mark all read"
                    </button>
                </ActionForm>
            </div>
            <FormError message=Signal::derive(move || error_message(mark_read.value().get()))/>
            <p class="form-success" role="status">{marked}</p>
            <Loaded resource=alerts show=move |alerts| view! { <AlertList alerts actions/> }/>
        </section>
    }
    .into_any()
}

#[component]
fn AlertList(alerts: Vec<KeywordAlert>, actions: IngestActions) -> impl IntoView {
    if alerts.is_empty() {
        return view! { <p class="muted">"No unread alerts."</p> }.into_any();
    }
    let items = alerts
        .into_iter()
        .map(|alert| {
            let KeywordAlert {
                id,
                article_id,
                article_title,
                group_name,
                matched_keywords,
                created_at,
                ..
            } = alert;
            view! {
                <li class="item alert" data-testid="alert">
                    <div class="item__body">
                        <a class="item__name" href=format!("/articles/{article_id}")>{article_title.clone()}</a>
                        <p class="item__text muted">
                            <span class="alert__group">{group_name}</span>
                            " · "
                            <TimeAgo time=created_at/>
                        </p>
                        <KeywordChips keywords=matched_keywords/>
                    </div>
                    <div class="item__actions">
                        <ActionForm action=actions.mark_read>
                            <input type="hidden" name="id" value=id/>
                            <button class="button button--quiet" type="submit"
                                aria-label=format!("Mark read: {article_title}")>"Mark read"</button>
                        </ActionForm>
                    </div>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="items" data-testid="alerts">{items}</ul> }.into_any()
}
