//! The dashboard's forms that start the ingest jobs: analyse URLs, save articles, run
//! auto-ingest, check keywords. Each is a plain form (it works before the WASM has loaded),
//! checked in the browser first once hydrated; a started job opens its task's page.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::{
    api::{
        ingest::{
            KeywordGroup, RunAutoIngest, RunKeywordCheck, StartBulkAnalysis, StartBulkSave, Topic,
            list_keyword_groups, list_topics, parse_articles, parse_lines, validate_analysis_topic,
            validate_bulk_save, validate_http_url,
        },
        tasks::Task,
    },
    error::AppError,
    ui::{components::FormError, form_check::CheckedForm, session::error_message},
};

/// Opens the page of the task an action started, once it has.
fn open_started_task(value: impl Get<Value = Option<Result<Task, AppError>>> + 'static) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(task)) = value.get() {
            navigate(&format!("/tasks/{}", task.id), Default::default());
        }
    });
}

/// The four ingest jobs, each in its card.
#[component]
pub fn JobForms() -> impl IntoView {
    let topics = Resource::new(|| (), |()| list_topics());
    let groups = Resource::new(|| (), |()| list_keyword_groups());
    view! {
        <div class="cards cards--jobs" data-testid="job-forms">
            <AnalyseUrlsCard topics/>
            <SaveArticlesCard/>
            <AutoIngestCard/>
            <KeywordCheckCard groups/>
        </div>
    }
    .into_any()
}

/// The browser's check of a bulk analysis: at least one URL, every line an http(s) URL, a topic.
fn check_bulk_analysis(args: &StartBulkAnalysis) -> Result<(), AppError> {
    let urls = parse_lines(&args.urls);
    if urls.is_empty() {
        return Err(AppError::BadRequest(
            "urls: enter at least one URL, one per line".into(),
        ));
    }
    for (index, url) in urls.iter().enumerate() {
        if validate_http_url("urls", url).is_err() {
            return Err(AppError::BadRequest(format!(
                "urls: line {} (“{url}”) is not an http:// or https:// URL",
                index + 1
            )));
        }
    }
    validate_analysis_topic(&args.topic)
}

#[component]
fn AnalyseUrlsCard(topics: Resource<Result<Vec<Topic>, AppError>>) -> impl IntoView {
    let start = ServerAction::<StartBulkAnalysis>::new();
    let pending = start.pending();
    open_started_task(start.value());
    let form = CheckedForm::new(move || error_message(start.value().get()));
    view! {
        <section class="card" aria-labelledby="analyse-heading">
            <h2 id="analyse-heading">"Analyse URLs"</h2>
            <p class="card__hint muted">"Fetch pages, judge them against a topic and store them."</p>
            <ActionForm action=start attr:class="stack">
                <label>
                    <span>"URLs " <small class="muted">"(one per line)"</small></span>
                    <textarea name="urls" rows="4" spellcheck="false" required
                        placeholder="https://example.com/article" aria-invalid=form.marks("urls")></textarea>
                </label>
                <label>
                    "Topic"
                    <input name="topic" type="text" list="job-topics" maxlength="200" autocomplete="off" required
                        aria-invalid=form.marks("topic")/>
                </label>
                <FormError message=form.error()/>
                <button class="button" type="submit" disabled=pending
                    on:click=form.on_submit_click(check_bulk_analysis)>
                    "Analyse"
                </button>
            </ActionForm>
            // Suggestions for the topic field: the topics of auto-ingest.
            <Suspense>
                {move || Suspend::new(async move {
                    let options = topics.await.unwrap_or_default().into_iter()
                        .map(|topic| view! { <option value=topic.name></option> })
                        .collect_view();
                    view! { <datalist id="job-topics">{options}</datalist> }
                })}
            </Suspense>
        </section>
    }
    .into_any()
}

/// The browser's check of a bulk save: a JSON array of objects, each with a URL and a title.
fn check_bulk_save(args: &StartBulkSave) -> Result<(), AppError> {
    validate_bulk_save(&parse_articles(&args.articles)?)
}

