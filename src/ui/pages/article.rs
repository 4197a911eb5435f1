//! `/articles/:id`: one stored article — where it comes from, how it was judged, its summary
//! and its text. All of it comes from other sites and is rendered as text.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_params_map};

use crate::{
    api::ingest::{ArticleDetail, get_article},
    error::AppError,
    ui::{
        components::{ArticleStatus, KeywordChips, Score, TimeAgo},
        format::date_time,
    },
};

use super::articles::host_of;

#[component]
pub fn ArticlePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|params| params.get("id").and_then(|id| id.parse::<i64>().ok()));
    let article = Resource::new(id, |id| async move {
        match id {
            Some(id) => get_article(id).await,
            None => Err(AppError::NotFound),
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match article.await {
                    Ok(article) => view! { <ArticleView article/> }.into_any(),
                    Err(AppError::NotFound) => view! { <MissingArticle/> }.into_any(),
                    Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn MissingArticle() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Article not found"/>
        <section class="page-header">
            <h1>"Article not found"</h1>
            <p class="lede">"There is no such article; it may have been replaced or deleted."</p>
            <p><A href="/articles">"All articles"</A></p>
        </section>
    }
    .into_any()
}

/// The paragraphs of a text: runs of non-blank lines, separated by blank lines.
fn paragraphs(text: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    paragraphs
}

#[component]
fn ArticleView(article: ArticleDetail) -> impl IntoView {
    let ArticleDetail { article, text } = article;
    let title = article.title.clone();
    let origin = article
        .source
        .clone()
        .or_else(|| host_of(&article.url).map(str::to_owned));
    // The server stores only http(s) URLs; anything else is not made a link.
    let url = article.url.clone();
    let original = (url.starts_with("https://") || url.starts_with("http://")).then(|| {
        view! {
            <a class="button button--quiet article__original" href=url.clone() target="_blank" rel="noopener noreferrer">
                "Read the original ↗"
            </a>
        }
    });
    let published = article
        .published_at
        .map(|at| view! { <span>"Published " {date_time(at)}</span> });
    let text_paragraphs = paragraphs(&text);
    let words = text.split_whitespace().count();
    let summary = (!article.summary.trim().is_empty()).then(|| {
        let summary = article.summary.clone();
        view! {
            <section class="card" aria-labelledby="summary-heading">
                <h2 id="summary-heading">"Summary"</h2>
                <p class="article__summary">{summary}</p>
            </section>
        }
    });
    view! {
        <Title text=title.clone()/>
        <section class="page-header article__header">
            <p class="breadcrumbs"><A href="/articles">"Articles"</A></p>
            <h1 class="article__title">{title}</h1>
            <p class="article__meta muted">
                {origin.map(|origin| view! { <span>{origin}</span> })}
                {published}
                <span>"Stored " <TimeAgo time=article.ingested_at/></span>
            </p>
            <p class="article__url mono">{article.url.clone()}</p>
            {original}
        </section>
        <section class="card" aria-labelledby="judgement-heading">
            <h2 id="judgement-heading">"Judgement"</h2>
            <dl class="facts article__facts">
                <dt>"Status"</dt>
                <dd class="status-cell">
                    <ArticleStatus status=article.status.clone()/>
                    {article.status_reason.clone().map(|reason| view! { <span class="status-cell__reason">{reason}</span> })}
                </dd>
                <dt>"Topic"</dt>
                <dd>{article.topic.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>"Relevance"</dt>
                <dd><Score score=article.relevance_score label="Relevance"/></dd>
                <dt>"Quality"</dt>
                <dd><Score score=article.quality_score label="Quality"/></dd>
                <dt>"Keywords"</dt>
                <dd>
                    {if article.matched_keywords.is_empty() {
                        view! { <span class="muted">"None matched"</span> }.into_any()
                    } else {
                        view! { <KeywordChips keywords=article.matched_keywords.clone()/> }.into_any()
                    }}
                </dd>
            </dl>
        </section>
        {summary}
        <section class="card" aria-labelledby="text-heading">
            <h2 id="text-heading">
                "Text " <small class="muted">{format!("{words} words")}</small>
            </h2>
            {if text_paragraphs.is_empty() {
                view! { <p class="muted">"No text was stored for this article."</p> }.into_any()
            } else {
                view! {
                    <div class="article__text" data-testid="article-text">
                        {text_paragraphs.into_iter().map(|paragraph| view! { <p>{paragraph}</p> }).collect_view()}
                    </div>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_split_at_blank_lines() {
        let text = "First line\nsame paragraph\n\n  \nSecond\n\n\nThird  \n";
        assert_eq!(
            paragraphs(text),
            vec!["First line\nsame paragraph", "Second", "Third"]
        );
        assert!(paragraphs(" \n\n").is_empty());
    }
}
