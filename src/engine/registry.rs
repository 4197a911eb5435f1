//! The kinds of job this server can run, by name.

use std::{collections::HashMap, sync::Arc};

use futures::future::BoxFuture;
use serde::Deserialize as _;
use serde_json::Value;

use super::{
    NotificationTypes,
    job::{Job, JobContext, JobError, JobOptions},
};

/// Every job kind the engine knows. A task whose kind is not registered fails when it would
/// start; creating one is refused.
#[derive(Clone, Default)]
pub struct JobRegistry {
    jobs: HashMap<&'static str, Arc<dyn RegisteredJob>>,
}

impl JobRegistry {
    /// Adds a kind. Registering a kind twice is a programming error and panics.
    pub fn register<J: Job>(&mut self, job: J) -> &mut Self {
        let previous = self.jobs.insert(J::KIND, Arc::new(Registered(job)));
        assert!(previous.is_none(), "job kind {} registered twice", J::KIND);
        self
    }

    /// The registered kinds, sorted by name.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.jobs.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    pub(super) fn get(&self, kind: &str) -> Option<Arc<dyn RegisteredJob>> {
        self.jobs.get(kind).cloned()
    }

    /// The notification types of `kind`'s endings (the generic ones for an unknown kind).
    pub(super) fn notification_types(&self, kind: &str) -> NotificationTypes {
        self.jobs
            .get(kind)
            .map_or(NotificationTypes::TASK, |job| job.notification_types())
    }
}

/// A [`Job`] with its input and output types erased to JSON, so that kinds of different types
/// live in one map.
pub(super) trait RegisteredJob: Send + Sync {
    fn options(&self) -> JobOptions;
    fn notification_types(&self) -> NotificationTypes;
    /// Checks that `input` parses as the kind's input; the error explains why not.
    fn check_input(&self, input: &Value) -> Result<(), String>;
    fn run(
        self: Arc<Self>,
        ctx: JobContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, JobError>>;
}

struct Registered<J>(J);

impl<J: Job> RegisteredJob for Registered<J> {
    fn options(&self) -> JobOptions {
        self.0.options()
    }

    fn notification_types(&self) -> NotificationTypes {
        J::NOTIFICATION_TYPES
    }

    fn check_input(&self, input: &Value) -> Result<(), String> {
        J::Input::deserialize(input)
            .map(drop)
            .map_err(|error| error.to_string())
    }

    fn run(
        self: Arc<Self>,
        ctx: JobContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, JobError>> {
        Box::pin(async move {
            let input = serde_json::from_value(input)
                .map_err(|error| JobError::permanent(format!("invalid input: {error}")))?;
            let output = self.0.run(ctx, input).await?;
            serde_json::to_value(output)
                .map_err(|error| JobError::permanent(format!("cannot store the result: {error}")))
        })
    }
}
