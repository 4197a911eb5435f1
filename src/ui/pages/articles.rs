//! `/articles`: every stored article, newest first, filtered by status, topic and words of the
//! title or URL. The filters stand in the URL (a plain GET form), pages follow a cursor.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{A, Form},
    hooks::use_query_map,
    params::ParamsMap,
};

use crate::{
    api::ingest::{Article, ArticleFilter, ArticlePage, list_articles, list_topics},
    ui::{
        components::{
            ARTICLE_STATUSES, ArticleStatus, KeywordChips, Score, TimeAgo, article_status_label,
        },
        format::{query_text, with_query},
    },
};

/// The filters of the listing, as they stand in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Filters {
    status: Option<String>,
    topic: Option<String>,
    query: Option<String>,
    before: Option<i64>,
}

impl Filters {
    fn from_query(query: &ParamsMap) -> Self {
        let text = |name| query_text(query, name);
        Filters {
            status: text("status").filter(|status| ARTICLE_STATUSES.contains(&status.as_str())),
            topic: text("topic"),
            query: text("q"),
            before: text("before").and_then(|before| before.parse().ok()),
        }
    }

    fn to_filter(&self) -> ArticleFilter {
        ArticleFilter {
            status: self.status.clone(),
            topic: self.topic.clone(),
            query: self.query.clone(),
            before: self.before,
            limit: None,
        }
    }

    fn is_filtered(&self) -> bool {
        self.status.is_some() || self.topic.is_some() || self.query.is_some()
    }

    /// The URL of this view, starting before `before` (the newest page when `None`).
    fn href(&self, before: Option<i64>) -> String {
        let pairs = [
            ("status", self.status.clone()),
            ("topic", self.topic.clone()),
            ("q", self.query.clone()),
            ("before", before.map(|before| before.to_string())),
        ];
        with_query("/articles", pairs)
    }
}

/// The host of an article's URL, to show where it comes from: `example.com`.
pub(super) fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

