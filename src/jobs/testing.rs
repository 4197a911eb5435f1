//! Job kinds that exist to test the engine and the live pages (feature `test-jobs`, enabled by
//! the test suite only). They do no useful work, but they do it the way real jobs do: through
//! the progress API, at await points that honour cancellation.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{LazyLock, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{Job, JobContext, JobError, JobOptions, JobRegistry};

/// Adds the test kinds to `registry`.
pub fn with_test_jobs(mut registry: JobRegistry) -> JobRegistry {
    registry
        .register(Steps::<false>)
        .register(Steps::<true>)
        .register(Flaky)
        .register(Deadline)
        .register(Fanout)
        .register(Spin)
        .register(Broadcast);
    registry
}

const MAX_STEPS: u64 = 10_000_000;
const MAX_STEP_MS: u64 = 60_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepsInput {
    pub steps: u64,
    #[serde(default)]
    pub step_ms: u64,
    /// Fail (retryably) when reaching this step.
    #[serde(default)]
    pub fail_at: Option<u64>,
    /// Keep going when asked to stop (to test the grace period).
    #[serde(default)]
    pub ignore_cancel: bool,
}

/// Counts `steps` items, sleeping `step_ms` between them, in stages, with detail every ten
/// steps. `test.steps` is not retryable; `test.retryable_steps` allows three attempts.
pub struct Steps<const RETRYABLE: bool>;

