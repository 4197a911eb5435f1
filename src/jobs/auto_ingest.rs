//! `auto_ingest`: reads every enabled feed, skips the articles stored already, then analyses
//! the new ones in batches — relevance to the source's topic, then quality control — and
//! stores each with its verdict: approved, filtered (with the reason) or an error.
//!
//! Stages: `initializing`, `fetching`, `processing batch b/B`, `saving` (message "batch b of
//! B"), `completed`. Each finished batch reports the counters as detail, which the original's
//! clients receive as a `batch_update`. One run at a time in the whole cluster.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use chrono::Utc;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AnalysisTools, analysis_queue::ItemError};
use crate::{
    analysis::{
        analyser::Analysis,
        extract::extract_article,
        feed::{FeedItem, parse_feed},
        quality::{QualitySettings, content_fingerprint, quality},
        relevance::TopicProfile,
    },
    api::ingest::{AutoIngestConfig, Source},
    db::{ArticleRecord, ArticleStatus},
    engine::{Job, JobContext, JobError, JobOptions, NotificationTypes},
};

/// Most new articles one run takes; the rest wait for the next run (they are not stored, so
/// it finds them new).
pub const MAX_ARTICLES_PER_RUN: usize = 1000;
/// Feeds fetched at once.
const FEEDS_AT_ONCE: usize = 4;

/// A run takes no parameters: it reads the stored configuration and sources.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoIngestInput {}

/// What a run did, by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub processed: u64,
    pub approved: u64,
    pub filtered_relevance: u64,
    pub filtered_quality: u64,
    pub errors: u64,
}

impl Counters {
    fn count(&mut self, status: ArticleStatus) {
        self.processed += 1;
        match status {
            ArticleStatus::Approved => self.approved += 1,
            ArticleStatus::FilteredRelevance => self.filtered_relevance += 1,
            ArticleStatus::FilteredQuality => self.filtered_quality += 1,
            ArticleStatus::Error => self.errors += 1,
        }
    }
}

/// How one feed went.
#[derive(Debug, Serialize)]
pub struct FeedReport {
    pub source: String,
    pub feed_url: String,
    /// Articles the feed lists.
    pub listed: usize,
    /// Of those, not stored before.
    pub new: usize,
    pub error: Option<String>,
}

/// One article's verdict, in the run's log.
#[derive(Debug, Serialize)]
pub struct ArticleLog {
    pub url: String,
    pub title: String,
    pub batch: usize,
    pub status: &'static str,
    pub reason: Option<String>,
    pub relevance_score: Option<f64>,
    pub quality_score: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct AutoIngestOutput {
    pub summary: String,
    pub counters: Counters,
    /// New articles left for the next run (more than one run takes).
    pub deferred: usize,
    pub feeds: Vec<FeedReport>,
    pub articles: Vec<ArticleLog>,
}

/// A new article found in a feed, with what it is judged against.
struct Candidate {
    item: FeedItem,
    source: String,
    profiles: Arc<[TopicProfile]>,
}

/// What a run decides and shares between its batches.
struct Run<'a> {
    ctx: &'a JobContext,
    tools: &'a AnalysisTools,
    config: AutoIngestConfig,
    total_batches: usize,
    /// Fingerprints of the texts this run stored: a copy in the same run is a duplicate too.
    fingerprints: Mutex<HashSet<String>>,
    /// Held by [`Run::save`] from the duplicate check until the article is stored: otherwise
    /// a copy saved meanwhile by another batch makes the first copy a duplicate of its own
    /// duplicate, and every copy is refused.
    saving: tokio::sync::Mutex<()>,
    counters: Mutex<Counters>,
    batches_done: Mutex<usize>,
}

pub struct AutoIngest {
    tools: AnalysisTools,
}

impl AutoIngest {
    pub fn new(tools: AnalysisTools) -> Self {
        AutoIngest { tools }
    }
}

impl Job for AutoIngest {
    const KIND: &'static str = "auto_ingest";
    const NOTIFICATION_TYPES: NotificationTypes = NotificationTypes {
        completed: "auto_ingest_complete",
        failed: "auto_ingest_error",
    };
    type Input = AutoIngestInput;
    type Output = AutoIngestOutput;

    fn options(&self) -> JobOptions {
        JobOptions {
            timeout: std::time::Duration::from_secs(6 * 60 * 60),
            ..JobOptions::default()
        }
    }

