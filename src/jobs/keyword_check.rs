//! `keyword_check`: matches the keywords of one keyword group, or of every group, against the
//! approved articles changed since the group's last check, and raises an alert for each article that
//! mentions any of them. Progress counts keywords; the owner is told how many new matches
//! there are.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::{
    analysis::text::{count_phrase, words},
    db::{CheckedArticle, KeywordWatch},
    engine::{Job, JobContext, JobError, NotificationTypes},
};

/// Most articles one group checks in a run; the rest wait for the next run (the group's
/// watermark stops at the last article checked).
pub const MAX_ARTICLES_PER_GROUP: i64 = 1000;
/// Articles changed this long before a group's watermark are checked again: the nodes of a
/// cluster stamp changes with their own clocks, which may be a little apart. An article
/// checked twice raises no second alert.
const CLOCK_SKEW_MARGIN: chrono::Duration = chrono::Duration::minutes(1);

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordCheckInput {
    /// One group, or every group when absent.
    #[serde(default)]
    pub group_id: Option<i64>,
}

/// What one group's check found.
#[derive(Debug, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub articles_checked: usize,
    pub new_alerts: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct KeywordCheckOutput {
    pub summary: String,
    pub new_alerts: u64,
    pub groups: Vec<GroupReport>,
}

pub struct KeywordCheck;

impl Job for KeywordCheck {
    const KIND: &'static str = "keyword_check";
    const NOTIFICATION_TYPES: NotificationTypes = NotificationTypes {
        completed: "keyword_check_complete",
        failed: "keyword_check_failed",
    };
    type Input = KeywordCheckInput;
    type Output = KeywordCheckOutput;

    async fn run(
        &self,
        ctx: JobContext,
        input: KeywordCheckInput,
    ) -> Result<KeywordCheckOutput, JobError> {
        let watches = ctx.db().keyword_watches(input.group_id).await?;
        if let (Some(id), true) = (input.group_id, watches.is_empty()) {
            return Err(JobError::permanent(format!(
                "keyword group {id} no longer exists"
            )));
        }
        let keywords: usize = watches.iter().map(|watch| watch.keywords.len()).sum();
        ctx.set_total(keywords as u64);
        let mut output = KeywordCheckOutput::default();
        for watch in &watches {
            ctx.set_stage("checking", Some(&watch.name)).await;
            let report = check_group(&ctx, watch).await?;
            output.new_alerts += report.new_alerts;
            output.groups.push(report);
        }
        output.summary = match output.new_alerts {
            0 => format!("No new keyword matches in {} groups.", watches.len()),
            1 => "1 new keyword match.".to_owned(),
            count => format!("{count} new keyword matches."),
        };
        Ok(output)
    }
}

/// Checks the group's keywords, one by one, against its unchecked articles; raises the alerts
/// and moves the group's watermark.
async fn check_group(ctx: &JobContext, watch: &KeywordWatch) -> Result<GroupReport, JobError> {
    let articles = ctx
        .db()
        .articles_to_check(
            watch
                .checked_through
                .map(|through| through - CLOCK_SKEW_MARGIN),
            watch.topic.as_deref(),
            MAX_ARTICLES_PER_GROUP,
        )
        .await?;
    let article_words: Vec<Vec<String>> = articles.iter().map(article_words).collect();
    // Article (by position) → the keywords it mentions, in the group's order.
    let mut matches: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for keyword in &watch.keywords {
        if ctx.is_cancelled() {
            return Err(JobError::cancelled());
        }
        let phrase = words(keyword);
        for (index, words) in article_words.iter().enumerate() {
            if !phrase.is_empty() && count_phrase(words, &phrase) > 0 {
                matches.entry(index).or_default().push(keyword.clone());
            }
        }
        ctx.advance(1, Some(keyword));
        // Lets other tasks run between keywords of a large group.
        tokio::task::yield_now().await;
    }
    let mut new_alerts = 0;
    let now = Utc::now();
    for (index, keywords) in matches {
        let raised = ctx
            .db()
            .insert_keyword_alert(articles[index].id, watch.id, &keywords, now)
            .await?;
        new_alerts += u64::from(raised);
    }
    if let Some(last) = articles.last() {
        ctx.db()
            .set_group_checked_through(watch.id, last.updated_at)
            .await?;
    }
    Ok(GroupReport {
        group: watch.name.clone(),
        articles_checked: articles.len(),
        new_alerts,
    })
}

fn article_words(article: &CheckedArticle) -> Vec<String> {
    words(&format!(
        "{}\n{}\n{}",
        article.title, article.summary, article.text
    ))
}