impl<const RETRYABLE: bool> Job for Steps<RETRYABLE> {
    const KIND: &'static str = if RETRYABLE {
        "test.retryable_steps"
    } else {
        "test.steps"
    };
    type Input = StepsInput;
    type Output = Value;

    fn options(&self) -> JobOptions {
        JobOptions {
            max_attempts: if RETRYABLE { 3 } else { 1 },
            backoff: Duration::from_millis(50),
            stop_grace: Duration::from_millis(500),
            ..JobOptions::default()
        }
    }

    async fn run(&self, ctx: JobContext, input: StepsInput) -> Result<Value, JobError> {
        if input.steps > MAX_STEPS || input.step_ms > MAX_STEP_MS {
            return Err(JobError::permanent("too many steps or too long a step"));
        }
        ctx.set_stage("processing", Some("counting steps")).await;
        ctx.set_total(input.steps);
        for step in 1..=input.steps {
            if input.fail_at == Some(step) {
                return Err(JobError::new(format!("step {step} failed")));
            }
            let pause = tokio::time::sleep(Duration::from_millis(input.step_ms));
            if input.ignore_cancel {
                pause.await;
            } else {
                ctx.guard(pause).await?;
            }
            ctx.advance(1, Some(&format!("step {step}")));
            if step % 10 == 0 {
                ctx.set_detail(json!({ "step": step, "of": input.steps }));
            }
        }
        ctx.set_stage("completed", None).await;
        Ok(json!({ "steps": input.steps, "attempt": ctx.task().attempt }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlakyInput {
    pub succeed_on_attempt: u32,
}

/// Fails until its `succeed_on_attempt`-th attempt; retryable three times.
pub struct Flaky;

impl Job for Flaky {
    const KIND: &'static str = "test.flaky";
    type Input = FlakyInput;
    type Output = Value;

    fn options(&self) -> JobOptions {
        JobOptions {
            max_attempts: 3,
            backoff: Duration::from_millis(50),
            ..JobOptions::default()
        }
    }

    async fn run(&self, ctx: JobContext, input: FlakyInput) -> Result<Value, JobError> {
        let attempt = ctx.task().attempt;
        if attempt < input.succeed_on_attempt {
            return Err(JobError::new(format!("attempt {attempt} failed")));
        }
        Ok(json!({ "succeeded_on_attempt": attempt }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineInput {
    pub sleep_ms: u64,
}

/// Sleeps; its kind times out after 300 ms.
pub struct Deadline;

impl Job for Deadline {
    const KIND: &'static str = "test.deadline";
    type Input = DeadlineInput;
    type Output = Value;

    fn options(&self) -> JobOptions {
        JobOptions {
            timeout: Duration::from_millis(300),
            ..JobOptions::default()
        }
    }

    async fn run(&self, ctx: JobContext, input: DeadlineInput) -> Result<Value, JobError> {
        let pause = Duration::from_millis(input.sleep_ms.min(MAX_STEP_MS));
        ctx.guard(tokio::time::sleep(pause)).await?;
        Ok(json!({ "slept_ms": input.sleep_ms }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutInput {
    pub children: u32,
}

/// Ticks counted by the children of each `test.fanout` task: a test reads them in-process to
/// see that the children stopped with their task.
static CHILD_TICKS: LazyLock<Mutex<HashMap<Uuid, u64>>> = LazyLock::new(Mutex::default);

/// How many times the children of `task` have ticked.
pub fn child_ticks(task: Uuid) -> u64 {
    CHILD_TICKS
        .lock()
        .expect("ticks lock")
        .get(&task)
        .copied()
        .unwrap_or(0)
}

/// Starts child workers that each tick every 10 ms, forever; the task only ends by
/// cancellation or timeout, and its children must end with it.
pub struct Fanout;

impl Job for Fanout {
    const KIND: &'static str = "test.fanout";
    type Input = FanoutInput;
    type Output = Value;

    async fn run(&self, ctx: JobContext, input: FanoutInput) -> Result<Value, JobError> {
        let task = ctx.task().id;
        for _ in 0..input.children.min(100) {
            // The children deliberately ignore the token: the engine must stop them anyway.
            ctx.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    *CHILD_TICKS
                        .lock()
                        .expect("ticks lock")
                        .entry(task)
                        .or_default() += 1;
                }
            });
        }
        ctx.cancelled().await;
        Err(JobError::cancelled())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpinInput {
    pub calls: u64,
}

/// Calls `advance` `calls` times in a tight loop: coalescing must keep that cheap.
pub struct Spin;

impl Job for Spin {
    const KIND: &'static str = "test.spin";
    type Input = SpinInput;
    type Output = Value;

    async fn run(&self, ctx: JobContext, input: SpinInput) -> Result<Value, JobError> {
        let calls = input.calls.min(MAX_STEPS);
        ctx.set_total(calls);
        for call in 0..calls {
            ctx.advance(1, None);
            // Yield now and then so that the runner's ticks can publish meanwhile.
            if call % 65_536 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok(json!({ "calls": calls }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastInput {
    /// Stage changes to publish.
    pub updates: u64,
    /// Pause between two of them; 0 publishes each as soon as the previous one is logged.
    #[serde(default)]
    pub interval_ms: u64,
    /// Bytes of filler appended to each message, to make large frames.
    #[serde(default)]
    pub padding: usize,
    /// Publish nothing until this file exists, so that subscribers can be set up against the
    /// running task first.
    #[serde(default)]
    pub go_file: Option<PathBuf>,
}

/// Largest `padding` of a `test.broadcast` message.
const MAX_PADDING: usize = 1 << 20;

/// The stage message of `test.broadcast`'s update number `index`, stamped with the server's
/// wall clock (`stamp_micros`, microseconds since the Unix epoch) just before it was published:
/// `b:<index>:<stamp_micros>:` and then `padding` dots.
pub fn broadcast_message(index: u64, stamp_micros: u64, padding: usize) -> String {
    let mut message = format!("b:{index}:{stamp_micros}:");
    message.extend(std::iter::repeat_n('.', padding));
    message
}

/// Reads back the index and stamp of a [`broadcast_message`].
pub fn parse_broadcast_message(message: &str) -> Option<(u64, u64)> {
    let mut fields = message.strip_prefix("b:")?.splitn(3, ':');
    let index = fields.next()?.parse().ok()?;
    let stamp = fields.next()?.parse().ok()?;
    fields.next()?;
    Some((index, stamp))
}

/// Publishes `updates` stage changes (each logged and published at once, unlike progress
/// ticks), each message stamped by [`broadcast_message`]: the WebSocket load benchmark
/// (`benches/ws_load.rs`) measures their delivery to many subscribers.
pub struct Broadcast;

impl Job for Broadcast {
    const KIND: &'static str = "test.broadcast";
    type Input = BroadcastInput;
    type Output = Value;

    async fn run(&self, ctx: JobContext, input: BroadcastInput) -> Result<Value, JobError> {
        if input.updates > MAX_STEPS
            || input.interval_ms > MAX_STEP_MS
            || input.padding > MAX_PADDING
        {
            return Err(JobError::permanent(
                "too many updates, too long an interval or too much padding",
            ));
        }
        if let Some(go_file) = &input.go_file {
            ctx.set_stage("waiting", Some("waiting for the go file"))
                .await;
            while !tokio::fs::try_exists(go_file).await.unwrap_or(false) {
                ctx.guard(tokio::time::sleep(Duration::from_millis(5)))
                    .await?;
            }
        }
        let interval = Duration::from_millis(input.interval_ms);
        for index in 0..input.updates {
            if index > 0 && !interval.is_zero() {
                ctx.guard(tokio::time::sleep(interval)).await?;
            } else if ctx.is_cancelled() {
                return Err(JobError::cancelled());
            }
            let stamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_micros() as u64);
            let message = broadcast_message(index, stamp, input.padding);
            ctx.set_stage("broadcast", Some(&message)).await;
        }
        Ok(json!({ "updates": input.updates }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_messages_carry_their_index_and_stamp() {
        let message = broadcast_message(17, 1_700_000_000_123_456, 3);
        assert_eq!(message, "b:17:1700000000123456:...");
        assert_eq!(
            parse_broadcast_message(&message),
            Some((17, 1_700_000_000_123_456))
        );
        assert_eq!(parse_broadcast_message("b:1:2"), None);
        assert_eq!(parse_broadcast_message("waiting for the go file"), None);
    }

    #[test]
    fn broadcast_input_defaults_to_no_pause_no_padding_and_no_go_file() {
        let input: BroadcastInput = serde_json::from_value(json!({ "updates": 5 })).unwrap();
        assert_eq!(
            (
                input.updates,
                input.interval_ms,
                input.padding,
                input.go_file
            ),
            (5, 0, 0, None)
        );
        assert!(serde_json::from_value::<BroadcastInput>(json!({ "updates": 5, "x": 1 })).is_err());
    }
}