    async fn run(&self, ctx: JobContext, _: AutoIngestInput) -> Result<AutoIngestOutput, JobError> {
        ctx.set_stage("initializing", None).await;
        let db = ctx.db();
        if !db
            .claim_exclusive_run(Self::KIND, ctx.task().id, Utc::now())
            .await?
        {
            return Err(JobError::permanent(
                "another auto-ingest run is in progress; this one did nothing",
            ));
        }
        let config = db.auto_ingest_config().await?;
        let sources: Vec<Source> = db
            .sources()
            .await?
            .into_iter()
            .filter(|source| source.enabled)
            .collect();
        let topics = db.topics().await?;
        if sources.is_empty() {
            let output = AutoIngestOutput {
                summary: "No enabled sources: nothing to ingest.".into(),
                ..AutoIngestOutput::default()
            };
            ctx.set_stage("completed", Some(&output.summary)).await;
            return Ok(output);
        }
        if topics.is_empty() {
            return Err(JobError::permanent(
                "there are no topics to judge articles against: create a topic first",
            ));
        }
        let all_profiles: Vec<TopicProfile> = topics.iter().map(TopicProfile::from).collect();
        let all_profiles: Arc<[TopicProfile]> = all_profiles.into();
        let source_profiles: Vec<Arc<[TopicProfile]>> = sources
            .iter()
            .map(
                |source| match topics.iter().find(|t| Some(t.id) == source.topic_id) {
                    Some(topic) => Arc::from([TopicProfile::from(topic)]),
                    None => all_profiles.clone(),
                },
            )
            .collect();

        ctx.set_stage("fetching", Some(&format!("{} feeds", sources.len())))
            .await;
        let (feeds, items) = self.read_feeds(&ctx, &sources).await?;
        let mut output = AutoIngestOutput {
            feeds,
            ..AutoIngestOutput::default()
        };
        if output.feeds.iter().all(|feed| feed.error.is_some()) {
            let first = output.feeds[0].error.as_deref().unwrap_or_default();
            return Err(JobError::permanent(format!(
                "every feed failed ({}); the first: {first}",
                output.feeds.len()
            )));
        }
        let mut candidates = Vec::new();
        for (index, source_items) in items.into_iter().enumerate() {
            candidates.extend(source_items.into_iter().map(|item| Candidate {
                item,
                source: sources[index].name.clone(),
                profiles: source_profiles[index].clone(),
            }));
        }
        output.deferred = candidates.len().saturating_sub(MAX_ARTICLES_PER_RUN);
        candidates.truncate(MAX_ARTICLES_PER_RUN);

        let batch_size = config.batch_size.max(1) as usize;
        let concurrent = config.max_concurrent_batches.max(1) as usize;
        let batches: Vec<Vec<Candidate>> = chunks(candidates, batch_size);
        ctx.set_total(batches.iter().map(Vec::len).sum::<usize>() as u64);
        let run = Run {
            ctx: &ctx,
            tools: &self.tools,
            config,
            total_batches: batches.len(),
            fingerprints: Mutex::new(HashSet::new()),
            saving: tokio::sync::Mutex::new(()),
            counters: Mutex::new(Counters::default()),
            batches_done: Mutex::new(0),
        };
        let mut logs = stream::iter(batches.into_iter().enumerate())
            .map(|(index, batch)| run.process_batch(index + 1, batch))
            .buffer_unordered(concurrent);
        while let Some(batch_log) = logs.next().await {
            output.articles.extend(batch_log?);
        }
        drop(logs);
        output.counters = *run.counters.lock().expect("not poisoned");
        output.summary = summary(&output);
        ctx.set_stage("completed", Some(&output.summary)).await;
        Ok(output)
    }
}

impl AutoIngest {
    /// Fetches and parses every feed, recording each fetch with its source; answers each
    /// feed's report and its new articles (not stored before, each URL once per run).
    async fn read_feeds(
        &self,
        ctx: &JobContext,
        sources: &[Source],
    ) -> Result<(Vec<FeedReport>, Vec<Vec<FeedItem>>), JobError> {
        let read = stream::iter(sources.iter().cloned())
            .map(|source| async move {
                let outcome = self.read_feed(&source).await;
                (source, outcome)
            })
            .buffered(FEEDS_AT_ONCE)
            .collect::<Vec<_>>();
        let read = ctx.guard(read).await?;
        let mut seen = HashSet::new();
        let mut reports = Vec::new();
        let mut new_items = Vec::new();
        for (source, outcome) in read {
            let (items, error) = match outcome {
                Ok(items) => (items, None),
                Err(error) => (Vec::new(), Some(error)),
            };
            ctx.db()
                .record_source_fetch(source.id, Utc::now(), error.as_deref())
                .await?;
            if let Some(error) = &error {
                ctx.record_error(Some(&source.feed_url), error).await;
            }
            let urls: Vec<String> = items.iter().map(|item| item.url.to_string()).collect();
            let known = ctx.db().known_article_urls(&urls).await?;
            let listed = items.len();
            let fresh: Vec<FeedItem> = items
                .into_iter()
                .filter(|item| {
                    let url = item.url.to_string();
                    !known.contains(&url) && seen.insert(url)
                })
                .collect();
            reports.push(FeedReport {
                source: source.name.clone(),
                feed_url: source.feed_url.clone(),
                listed,
                new: fresh.len(),
                error,
            });
            new_items.push(fresh);
        }
        Ok((reports, new_items))
    }

