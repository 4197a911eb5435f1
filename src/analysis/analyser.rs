//! One interface for judging an article against a topic, so that the ingest jobs need not know
//! whether a language model or the deterministic scoring answers.

use futures::future::BoxFuture;

use super::{
    relevance::{Relevance, TopicProfile, relevance},
    summary::summarize,
};

/// An article's relevance to a topic and its summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub relevance: Relevance,
    pub summary: String,
}

/// Why an analyser gave no answer; [`FallbackAnalyser`] then asks the deterministic one.
#[derive(Debug, thiserror::Error)]
pub enum AnalyserError {
    #[error("the analysis service could not be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the analysis service answered with HTTP status {0}")]
    Status(u16),
    #[error("the analysis service gave an unusable answer: {0}")]
    InvalidAnswer(String),
}

/// Judges an article (its title and main text) against a topic.
pub trait Analyser: Send + Sync {
    fn analyse<'a>(
        &'a self,
        profile: &'a TopicProfile,
        title: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Analysis, AnalyserError>>;
}

/// The deterministic analyser: [`relevance`] and [`summarize`]. It cannot fail.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalAnalyser {
    pub summary_sentences: usize,
}

impl Default for LocalAnalyser {
    fn default() -> Self {
        LocalAnalyser {
            summary_sentences: 3,
        }
    }
}

impl LocalAnalyser {
    pub fn analyse_now(&self, profile: &TopicProfile, title: &str, text: &str) -> Analysis {
        Analysis {
            relevance: relevance(profile, title, text),
            summary: summarize(text, profile, self.summary_sentences),
        }
    }
}

impl Analyser for LocalAnalyser {
    fn analyse<'a>(
        &'a self,
        profile: &'a TopicProfile,
        title: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Analysis, AnalyserError>> {
        Box::pin(std::future::ready(Ok(
            self.analyse_now(profile, title, text)
        )))
    }
}

/// Asks `primary` and, when it fails, the deterministic analyser: an outage of an optional
/// service must not fail the articles.
pub struct FallbackAnalyser {
    primary: Box<dyn Analyser>,
    fallback: LocalAnalyser,
}

impl FallbackAnalyser {
    pub fn new(primary: impl Analyser + 'static, fallback: LocalAnalyser) -> Self {
        FallbackAnalyser {
            primary: Box::new(primary),
            fallback,
        }
    }
}

impl Analyser for FallbackAnalyser {
    fn analyse<'a>(
        &'a self,
        profile: &'a TopicProfile,
        title: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Analysis, AnalyserError>> {
        Box::pin(async move {
            match self.primary.analyse(profile, title, text).await {
                Ok(analysis) => Ok(analysis),
                Err(error) => {
                    tracing::warn!(%error, "analysis falls back to the deterministic analyser");
                    Ok(self.fallback.analyse_now(profile, title, text))
                }
            }
        })
    }
}