#[component]
pub fn ArticlesPage() -> impl IntoView {
    let query = use_query_map();
    let filters = Memo::new(move |_| query.with(Filters::from_query));
    let page = Resource::new(
        move || filters.get(),
        |filters| list_articles(filters.to_filter()),
    );
    let topics = Resource::new(|| (), |()| list_topics());
    view! {
        <Title text="Articles"/>
        <section class="page-header">
            <h1>"Articles"</h1>
            <p class="lede">"What ingestion stored, newest first: the approved articles and those it filtered out, with why."</p>
        </section>
        <section class="card" aria-labelledby="article-filters-heading">
            <h2 id="article-filters-heading" class="visually-hidden">"Filters"</h2>
            <FilterForm filters/>
            <Suspense>
                {move || Suspend::new(async move {
                    let options = topics.await.unwrap_or_default().into_iter()
                        .map(|topic| view! { <option value=topic.name></option> })
                        .collect_view();
                    view! { <datalist id="article-topics">{options}</datalist> }
                })}
            </Suspense>
        </section>
        <section class="card" aria-labelledby="article-list-heading">
            <h2 id="article-list-heading" class="visually-hidden">"Article list"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(page) => view! { <ArticleList page filters=filters.get_untracked()/> }.into_any(),
                        Err(error) => view! { <p class="form-error" role="alert">{error.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn FilterForm(filters: Memo<Filters>) -> impl IntoView {
    let value =
        move |read: fn(&Filters) -> Option<String>| move || filters.with(read).unwrap_or_default();
    let selected = move |status: Option<&'static str>| {
        move || filters.with(|filters| filters.status.as_deref() == status)
    };
    view! {
        <Form method="GET" action="/articles" attr:class="form form--inline">
            <label>
                "Status"
                <select name="status">
                    <option value="" selected=selected(None)>"Any"</option>
                    {ARTICLE_STATUSES.into_iter().map(|status| view! {
                        <option value=status selected=selected(Some(status))>{article_status_label(status)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>
                "Topic"
                <input name="topic" type="text" maxlength="200" list="article-topics" autocomplete="off"
                    prop:value=value(|filters| filters.topic.clone())/>
            </label>
            <label class="form__wide">
                "Search"
                <input name="q" type="search" maxlength="200" placeholder="Words of the title or address"
                    prop:value=value(|filters| filters.query.clone())/>
            </label>
            <button class="button" type="submit">"Filter"</button>
            <A href="/articles" attr:class="button button--quiet">"Clear"</A>
        </Form>
    }
    .into_any()
}

#[component]
fn ArticleList(page: ArticlePage, filters: Filters) -> impl IntoView {
    let older = page.next_cursor.map(|cursor| filters.href(Some(cursor)));
    let newest = filters.before.is_some().then(|| filters.href(None));
    let pager = (newest.is_some() || older.is_some()).then(|| {
        view! {
            <nav class="pager" aria-label="Pages">
                {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
                {older.map(|href| view! { <a href=href rel="next">"Older →"</a> })}
            </nav>
        }
    });
    if page.articles.is_empty() {
        let text = if filters.is_filtered() {
            "No article matches these filters."
        } else if filters.before.is_some() {
            "Nothing older."
        } else {
            "No articles yet. Run auto-ingest, or analyse URLs from the dashboard."
        };
        return view! { <p class="muted">{text}</p> {pager} }.into_any();
    }
    let rows = page
        .articles
        .into_iter()
        .map(|article| view! { <ArticleRow article/> })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="table table--stack articles-table" data-testid="articles">
                <thead>
                    <tr>
                        <th scope="col">"Article"</th>
                        <th scope="col">"Topic"</th>
                        <th scope="col">"Relevance"</th>
                        <th scope="col">"Quality"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Ingested"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {pager}
    }
    .into_any()
}

#[component]
fn ArticleRow(article: Article) -> impl IntoView {
    let Article {
        id,
        url,
        title,
        source,
        topic,
        relevance_score,
        quality_score,
        status,
        status_reason,
        matched_keywords,
        ingested_at,
        ..
    } = article;
    let origin = source.or_else(|| host_of(&url).map(str::to_owned));
    let row_status = status.clone();
    view! {
        <tr data-status-of=row_status>
            <td data-label="Article" class="article-cell">
                <a class="article-cell__title" href=format!("/articles/{id}")>{title}</a>
                {origin.map(|origin| view! { <span class="article-cell__source muted">{origin}</span> })}
                <KeywordChips keywords=matched_keywords/>
            </td>
            <td data-label="Topic">
                {match topic {
                    Some(topic) => view! { <span>{topic}</span> }.into_any(),
                    None => view! { <span class="muted">"—"</span> }.into_any(),
                }}
            </td>
            <td data-label="Relevance"><Score score=relevance_score label="Relevance"/></td>
            <td data-label="Quality"><Score score=quality_score label="Quality"/></td>
            <td data-label="Status" class="status-cell">
                <ArticleStatus status/>
                {status_reason.map(|reason| view! { <span class="status-cell__reason">{reason}</span> })}
            </td>
            <td data-label="Ingested" class="nowrap"><TimeAgo time=ingested_at/></td>
        </tr>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_url() {
        let filters = Filters {
            status: Some("approved".into()),
            topic: Some("Rust async".into()),
            query: Some("tokio & co".into()),
            before: None,
        };
        assert_eq!(
            filters.href(Some(42)),
            "/articles?status=approved&topic=Rust%20async&q=tokio%20%26%20co&before=42"
        );
        assert_eq!(Filters::default().href(None), "/articles");
        let query = ParamsMap::from_iter([
            ("status".to_owned(), "approved".to_owned()),
            ("topic".to_owned(), " Rust async ".to_owned()),
            ("q".to_owned(), "".to_owned()),
            ("before".to_owned(), "42".to_owned()),
        ]);
        let read = Filters::from_query(&query);
        assert_eq!(read.status.as_deref(), Some("approved"));
        assert_eq!(read.topic.as_deref(), Some("Rust async"));
        assert_eq!(read.query, None);
        assert_eq!(read.before, Some(42));
        let nonsense = ParamsMap::from_iter([("status".to_owned(), "deleted".to_owned())]);
        assert_eq!(Filters::from_query(&nonsense), Filters::default());
    }

    #[test]
    fn the_host_names_where_an_article_comes_from() {
        assert_eq!(host_of("https://www.example.com/a?b"), Some("example.com"));
        assert_eq!(host_of("http://127.0.0.1:8080/x"), Some("127.0.0.1:8080"));
        assert_eq!(host_of("ftp://example.com/"), None);
    }
}