    async fn read_feed(&self, source: &Source) -> Result<Vec<FeedItem>, String> {
        let fetched = self
            .tools
            .fetcher
            .fetch(&source.feed_url)
            .await
            .map_err(|error| error.to_string())?;
        parse_feed(&fetched.body, &fetched.url).map_err(|error| error.to_string())
    }
}

impl Run<'_> {
    /// Analyses one batch through the shared queue, then stores its verdicts.
    async fn process_batch(
        &self,
        number: usize,
        batch: Vec<Candidate>,
    ) -> Result<Vec<ArticleLog>, JobError> {
        let of = self.total_batches;
        self.ctx
            .set_stage(
                &format!("processing batch {number}/{of}"),
                Some(&format!("{} articles", batch.len())),
            )
            .await;
        let cancel = &self.ctx.cancellation_token();
        let batch = &batch;
        let judged = stream::iter(0..batch.len())
            .map(|index| async move {
                match self
                    .tools
                    .queue
                    .process(cancel, self.judge(&batch[index]))
                    .await
                {
                    Ok(verdict) => Some(verdict),
                    Err(ItemError::Cancelled) => None,
                    Err(timed_out) => Some(Verdict::error(timed_out.to_string())),
                }
            })
            .buffered(batch.len().max(1))
            .collect::<Vec<_>>()
            .await;
        let Some(judged) = judged.into_iter().collect::<Option<Vec<Verdict>>>() else {
            return Err(JobError::cancelled());
        };
        self.ctx
            .set_stage("saving", Some(&format!("batch {number} of {of}")))
            .await;
        let mut logs = Vec::with_capacity(batch.len());
        for (candidate, verdict) in batch.iter().zip(judged) {
            logs.push(self.save(number, candidate, verdict).await?);
        }
        let done = {
            let mut done = self.batches_done.lock().expect("not poisoned");
            *done += 1;
            *done
        };
        let counters = *self.counters.lock().expect("not poisoned");
        self.ctx.set_detail(json!({
            "batch_completed": done,
            "total_batches": of,
            "results": counters,
        }));
        Ok(logs)
    }

    /// Fetches the article and judges it: relevance against the best of its topics, then
    /// quality control. Touches no database: the saving step does.
    async fn judge(&self, candidate: &Candidate) -> Verdict {
        let url = candidate.item.url.as_str();
        let page = match self.tools.fetcher.fetch(url).await {
            Ok(page) => page,
            Err(error) => return Verdict::error(error.to_string()),
        };
        let extracted = extract_article(&page.text());
        let title = extracted
            .title
            .clone()
            .filter(|title| !title.trim().is_empty())
            .unwrap_or_else(|| candidate.item.title.clone());
        let mut best: Option<(&TopicProfile, Analysis)> = None;
        for profile in candidate.profiles.iter() {
            match self
                .tools
                .analyser
                .analyse(profile, &title, &extracted.text)
                .await
            {
                Ok(analysis)
                    if best.as_ref().is_none_or(|(_, known)| {
                        analysis.relevance.score > known.relevance.score
                    }) =>
                {
                    best = Some((profile, analysis));
                }
                Ok(_) => {}
                Err(error) => return Verdict::error(error.to_string()),
            }
        }
        let Some((profile, analysis)) = best else {
            return Verdict::error("no topic to judge it against".into());
        };
        let checked = quality(&extracted.text, &QualitySettings::default());
        let mut verdict = Verdict {
            title,
            topic: Some(profile.name.clone()),
            summary: analysis.summary,
            fingerprint: Some(content_fingerprint(&extracted.text)),
            text: extracted.text,
            relevance_score: Some(analysis.relevance.score),
            quality_score: Some(checked.score),
            matched_keywords: analysis.relevance.matched_keywords,
            status: ArticleStatus::Approved,
            reason: None,
        };
        if analysis.relevance.score < self.config.min_relevance_threshold {
            verdict.status = ArticleStatus::FilteredRelevance;
            verdict.reason = Some(format!(
                "relevance {:.2} is below the threshold {:.2}",
                analysis.relevance.score, self.config.min_relevance_threshold
            ));
        } else if let Some(issue) = checked
            .issue
            .filter(|_| self.config.quality_control_enabled)
        {
            verdict.status = ArticleStatus::FilteredQuality;
            verdict.reason = Some(issue.to_string());
        }
        verdict
    }

    /// Stores the article with its verdict — approved text that another article has already
    /// is filtered as a duplicate — and counts it.
    async fn save(
        &self,
        batch: usize,
        candidate: &Candidate,
        mut verdict: Verdict,
    ) -> Result<ArticleLog, JobError> {
        let url = candidate.item.url.as_str();
        let saving = self.saving.lock().await;
        if verdict.status == ArticleStatus::Approved
            && self.config.quality_control_enabled
            && let Some(fingerprint) = &verdict.fingerprint
            && self.is_duplicate(fingerprint, url).await?
        {
            verdict.status = ArticleStatus::FilteredQuality;
            verdict.reason = Some("duplicate: the same text is stored under another URL".into());
        }
        // A page that could not be read keeps the feed's title, else its URL.
        let title = [&verdict.title, &candidate.item.title]
            .into_iter()
            .find(|title| !title.trim().is_empty())
            .map_or_else(|| url.to_owned(), |title| title.clone());
        let record = ArticleRecord {
            url: url.to_owned(),
            title: title.clone(),
            source: Some(candidate.source.clone()),
            published_at: candidate.item.published,
            summary: verdict.summary,
            text: verdict.text,
            topic: verdict.topic,
            relevance_score: verdict.relevance_score,
            quality_score: verdict.quality_score,
            status: verdict.status,
            status_reason: verdict.reason.clone(),
            matched_keywords: verdict.matched_keywords,
            content_fingerprint: verdict.fingerprint,
        };
        self.ctx
            .db()
            .upsert_article(&record, Some(self.ctx.task().id), Utc::now())
            .await?;
        drop(saving);
        if let (ArticleStatus::Error, Some(reason)) = (verdict.status, &verdict.reason) {
            self.ctx.record_error(Some(url), reason).await;
        }
        self.counters
            .lock()
            .expect("not poisoned")
            .count(verdict.status);
        self.ctx.advance(1, Some(&title));
        Ok(ArticleLog {
            url: url.to_owned(),
            title,
            batch,
            status: verdict.status.as_str(),
            reason: verdict.reason,
            relevance_score: verdict.relevance_score,
            quality_score: verdict.quality_score,
        })
    }

    /// Whether the text is stored under another URL, or was stored by this run.
    async fn is_duplicate(&self, fingerprint: &str, url: &str) -> Result<bool, JobError> {
        let fresh = self
            .fingerprints
            .lock()
            .expect("not poisoned")
            .insert(fingerprint.to_owned());
        if !fresh {
            return Ok(true);
        }
        self.ctx
            .db()
            .fingerprint_taken(fingerprint, url)
            .await
            .map_err(JobError::from)
    }
}

