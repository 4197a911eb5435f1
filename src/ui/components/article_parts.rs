//! Pieces of the article pages: the status of a stored article, a score with its bar, and
//! keywords as chips. Every text is rendered as text.

use leptos::prelude::*;

/// The statuses an article can have, in the order the filters list them.
pub const ARTICLE_STATUSES: [&str; 4] = [
    "approved",
    "filtered_relevance",
    "filtered_quality",
    "error",
];

/// What people call an article's status.
pub fn article_status_label(status: &str) -> &str {
    match status {
        "approved" => "Approved",
        "filtered_relevance" => "Filtered: relevance",
        "filtered_quality" => "Filtered: quality",
        "error" => "Error",
        other => other,
    }
}

/// The colour of a status: `ok`, `warn` or `danger`.
fn article_status_tone(status: &str) -> &'static str {
    match status {
        "approved" => "ok",
        "error" => "danger",
        _ => "warn",
    }
}

/// An article's status as a coloured label.
#[component]
pub fn ArticleStatus(status: String) -> impl IntoView {
    let tone = article_status_tone(&status);
    let label = article_status_label(&status).to_owned();
    view! {
        <span class="status" data-tone=tone data-article-status=status data-testid="article-status">
            {label}
        </span>
    }
    .into_any()
}

/// A score of 0–1 as "0.72" with a small bar (a `meter`); "—" when there is none.
#[component]
pub fn Score(score: Option<f64>, label: &'static str) -> impl IntoView {
    match score {
        Some(score) => {
            let score = score.clamp(0.0, 1.0);
            let text = format!("{score:.2}");
            view! {
                <span class="score">
                    <span class="score__value">{text}</span>
                    // A native meter draws its bar without inline styles, which the
                    // Content-Security-Policy refuses, and without the WASM.
                    <meter class="score__bar" min="0" max="1" value=score aria-label=label></meter>
                </span>
            }
            .into_any()
        }
        None => view! { <span class="muted">"—"</span> }.into_any(),
    }
}

/// Keywords as chips; nothing when there are none.
#[component]
pub fn KeywordChips(keywords: Vec<String>) -> impl IntoView {
    (!keywords.is_empty())
        .then(|| {
            view! {
                <ul class="chips">
                    {keywords.into_iter().map(|keyword| view! { <li class="chip">{keyword}</li> }).collect_view()}
                </ul>
            }
        })
        .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_label_and_a_tone() {
        for status in ARTICLE_STATUSES {
            assert_ne!(article_status_label(status), status);
        }
        assert_eq!(article_status_tone("approved"), "ok");
        assert_eq!(article_status_tone("filtered_quality"), "warn");
        assert_eq!(article_status_tone("error"), "danger");
        assert_eq!(article_status_label("unknown"), "unknown");
    }
}
