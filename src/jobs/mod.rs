//! The kinds of work Tidings runs as background tasks.

pub mod analysis_queue;
pub mod auto_ingest;
pub mod bulk_analysis;
pub mod bulk_save;
pub mod keyword_check;
#[cfg(feature = "test-jobs")]
pub mod testing;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

use crate::{
    analysis::{
        analyser::{Analyser, FallbackAnalyser, LocalAnalyser},
        fetch::{FetchSettings, Fetcher},
        openai::{OpenAiAnalyser, OpenAiSettings},
    },
    config::AnalysisSettings,
    engine::JobRegistry,
};
use analysis_queue::{AnalysisQueue, QueueSettings};

/// What the analysing jobs share: one queue for every task's articles, one HTTP client and
/// one analyser. Cheap to clone.
#[derive(Clone)]
pub struct AnalysisTools {
    pub queue: AnalysisQueue,
    pub fetcher: Fetcher,
    pub analyser: Arc<dyn Analyser>,
    /// Most URLs in one bulk analysis.
    pub max_urls: usize,
}

impl AnalysisTools {
    pub fn new(settings: &AnalysisSettings) -> anyhow::Result<Self> {
        let queue = AnalysisQueue::new(QueueSettings {
            capacity: settings.queue_capacity as usize,
            workers: settings.workers as usize,
            item_timeout: Duration::from_secs(settings.item_timeout_secs),
        });
        let fetcher = Fetcher::new(FetchSettings {
            allow_private_addresses: settings.allow_private_fetch,
            ..FetchSettings::default()
        })
        .context("cannot create the HTTP client")?;
        let analyser: Arc<dyn Analyser> = match &settings.openai_base_url {
            Some(base_url) => {
                let openai = OpenAiAnalyser::new(OpenAiSettings {
                    base_url: base_url
                        .parse()
                        .with_context(|| format!("--openai-base-url is not a URL: {base_url:?}"))?,
                    api_key: settings.openai_api_key.clone(),
                    model: settings.openai_model.clone(),
                    timeout: Duration::from_secs(settings.item_timeout_secs),
                })
                .context("cannot create the OpenAI client")?;
                Arc::new(FallbackAnalyser::new(openai, LocalAnalyser::default()))
            }
            None => Arc::new(LocalAnalyser::default()),
        };
        Ok(AnalysisTools {
            queue,
            fetcher,
            analyser,
            max_urls: settings.max_urls as usize,
        })
    }
}

/// Every job kind of this build. Adding a kind is its [`crate::engine::Job`] implementation and
/// one `register` line here.
pub fn registry(tools: &AnalysisTools) -> JobRegistry {
    let mut registry = JobRegistry::default();
    registry
        .register(bulk_analysis::BulkAnalysis::new(tools.clone()))
        .register(bulk_save::BulkSave)
        .register(auto_ingest::AutoIngest::new(tools.clone()))
        .register(keyword_check::KeywordCheck);
    #[cfg(feature = "test-jobs")]
    let registry = testing::with_test_jobs(registry);
    registry
}