/// What judging an article found.
struct Verdict {
    title: String,
    topic: Option<String>,
    summary: String,
    text: String,
    fingerprint: Option<String>,
    relevance_score: Option<f64>,
    quality_score: Option<f64>,
    matched_keywords: Vec<String>,
    status: ArticleStatus,
    reason: Option<String>,
}

impl Verdict {
    /// An article that could not be fetched or analysed: stored with the reason, and tried
    /// again by the next run.
    fn error(reason: String) -> Self {
        Verdict {
            title: String::new(),
            topic: None,
            summary: String::new(),
            text: String::new(),
            fingerprint: None,
            relevance_score: None,
            quality_score: None,
            matched_keywords: Vec::new(),
            status: ArticleStatus::Error,
            reason: Some(reason),
        }
    }
}

/// `items` in consecutive groups of `size`.
fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut groups = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        groups.push(items.by_ref().take(size).collect());
    }
    groups
}

fn summary(output: &AutoIngestOutput) -> String {
    let counters = &output.counters;
    let failed_feeds = output
        .feeds
        .iter()
        .filter(|feed| feed.error.is_some())
        .count();
    let mut summary = format!(
        "{} new articles: {} approved, {} below the relevance threshold, {} refused by quality \
         control, {} errors",
        counters.processed,
        counters.approved,
        counters.filtered_relevance,
        counters.filtered_quality,
        counters.errors
    );
    if failed_feeds > 0 {
        summary.push_str(&format!("; {failed_feeds} feeds failed"));
    }
    if output.deferred > 0 {
        summary.push_str(&format!("; {} left for the next run", output.deferred));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_cut_into_batches_in_order() {
        assert_eq!(
            chunks((1..=5).collect(), 2),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert!(chunks(Vec::<u8>::new(), 3).is_empty());
    }

    #[test]
    fn counters_count_each_verdict() {
        let mut counters = Counters::default();
        for status in ArticleStatus::ALL {
            counters.count(status);
        }
        counters.count(ArticleStatus::Approved);
        assert_eq!(
            counters,
            Counters {
                processed: 5,
                approved: 2,
                filtered_relevance: 1,
                filtered_quality: 1,
                errors: 1,
            }
        );
    }
}