#[component]
fn SaveArticlesCard() -> impl IntoView {
    let start = ServerAction::<StartBulkSave>::new();
    let pending = start.pending();
    open_started_task(start.value());
    let form = CheckedForm::new(move || error_message(start.value().get()));
    view! {
        <section class="card" aria-labelledby="save-heading">
            <h2 id="save-heading">"Save articles"</h2>
            <p class="card__hint muted">"Store articles you already have, by URL."</p>
            <ActionForm action=start attr:class="stack">
                <label>
                    <span>"Articles " <small class="muted">"(a JSON array)"</small></span>
                    <textarea name="articles" rows="4" spellcheck="false" required
                        placeholder=r#"[{"url": "https://…", "title": "…", "text": "…"}]"#
                        aria-invalid=form.marks("articles")></textarea>
                </label>
                <FormError message=form.error()/>
                <button class="button" type="submit" disabled=pending
                    on:click=form.on_submit_click(check_bulk_save)>
                    "Save"
                </button>
            </ActionForm>
        </section>
    }
    .into_any()
}

#[component]
fn AutoIngestCard() -> impl IntoView {
    let run = ServerAction::<RunAutoIngest>::new();
    let pending = run.pending();
    open_started_task(run.value());
    view! {
        <section class="card" aria-labelledby="auto-ingest-heading">
            <h2 id="auto-ingest-heading">"Auto-ingest"</h2>
            <p class="card__hint muted">
                "Read every enabled feed now and keep the relevant articles. "
                <a href="/ingest">"Sources and settings"</a>
            </p>
            <ActionForm action=run>
                <button class="button" type="submit" disabled=pending>"Run auto-ingest now"</button>
            </ActionForm>
            <FormError message=Signal::derive(move || error_message(run.value().get()))/>
        </section>
    }
    .into_any()
}

#[component]
fn KeywordCheckCard(groups: Resource<Result<Vec<KeywordGroup>, AppError>>) -> impl IntoView {
    let check = ServerAction::<RunKeywordCheck>::new();
    let pending = check.pending();
    open_started_task(check.value());
    view! {
        <section class="card" aria-labelledby="keyword-check-heading">
            <h2 id="keyword-check-heading">"Check keywords"</h2>
            <p class="card__hint muted">"Look for the keywords of your groups in the stored articles."</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let options = groups.await.unwrap_or_default().into_iter()
                        .map(|group| view! { <option value=group.id.to_string()>{group.name}</option> })
                        .collect_view();
                    view! {
                        <ActionForm action=check attr:class="form form--inline">
                            <label class="grow">
                                "Group"
                                <select name="group_id">
                                    <option value="" selected>"All groups"</option>
                                    {options}
                                </select>
                            </label>
                            <button class="button" type="submit" disabled=pending>"Check keywords"</button>
                        </ActionForm>
                    }
                })}
            </Suspense>
            <FormError message=Signal::derive(move || error_message(check.value().get()))/>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(urls: &str, topic: &str) -> StartBulkAnalysis {
        StartBulkAnalysis {
            urls: urls.into(),
            topic: topic.into(),
        }
    }

    #[test]
    fn a_bulk_analysis_needs_urls_and_a_topic() {
        let error = |urls, topic| {
            check_bulk_analysis(&analysis(urls, topic))
                .unwrap_err()
                .to_string()
        };
        assert!(error(" \n ", "Rust").starts_with("urls:"));
        assert!(error("https://a.example/\nftp://b.example/", "Rust").contains("line 2"));
        assert!(error("https://a.example/", "  ").starts_with("topic:"));
        assert!(check_bulk_analysis(&analysis("https://a.example/\n\n", "Rust")).is_ok());
    }

    #[test]
    fn a_bulk_save_needs_an_array_of_articles_with_url_and_title() {
        let error = |articles: &str| {
            check_bulk_save(&StartBulkSave {
                articles: articles.into(),
            })
            .unwrap_err()
            .to_string()
        };
        assert!(error("{not json").starts_with("articles: not a JSON array"));
        assert!(error("{}").starts_with("articles: not a JSON array"));
        assert_eq!(error("[]"), "articles: must not be empty");
        assert_eq!(
            error(r#"[{"url": "https://a.example/"}]"#),
            "articles[0].title: missing"
        );
        let good = r#"[{"url": "https://a.example/", "title": "A"}]"#;
        assert!(
            check_bulk_save(&StartBulkSave {
                articles: good.into()
            })
            .is_ok()
        );
    }
}
