//! `bulk_analysis`: fetches each URL, extracts the page's title and main text, judges it
//! against the topic, writes a summary and stores the article. Items go through the shared
//! [`AnalysisQueue`](super::analysis_queue::AnalysisQueue); a URL that fails is listed with its
//! reason and the others go on — the task fails only when every URL failed.

use chrono::Utc;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use super::{AnalysisTools, analysis_queue::ItemError};
use crate::{
    analysis::{extract::extract_article, quality::content_fingerprint, relevance::TopicProfile},
    db::{ArticleRecord, ArticleStatus},
    engine::{Job, JobContext, JobError, JobOptions},
};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BulkAnalysisInput {
    pub urls: Vec<String>,
    pub topic: String,
    /// Accepted for the original's clients; the deterministic analyser has one kind of
    /// summary.
    #[serde(default)]
    pub summary_type: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default)]
    pub summary_length: Option<serde_json::Value>,
    #[serde(default)]
    pub summary_voice: Option<String>,
}

impl BulkAnalysisInput {
    /// A request with the default summary options.
    pub fn new(urls: Vec<String>, topic: String) -> Self {
        BulkAnalysisInput {
            urls,
            topic,
            summary_type: None,
            model_name: None,
            summary_length: None,
            summary_voice: None,
        }
    }
}

/// One analysed article, as the task's result lists it.
#[derive(Debug, Serialize)]
pub struct AnalysedArticle {
    pub url: String,
    pub title: String,
    pub relevance_score: f64,
    pub matched_keywords: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Serialize)]
pub struct FailedUrl {
    pub url: String,
    pub error: String,
}

#[derive(Debug, Default, Serialize)]
pub struct BulkAnalysisOutput {
    pub summary: String,
    pub articles: Vec<AnalysedArticle>,
    pub failures: Vec<FailedUrl>,
}

pub struct BulkAnalysis {
    tools: AnalysisTools,
}

impl BulkAnalysis {
    pub fn new(tools: AnalysisTools) -> Self {
        BulkAnalysis { tools }
    }

    /// Fetches, extracts and judges one page, and stores it.
    async fn analyse(
        &self,
        ctx: &JobContext,
        profile: &TopicProfile,
        url: &str,
    ) -> Result<AnalysedArticle, String> {
        let page = self
            .tools
            .fetcher
            .fetch(url)
            .await
            .map_err(|error| error.to_string())?;
        let extracted = extract_article(&page.text());
        if extracted.text.trim().is_empty() {
            return Err(format!("{url}: the page has no text"));
        }
        let title = extracted.title.unwrap_or_else(|| url.to_owned());
        let analysis = self
            .tools
            .analyser
            .analyse(profile, &title, &extracted.text)
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        let article = ArticleRecord {
            url: url.to_owned(),
            title: title.clone(),
            source: page.url.host_str().map(str::to_owned),
            published_at: None,
            summary: analysis.summary.clone(),
            content_fingerprint: Some(content_fingerprint(&extracted.text)),
            text: extracted.text,
            topic: Some(profile.name.clone()),
            relevance_score: Some(analysis.relevance.score),
            quality_score: None,
            status: ArticleStatus::Approved,
            status_reason: None,
            matched_keywords: analysis.relevance.matched_keywords.clone(),
        };
        ctx.db()
            .upsert_article(&article, Some(ctx.task().id), Utc::now())
            .await
            .map_err(|error| format!("{url}: cannot store the article: {error}"))?;
        Ok(AnalysedArticle {
            url: url.to_owned(),
            title,
            relevance_score: analysis.relevance.score,
            matched_keywords: analysis.relevance.matched_keywords,
            summary: analysis.summary,
        })
    }
}

impl Job for BulkAnalysis {
    const KIND: &'static str = "bulk_analysis";
    type Input = BulkAnalysisInput;
    type Output = BulkAnalysisOutput;

    fn options(&self) -> JobOptions {
        JobOptions {
            // Each item has its own timeout in the queue; this bounds a whole task.
            timeout: std::time::Duration::from_secs(6 * 60 * 60),
            ..JobOptions::default()
        }
    }

    async fn run(
        &self,
        ctx: JobContext,
        input: BulkAnalysisInput,
    ) -> Result<BulkAnalysisOutput, JobError> {
        // A stored topic of that name brings its description and keywords; any other topic
        // is judged by its name alone.
        let profile = match ctx.db().topic_by_name(input.topic.trim()).await? {
            Some(topic) => TopicProfile::from(&topic),
            None => TopicProfile {
                name: input.topic.clone(),
                description: String::new(),
                keywords: Vec::new(),
            },
        };
        ctx.set_total(input.urls.len() as u64);
        ctx.set_stage("analysing", Some(&format!("{} URLs", input.urls.len())))
            .await;
        let cancel = &ctx.cancellation_token();
        let (queue, ctx_ref, profile) = (&self.tools.queue, &ctx, &profile);
        // Every URL is offered to the queue at once; the queue's places and workers decide
        // what runs, first come first served across tasks. Each item records its own outcome:
        // the loop below must not wait for the database while an item it holds may have the
        // (on SQLite, only) connection.
        let mut results = stream::iter(input.urls.iter().cloned())
            .map(|url| async move {
                // `None`: the task was cancelled.
                let analysed = match queue
                    .process(cancel, self.analyse(ctx_ref, profile, &url))
                    .await
                {
                    Ok(analysed) => analysed,
                    Err(ItemError::Cancelled) => return None,
                    Err(timed_out) => Err(format!("{url}: {timed_out}")),
                };
                if let Err(error) = &analysed {
                    ctx_ref.record_error(Some(&url), error).await;
                }
                ctx_ref.advance(1, Some(&url));
                Some(analysed.map_err(|error| FailedUrl { url, error }))
            })
            .buffer_unordered(input.urls.len().max(1));
        let mut output = BulkAnalysisOutput::default();
        while let Some(analysed) = results.next().await {
            match analysed {
                Some(Ok(article)) => output.articles.push(article),
                Some(Err(failure)) => output.failures.push(failure),
                None => return Err(JobError::cancelled()),
            }
        }
        if output.articles.is_empty() {
            let first = output.failures.first().map_or("", |failure| &failure.error);
            return Err(JobError::permanent(format!(
                "every URL failed ({}); the first: {first}",
                output.failures.len()
            )));
        }
        output.summary = format!(
            "{} of {} URLs analysed for “{}”, {} failed",
            output.articles.len(),
            input.urls.len(),
            input.topic,
            output.failures.len()
        );
        Ok(output)
    }
}
