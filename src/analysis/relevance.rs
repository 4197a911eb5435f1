//! How relevant an article is to a topic: a deterministic score from 0 to 1 that a person can
//! check by hand, with the keywords that produced it.
//!
//! Each term of the topic (every keyword as a phrase, the significant words of its name and of
//! its description) is evidence. A term's hits saturate (`hits / (hits + 1)`, a title hit
//! counting as three body hits), so a long text repeating a word cannot win by length;
//! the terms then combine as independent evidence (`1 - Π(1 - weight × saturation)`), and the
//! result is divided by what a text hitting every term would get, so that a topic with one
//! keyword can score as high as a topic with twenty.

use serde::Serialize;

use super::text::{count_phrase, is_significant, words};

/// What an article is scored against: a topic as its owner described it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicProfile {
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
}

impl From<&crate::api::ingest::Topic> for TopicProfile {
    fn from(topic: &crate::api::ingest::Topic) -> Self {
        TopicProfile {
            name: topic.name.clone(),
            description: topic.description.clone(),
            keywords: topic.keywords.clone(),
        }
    }
}

/// A relevance score in `0.0..=1.0` and the keywords of the topic found in the article, in the
/// topic's order and spelling.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Relevance {
    pub score: f64,
    pub matched_keywords: Vec<String>,
}

/// How much one term can contribute, by where it comes from: keywords are the owner's explicit
/// signal, the name nearly as strong, the description only a hint.
const KEYWORD_WEIGHT: f64 = 0.5;
const NAME_WEIGHT: f64 = 0.4;
const DESCRIPTION_WEIGHT: f64 = 0.15;
/// A hit in the title counts as this many hits in the body: the title says what the article is
/// about.
const TITLE_HITS: f64 = 3.0;

/// One thing to look for: a phrase of folded words and how much finding it counts.
#[derive(Debug)]
pub(crate) struct Term<'a> {
    pub(crate) words: Vec<String>,
    pub(crate) weight: f64,
    /// The keyword as the owner wrote it, for terms that are keywords.
    keyword: Option<&'a str>,
}

/// The terms of a topic, strongest source first; a term found in several sources keeps the
/// strongest weight.
pub(crate) fn topic_terms(profile: &TopicProfile) -> Vec<Term<'_>> {
    let keywords = profile.keywords.iter().map(|keyword| Term {
        words: words(keyword),
        weight: KEYWORD_WEIGHT,
        keyword: Some(keyword.as_str()),
    });
    let significant_words = |text: &str, weight: f64| {
        words(text)
            .into_iter()
            .filter(|word| is_significant(word))
            .map(move |word| Term {
                words: vec![word],
                weight,
                keyword: None,
            })
    };
    let candidates = keywords
        .chain(significant_words(&profile.name, NAME_WEIGHT))
        .chain(significant_words(&profile.description, DESCRIPTION_WEIGHT));
    let mut terms: Vec<Term> = Vec::new();
    for term in candidates {
        if !term.words.is_empty() && !terms.iter().any(|known| known.words == term.words) {
            terms.push(term);
        }
    }
    terms
}

/// Scores `title` and `text` against `profile`; see the module documentation for the formula.
pub fn relevance(profile: &TopicProfile, title: &str, text: &str) -> Relevance {
    let terms = topic_terms(profile);
    let title_words = words(title);
    let text_words = words(text);
    let mut unexplained = 1.0;
    let mut unexplained_at_best = 1.0;
    let mut matched_keywords = Vec::new();
    for term in &terms {
        let hits = TITLE_HITS * count_phrase(&title_words, &term.words) as f64
            + count_phrase(&text_words, &term.words) as f64;
        unexplained *= 1.0 - term.weight * hits / (hits + 1.0);
        unexplained_at_best *= 1.0 - term.weight;
        if hits > 0.0 {
            matched_keywords.extend(term.keyword.map(str::to_owned));
        }
    }
    let score = if terms.is_empty() {
        0.0
    } else {
        ((1.0 - unexplained) / (1.0 - unexplained_at_best)).clamp(0.0, 1.0)
    };
    Relevance {
        score,
        matched_keywords,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rust_topic() -> TopicProfile {
        TopicProfile {
            name: "Rust programming".into(),
            description: "News about the Rust language, its compiler and crates".into(),
            keywords: vec!["borrow checker".into(), "Cargo".into(), "async".into()],
        }
    }

    fn score(title: &str, text: &str) -> f64 {
        relevance(&rust_topic(), title, text).score
    }

    #[test]
    fn unrelated_text_scores_zero_and_matches_nothing() {
        let found = relevance(
            &rust_topic(),
            "Weather",
            "Sunny with light winds in the afternoon.",
        );
        assert_eq!(
            found,
            Relevance {
                score: 0.0,
                matched_keywords: vec![]
            }
        );
    }

    #[test]
    fn matched_keywords_keep_the_topics_spelling_and_order() {
        let found = relevance(
            &rust_topic(),
            "async in practice",
            "The BORROW-CHECKER and cargo agree.",
        );
        assert_eq!(found.matched_keywords, ["borrow checker", "Cargo", "async"]);
    }

    #[test]
    fn a_title_hit_counts_more_than_a_body_hit() {
        assert!(score("Cargo workspaces", "A guide.") > score("A guide", "Cargo workspaces."));
    }

    #[test]
    fn more_hits_and_more_terms_raise_the_score() {
        let once = score("", "Cargo builds code.");
        let twice = score("", "Cargo builds code. Cargo tests code.");
        let two_terms = score("", "Cargo builds async code.");
        assert!(
            0.0 < once && once < twice && twice < two_terms,
            "{once} {twice} {two_terms}"
        );
    }

    #[test]
    fn repetition_saturates_so_length_does_not_win() {
        let focused = score("Cargo and the borrow checker", "Async Rust with cargo.");
        let padded = score("", &"Cargo is mentioned again. ".repeat(2_000));
        assert!(padded < focused, "{padded} >= {focused}");
        assert!(padded <= 1.0);
    }

    #[test]
    fn an_article_on_every_term_scores_close_to_one() {
        let title = "Rust programming: the borrow checker, Cargo and async";
        let text = "News about the Rust language, its compiler and crates. ".repeat(20);
        assert!(score(title, &text) > 0.9);
    }

    #[test]
    fn matching_ignores_case_and_diacritics() {
        let topic = TopicProfile {
            keywords: vec!["Café Société".into()],
            ..Default::default()
        };
        assert_eq!(
            relevance(&topic, "", "the CAFE SOCIETE opened").matched_keywords,
            ["Café Société"]
        );
    }

    #[test]
    fn multi_word_keywords_match_only_as_phrases() {
        assert_eq!(score("", "The borrow of a checker."), 0.0);
        assert!(score("", "The borrow checker.") > 0.0);
    }

    #[test]
    fn description_function_words_are_not_terms() {
        assert_eq!(score("", "The news about its and the."), score("", "News."));
    }

    #[test]
    fn a_topic_without_terms_scores_zero() {
        assert_eq!(
            relevance(&TopicProfile::default(), "Anything", "At all.").score,
            0.0
        );
    }

    proptest! {
        #[test]
        fn the_score_stays_between_zero_and_one(title in ".{0,80}", text in ".{0,400}") {
            let score = score(&title, &text);
            prop_assert!((0.0..=1.0).contains(&score));
        }

        #[test]
        fn adding_a_keyword_never_lowers_the_score(text in "[a-z ]{0,200}") {
            let before = score("", &text);
            let after = score("", &format!("{text} cargo"));
            prop_assert!(after >= before, "{after} < {before}");
        }
    }
}
