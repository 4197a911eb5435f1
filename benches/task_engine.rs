//! Benchmark of the task engine (SPEC §6), on the embedded SQLite database by default or on
//! PostgreSQL with `TIDINGS_BENCH_DATABASE_URL`:
//!
//! 1. throughput: no-op tasks completed per second, every state change persisted (insert as
//!    pending, claim as running, finish as completed, each with its event-log entry), with the
//!    enqueuing running alongside, and for a backlog enqueued beforehand;
//! 2. enqueue→start latency with a free slot, p50 and p99;
//! 3. the cost of 1,000,000 progress calls against the same loop without them.
//!
//! Run: `cargo bench --features ssr --bench task_engine` (add `-- --tasks 50000` etc.).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tidings::{
    api::tasks::TaskStatus,
    config::{Config, DatabaseLocation},
    db::Database,
    engine::{Job, JobContext, JobError, JobRegistry, TaskEngine, TaskRequest},
};
use tokio::sync::mpsc;

#[derive(clap::Parser)]
struct Options {
    /// No-op tasks for the throughput run.
    #[arg(long, default_value_t = 20_000)]
    tasks: usize,
    /// Samples of the latency run.
    #[arg(long, default_value_t = 1_000)]
    samples: usize,
    /// Progress calls per run of the overhead comparison.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Concurrency limits to measure throughput with.
    #[arg(long, value_delimiter = ',', default_value = "3,16")]
    limits: Vec<u32>,
    /// Concurrent clients enqueueing in the second throughput run.
    #[arg(long, default_value_t = 8)]
    producers: usize,
    /// Accepts cargo bench's own flag.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Does nothing but say when it started.
struct Noop {
    started: mpsc::UnboundedSender<Instant>,
}

impl Job for Noop {
    const KIND: &'static str = "bench.noop";
    type Input = ();
    type Output = ();

    async fn run(&self, _: JobContext, (): ()) -> Result<(), JobError> {
        let _ = self.started.send(Instant::now());
        Ok(())
    }
}

#[derive(Deserialize)]
struct CountInput {
    calls: u64,
    report: bool,
}

/// Processes `calls` items — each a SHA-256 of a 64-byte record, a light stand-in for real
/// per-item work — reporting each through the progress API when `report` is set, and records
/// how long its loop took.
struct Count {
    durations: Arc<Mutex<Vec<(bool, Duration)>>>,
}

impl Job for Count {
    const KIND: &'static str = "bench.count";
    type Input = CountInput;
    type Output = u64;

