//! Quality control of extracted text: is there an article at all, or only a cookie wall, a
//! paywall or a "please enable JavaScript" page; and a fingerprint to spot the same text stored
//! under another URL.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::text::{count_phrase, sentences, words};

/// The limits of [`quality`].
#[derive(Clone, Debug, PartialEq)]
pub struct QualitySettings {
    /// Texts shorter than this (in characters) are [`QualityIssue::TooShort`].
    pub min_length_chars: usize,
    /// Texts whose share of boilerplate sentences (by characters) reaches this are
    /// [`QualityIssue::Boilerplate`].
    pub max_boilerplate_share: f64,
}

impl Default for QualitySettings {
    fn default() -> Self {
        QualitySettings {
            min_length_chars: 200,
            max_boilerplate_share: 0.5,
        }
    }
}

/// A quality score in `0.0..=1.0` and, when the text should not be kept, why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quality {
    pub score: f64,
    pub issue: Option<QualityIssue>,
}

/// Why a text fails quality control; its `Display` is the reason stored with a filtered
/// article.
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QualityIssue {
    #[error("no text")]
    Empty,
    #[error("mostly cookie, consent, paywall or script notices")]
    Boilerplate,
    #[error("too short: {length_chars} characters, at least {min_length_chars} needed")]
    TooShort {
        length_chars: usize,
        min_length_chars: usize,
    },
}

/// Phrases of the notices that stand in for an article when a site does not show it to a
/// crawler. A sentence holding one is boilerplate.
const BOILERPLATE_PHRASES: &[&str] = &[
    "cookie",
    "cookies",
    "consent",
    "privacy policy",
    "accept all",
    "manage preferences",
    "enable javascript",
    "javascript is disabled",
    "javascript is required",
    "your browser",
    "ad blocker",
    "adblocker",
    "paywall",
    "subscribe to continue",
    "subscribe to read",
    "subscribers only",
    "already a subscriber",
    "sign in to continue",
    "log in to continue",
    "free articles",
    "article limit",
];

/// Scores `text`: its length up to the minimum times the share of it that is not boilerplate.
/// The issue is the first that applies of empty, boilerplate and too short.
pub fn quality(text: &str, settings: &QualitySettings) -> Quality {
    let length_chars = text.trim().chars().count();
    if words(text).is_empty() {
        return Quality {
            score: 0.0,
            issue: Some(QualityIssue::Empty),
        };
    }
    let boilerplate = boilerplate_share(text);
    let length_factor = (length_chars as f64 / settings.min_length_chars.max(1) as f64).min(1.0);
    let issue = if boilerplate >= settings.max_boilerplate_share {
        Some(QualityIssue::Boilerplate)
    } else if length_chars < settings.min_length_chars {
        Some(QualityIssue::TooShort {
            length_chars,
            min_length_chars: settings.min_length_chars,
        })
    } else {
        None
    };
    Quality {
        score: length_factor * (1.0 - boilerplate),
        issue,
    }
}

/// The share of `text`'s sentences, weighted by their length, that hold a boilerplate phrase.
fn boilerplate_share(text: &str) -> f64 {
    let phrases: Vec<Vec<String>> = BOILERPLATE_PHRASES
        .iter()
        .map(|phrase| words(phrase))
        .collect();
    let (mut boilerplate, mut total) = (0, 0);
    for sentence in sentences(text) {
        let length = sentence.chars().count();
        let sentence_words = words(sentence);
        total += length;
        if phrases
            .iter()
            .any(|phrase| count_phrase(&sentence_words, phrase) > 0)
        {
            boilerplate += length;
        }
    }
    boilerplate as f64 / total.max(1) as f64
}

/// A hash of the text's words (folded, without punctuation or layout), so that the same article
/// re-published with other markup, spacing or capitalisation has the same fingerprint.
pub fn content_fingerprint(text: &str) -> String {
    format!("{:x}", Sha256::digest(words(text).join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = "The regional parliament approved the budget for next year after a \
        long debate. Schools and hospitals receive more money, while road building is cut. \
        The opposition announced that it would challenge two items in court.";

    fn settings() -> QualitySettings {
        QualitySettings {
            min_length_chars: 100,
            ..Default::default()
        }
    }

    #[test]
    fn a_real_article_passes_with_full_score() {
        assert_eq!(
            quality(ARTICLE, &settings()),
            Quality {
                score: 1.0,
                issue: None
            }
        );
    }

    #[test]
    fn whitespace_or_punctuation_only_is_empty() {
        for text in ["", "  \n\n ", "— … !"] {
            assert_eq!(
                quality(text, &settings()).issue,
                Some(QualityIssue::Empty),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_short_text_is_too_short_with_a_lower_score() {
        let found = quality("Budget approved.", &settings());
        assert_eq!(
            found.issue,
            Some(QualityIssue::TooShort {
                length_chars: 16,
                min_length_chars: 100
            })
        );
        assert!(found.score < 0.2);
        assert_eq!(
            found.issue.unwrap().to_string(),
            "too short: 16 characters, at least 100 needed"
        );
    }

    #[test]
    fn cookie_walls_and_script_notices_are_boilerplate() {
        let pages = [
            "We use cookies to improve your experience. By clicking Accept all you consent to \
             our use of cookies as described in our Privacy Policy. Manage preferences.",
            "Please enable JavaScript to view this page. Your browser does not support the \
             features this site needs. Reload after enabling it.",
            "You have reached your free articles limit. Subscribe to continue reading. Already \
             a subscriber? Sign in to continue.",
        ];
        for page in pages {
            let found = quality(&page.repeat(3), &settings());
            assert_eq!(found.issue, Some(QualityIssue::Boilerplate), "{page}");
            assert!(found.score < 0.5, "{page}");
        }
    }

    #[test]
    fn one_cookie_notice_in_a_long_article_is_tolerated() {
        let text = format!("{ARTICLE} We use cookies. {ARTICLE}");
        let found = quality(&text, &settings());
        assert_eq!(found.issue, None);
        assert!(found.score > 0.8 && found.score < 1.0, "{}", found.score);
    }

    #[test]
    fn fingerprints_ignore_layout_case_and_punctuation_but_not_words() {
        let reformatted = ARTICLE
            .to_uppercase()
            .replace(". ", ".\n\n  ")
            .replace(',', "");
        assert_eq!(
            content_fingerprint(ARTICLE),
            content_fingerprint(&reformatted)
        );
        assert_ne!(
            content_fingerprint(ARTICLE),
            content_fingerprint(&ARTICLE.replace("two", "three"))
        );
        assert_eq!(content_fingerprint(ARTICLE).len(), 64);
    }
}