    async fn run(&self, ctx: JobContext, input: CountInput) -> Result<u64, JobError> {
        let started = Instant::now();
        ctx.set_total(input.calls);
        let mut record = [7u8; 64];
        for _ in 0..input.calls {
            let digest = Sha256::digest(record);
            record[..32].copy_from_slice(&digest);
            if input.report {
                ctx.advance(1, Some("item"));
            }
        }
        let elapsed = started.elapsed();
        self.durations.lock().unwrap().push((input.report, elapsed));
        Ok(u64::from(std::hint::black_box(record)[0]))
    }
}

struct Bench {
    engine: TaskEngine,
    started: mpsc::UnboundedReceiver<Instant>,
    durations: Arc<Mutex<Vec<(bool, Duration)>>>,
    _directory: tempfile::TempDir,
}

async fn engine(max_concurrent: u32) -> Bench {
    let directory = tempfile::tempdir().unwrap();
    let location = match std::env::var("TIDINGS_BENCH_DATABASE_URL") {
        Ok(url) => DatabaseLocation::Url(url),
        Err(_) => DatabaseLocation::SqliteFile(directory.path().join("bench.db")),
    };
    let db = Database::connect(&location).await.unwrap();
    db.migrate().await.unwrap();
    // A PostgreSQL database is reused between runs: start from an empty table.
    db.delete_finished_tasks(None, chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    let mut config = Config::try_parse_from(["tidings"]).unwrap();
    config.tasks.max_concurrent = max_concurrent;
    let (sender, started) = mpsc::unbounded_channel();
    let durations = Arc::default();
    let mut registry = JobRegistry::default();
    registry.register(Noop { started: sender }).register(Count {
        durations: Arc::clone(&durations),
    });
    Bench {
        engine: TaskEngine::new(db, registry, Arc::new(config)),
        started,
        durations,
        _directory: directory,
    }
}

fn request(kind: &str, input: serde_json::Value) -> TaskRequest {
    TaskRequest {
        kind: kind.into(),
        name: "bench".into(),
        owner_id: None,
        input,
        priority: 0,
        retry_of: None,
    }
}

/// Waits for `count` updates that end a task.
async fn wait_finished(
    updates: &mut tokio::sync::broadcast::Receiver<tidings::api::tasks::TaskUpdate>,
    count: usize,
) {
    let mut finished = 0;
    while finished < count {
        match updates.recv().await {
            Ok(update) if update.status == TaskStatus::Completed => finished += 1,
            Ok(update) if update.status.is_finished() => panic!("a task ended {:?}", update.status),
            Ok(_) => {}
            Err(error) => panic!("lost updates: {error}"),
        }
    }
}

/// Enqueues `tasks` no-op tasks from `producers` concurrent clients while the engine runs
/// them; answers tasks per second from the first enqueue to the last completion.
async fn throughput(tasks: usize, max_concurrent: u32, producers: usize) -> f64 {
    let bench = engine(max_concurrent).await;
    bench.engine.start().await.unwrap();
    let mut updates = bench.engine.subscribe();
    let started = Instant::now();
    let enqueuing: Vec<_> = (0..producers)
        .map(|producer| {
            let engine = bench.engine.clone();
            let share = tasks / producers + usize::from(producer < tasks % producers);
            tokio::spawn(async move {
                for _ in 0..share {
                    engine
                        .enqueue(request("bench.noop", serde_json::Value::Null))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // The broadcast buffer holds 4096 updates; keep reading while the producers work.
    wait_finished(&mut updates, tasks).await;
    for producer in enqueuing {
        producer.await.unwrap();
    }
    let elapsed = started.elapsed();
    bench.engine.shutdown().await;
    tasks as f64 / elapsed.as_secs_f64()
}

/// Completes a backlog of `tasks` no-op tasks enqueued before the engine starts: the cost of
/// claiming and finishing alone. Answers tasks per second.
async fn drain(tasks: usize, max_concurrent: u32) -> f64 {
    let bench = engine(max_concurrent).await;
    for _ in 0..tasks {
        bench
            .engine
            .enqueue(request("bench.noop", serde_json::Value::Null))
            .await
            .unwrap();
    }
    let mut updates = bench.engine.subscribe();
    let started = Instant::now();
    bench.engine.start().await.unwrap();
    let mut finished = 0;
    while finished < tasks {
        match updates.recv().await {
            Ok(update) if update.status == TaskStatus::Completed => finished += 1,
            Ok(_) => {}
            Err(error) => panic!("lost updates: {error}"),
        }
    }
    let elapsed = started.elapsed();
    bench.engine.shutdown().await;
    tasks as f64 / elapsed.as_secs_f64()
}

/// Enqueue→start latency of one task at a time with free slots.
async fn latency(samples: usize) -> Vec<Duration> {
    let mut bench = engine(3).await;
    bench.engine.start().await.unwrap();
    let mut updates = bench.engine.subscribe();
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let before = Instant::now();
        bench
            .engine
            .enqueue(request("bench.noop", serde_json::Value::Null))
            .await
            .unwrap();
        let started = bench.started.recv().await.unwrap();
        latencies.push(started - before);
        wait_finished(&mut updates, 1).await;
    }
    bench.engine.shutdown().await;
    latencies.sort();
    latencies
}

/// Median loop time with and without progress calls, over five runs each.
async fn progress_overhead(calls: u64) -> (Duration, Duration) {
    let bench = engine(1).await;
    bench.engine.start().await.unwrap();
    let mut updates = bench.engine.subscribe();
    for round in 0..10 {
        let input = serde_json::json!({ "calls": calls, "report": round % 2 == 1 });
        bench
            .engine
            .enqueue(request("bench.count", input))
            .await
            .unwrap();
        wait_finished(&mut updates, 1).await;
    }
    bench.engine.shutdown().await;
    let durations = bench.durations.lock().unwrap().clone();
    let median = |report: bool| {
        let mut runs: Vec<Duration> = durations
            .iter()
            .filter(|(reported, _)| *reported == report)
            .map(|(_, duration)| *duration)
            .collect();
        runs.sort();
        runs[runs.len() / 2]
    };
    (median(false), median(true))
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    let backend = if std::env::var("TIDINGS_BENCH_DATABASE_URL").is_ok() {
        "postgresql"
    } else {
        "sqlite"
    };
    println!("task engine benchmark on {backend}");
    for &limit in &options.limits {
        for producers in [1, options.producers] {
            let rate = throughput(options.tasks, limit, producers).await;
            println!(
                "throughput: {} no-op tasks enqueued by {producers} client(s) while running, \
                 limit {limit}: {rate:.0} tasks/s",
                options.tasks
            );
        }
    }
    for &limit in &options.limits {
        let rate = drain(options.tasks, limit).await;
        println!(
            "backlog: {} no-op tasks enqueued first, limit {limit}: {rate:.0} tasks/s",
            options.tasks
        );
    }
    let latencies = latency(options.samples).await;
    println!(
        "enqueue→start latency over {} tasks: p50 {:.2} ms, p99 {:.2} ms",
        options.samples,
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
    let (without, with) = progress_overhead(options.calls).await;
    let extra = with.saturating_sub(without);
    println!(
        "{} items: {:.1} ms with a progress call per item, {:.1} ms without: overhead {:.1} % \
         ({:.0} ns per call)",
        options.calls,
        with.as_secs_f64() * 1000.0,
        without.as_secs_f64() * 1000.0,
        (with.as_secs_f64() / without.as_secs_f64() - 1.0) * 100.0,
        extra.as_secs_f64() * 1e9 / options.calls as f64,
    );
}
