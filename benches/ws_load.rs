//! Benchmark of the live layer over real WebSockets (SPEC §6): the `tidings` binary runs as its
//! own process on SQLite in a temporary directory, and this process opens thousands of
//! WebSocket connections to it, signed in as an administrator, each subscribed to one task.
//!
//! The task is a `test.broadcast` job (`src/jobs/testing.rs`): it waits for a "go" file, then
//! publishes stage changes whose messages carry the server's wall clock at the moment the job
//! called `set_stage`. Every connection notes when each update arrived, so the benchmark
//! reports, for one update, the time until the *last* subscriber had it ("to all") and the
//! distribution over every single delivery.
//!
//! 1. memory: the server's resident memory before and after opening the connections, and after
//!    each subscribed to the task (idle: nothing published);
//! 2. latency of one update to all subscribers, for each subscriber count (10,000, 5,000 and
//!    1,000 by default), updates spaced far enough apart to be delivered one at a time
//!    (`--interval-ms`; by default 100 ms, or 1 ms per 10 subscribers when that is more);
//! 3. throughput: 1,000 subscribers, 200 updates published back to back; deliveries per second
//!    from the first update's stamp to the last arrival;
//! 4. one never-reading client: latency of 1,000 readers with and without one more subscriber of
//!    the same task whose socket is full (a flood on a second task, which only it follows,
//!    jammed it first) and which never reads again.
//!
//! Run: `cargo bench --features ssr,test-jobs --bench ws_load`. Every option has an
//! environment variable, e.g. `TIDINGS_BENCH_WS_SUBSCRIBERS=1000,200` for a quick run.
//!
//! The client is a minimal WebSocket client on raw TCP (handshake, unmasked server frames,
//! pong replies): it shares the machine's two cores with the server, so it does as little per
//! frame as it can — it finds the stamp by a byte search instead of parsing the JSON.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    ops::Range,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::Parser as _;
use serde_json::json;
use tidings::{
    api::tasks::TaskStatus,
    config::{Config, DatabaseLocation},
    db::Database,
    engine::{TaskEngine, TaskRequest},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::watch,
};
use uuid::Uuid;

#[derive(clap::Parser)]
struct Options {
    /// Subscriber counts of the latency runs; the connections are opened once for the largest.
    #[arg(
        long,
        env = "TIDINGS_BENCH_WS_SUBSCRIBERS",
        value_delimiter = ',',
        default_value = "10000,5000,1000"
    )]
    subscribers: Vec<usize>,
    /// Updates per latency run.
    #[arg(long, env = "TIDINGS_BENCH_WS_UPDATES", default_value_t = 50)]
    updates: u64,
    /// Pause between two updates of a latency run; 0 picks one long enough for each update to
    /// be delivered alone: 100 ms, or 1 ms per 10 subscribers when that is more.
    #[arg(long, env = "TIDINGS_BENCH_WS_INTERVAL_MS", default_value_t = 0)]
    interval_ms: u64,
    /// Subscribers of the throughput run.
    #[arg(
        long,
        env = "TIDINGS_BENCH_WS_BURST_SUBSCRIBERS",
        default_value_t = 1000
    )]
    burst_subscribers: usize,
    /// Updates of the throughput run, published back to back.
    #[arg(long, env = "TIDINGS_BENCH_WS_BURST_UPDATES", default_value_t = 200)]
    burst_updates: u64,
    /// Readers of the never-reading-client comparison (0 skips it).
    #[arg(
        long,
        env = "TIDINGS_BENCH_WS_STALL_SUBSCRIBERS",
        default_value_t = 1000
    )]
    stall_subscribers: usize,
    /// Updates of each run of that comparison.
    #[arg(long, env = "TIDINGS_BENCH_WS_STALL_UPDATES", default_value_t = 200)]
    stall_updates: u64,
    /// Pause between those updates.
    #[arg(
        long,
        env = "TIDINGS_BENCH_WS_STALL_INTERVAL_MS",
        default_value_t = 100
    )]
    stall_interval_ms: u64,
    /// Worker threads of this client's runtime.
    #[arg(long, env = "TIDINGS_BENCH_WS_CLIENT_THREADS", default_value_t = 2)]
    client_threads: usize,
    /// Connections being opened at once.
    #[arg(long, env = "TIDINGS_BENCH_WS_OPENING", default_value_t = 64)]
    opening: usize,
    /// Accepts cargo bench's own flag.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The flood that jams the never-reading client: 450 updates back to back, frames of ~32 KB
/// (the message is in the progress and in the event), ~15 MB in all. Loopback's socket buffers
/// take ~85 of them (~2.8 MB); the rest, ~365, wait in its outbox, fewer than the 512 that close
/// it: it is stuck but not yet closed when the measured run starts, and the run's updates (two
/// frames each: the stage change and the progress tick after it) overflow it part-way.
const FLOOD_UPDATES: u64 = 450;
const FLOOD_PADDING: usize = 16 * 1024;
/// The receive buffer of the never-reading client's socket.
const STUCK_RECEIVE_BUFFER: u32 = 4096;
const ADMIN: &str = "bench";
const PASSWORD: &str = "a benchmark password that is long enough";
/// Latency histogram: 10 µs buckets up to 5 s.
const BUCKET_MICROS: u64 = 10;
const BUCKETS: usize = 500_000;

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads.max(1))
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let files = raise_open_file_limit();
    let mut counts = options.subscribers.clone();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts.dedup();
    let server = ServerProcess::start(files);
    println!(
        "WebSocket load benchmark: server pid {} at {}, open-file limit {files}, client threads {}",
        server.pid(),
        server.address,
        options.client_threads
    );
    let bench = Bench::connect(server, &options).await;
    let mut report = Report::default();

    // 1 and 2: memory of idle connections, then latency at each count, largest first.
    let largest = counts.first().copied().unwrap_or(0);
    for (run, &count) in counts.iter().enumerate() {
        let interval_ms = match options.interval_ms {
            0 => (count as u64 / 10).max(100),
            chosen => chosen,
        };
        let task = bench
            .broadcast(json!({ "updates": options.updates, "interval_ms": interval_ms }))
            .await;
        if run == 0 {
            let before = bench.server.rss_kb();
            bench.open(largest).await;
            settle().await;
            let opened = bench.server.rss_kb();
            let round = bench.subscribe(&task, count, options.updates).await;
            settle().await;
            let subscribed = bench.server.rss_kb();
            let per = |after: u64| (after.saturating_sub(before)) as f64 / largest as f64;
            println!(
                "memory: server RSS {before} KB before, {opened} KB with {largest} open idle \
                 connections ({:.2} KB each), {subscribed} KB once each subscribed to the task \
                 ({:.2} KB each)",
                per(opened),
                per(subscribed)
            );
            report.memory = Some((largest, per(opened), per(subscribed)));
            let result = bench.measure(&task, &round).await;
            result.print(&format!(
                "latency, {count} subscribers, {interval_ms} ms apart"
            ));
            report.latency.push((count, interval_ms, result));
        } else {
            let round = bench.subscribe(&task, count, options.updates).await;
            let result = bench.measure(&task, &round).await;
            result.print(&format!(
                "latency, {count} subscribers, {interval_ms} ms apart"
            ));
            report.latency.push((count, interval_ms, result));
        }
    }

    // 3: throughput.
    if options.burst_subscribers > 0 {
        let task = bench
            .broadcast(json!({ "updates": options.burst_updates, "interval_ms": 0 }))
            .await;
        bench.open(options.burst_subscribers).await;
        let round = bench
            .subscribe(&task, options.burst_subscribers, options.burst_updates)
            .await;
        let result = bench.measure(&task, &round).await;
        result.print(&format!(
            "throughput, {} subscribers × {} updates back to back",
            options.burst_subscribers, options.burst_updates
        ));
        report.throughput = Some((options.burst_subscribers, options.burst_updates, result));
    }

    // 4: one never-reading client.
    if options.stall_subscribers > 0 {
        report.stall = Some(bench.stall(&options).await);
    }

    report.rss_end_kb = bench.server.rss_kb();
    report.print();
    bench.server.stop();
}

/// Lets the server finish what it was doing (and the allocator settle) before a reading.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Raises this process's soft limit of open files to its hard limit (the server inherits it);
/// answers the limit.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(maximum) = limit.maximum
        && limit.current.is_some_and(|current| current < maximum)
    {
        let raised = rustix::process::Rlimit {
            current: Some(maximum),
            maximum: Some(maximum),
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            eprintln!("cannot raise the open-file limit: {error}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// CPU time the whole machine spent busy (every CPU), from `/proc/stat`.
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let ticks: u64 = stat
        .lines()
        .next()
        .expect("the cpu line")
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        // user nice system idle iowait irq softirq steal: all but idle and iowait.
        .filter(|(field, _)| *field != 3 && *field != 4)
        .map(|(_, value)| value.parse::<u64>().unwrap_or(0))
        .sum();
    Duration::from_secs_f64(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

// ---------------------------------------------------------------------------------------------
// The server process

/// The `tidings` binary, killed when dropped (also when the benchmark panics).
struct ServerProcess {
    child: Child,
    address: SocketAddr,
    directory: tempfile::TempDir,
    /// When the server logged that it closed a client for not keeping up.
    slow_closed: Arc<Mutex<Vec<Instant>>>,
    /// Warnings and errors the server logged.
    problems: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    fn start(files: u64) -> ServerProcess {
        let directory = tempfile::tempdir().expect("temporary directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(directory.path())
            .args([
                "--leptos-config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
            ])
            .args(["--admin-user", ADMIN, "--admin-password", PASSWORD])
            .args(["--max-concurrent-tasks", "8"])
            .env("TIDINGS_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tidings binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let slow_closed = Arc::new(Mutex::new(Vec::new()));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel();
        {
            let (slow_closed, problems) = (slow_closed.clone(), problems.clone());
            // Reads the log to its end: a full pipe would block the server.
            std::thread::spawn(move || {
                let mut found = Some(found);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1)
                        && let Some(found) = found.take()
                    {
                        let _ = found.send(rest.split_whitespace().next().map(str::to_owned));
                    }
                    if line.contains("cannot keep up") {
                        slow_closed.lock().unwrap().push(Instant::now());
                    } else if line.contains("WARN") || line.contains("ERROR") {
                        let mut problems = problems.lock().unwrap();
                        if problems.len() < 100 {
                            problems.push(line);
                        }
                    }
                }
            });
        }
        let mut server = ServerProcess {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            directory,
            slow_closed,
            problems,
        };
        let address = address
            .recv_timeout(Duration::from_secs(60))
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!(
                    "the server did not say where it listens (open-file limit {files}); log: {:?}",
                    server.problems.lock().unwrap()
                )
            });
        server.address = address.parse().expect("a socket address");
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, KB (`VmRSS`).
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .expect("a VmRSS line")
    }

    fn cpu(&self) -> Duration {
        cpu_time(&format!("/proc/{}/stat", self.pid()))
    }

    /// Asks the server to stop (SIGTERM), then kills it if it has not within 10 s.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the server did not stop within 10 s of SIGTERM; killing it");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time of a process, from its `/proc/…/stat`.
fn cpu_time(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).expect("a /proc stat file");
    // The fields after the command name (which may hold spaces) start with the state, field 3;
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = rustix::param::clock_ticks_per_second();
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

// ---------------------------------------------------------------------------------------------
// The benchmark's client

struct Bench {
    server: ServerProcess,
    cookie: Arc<str>,
    db: Database,
    engine: TaskEngine,
    /// The current round; every connection follows it.
    rounds: watch::Sender<Option<Arc<Round>>>,
    /// Connections numbered `0..open` are open.
    open: AtomicUsize,
    opening: usize,
    next_go: AtomicUsize,
}

/// One test task and the file that starts it.
struct BroadcastTask {
    id: Uuid,
    go_file: PathBuf,
}

impl Bench {
    /// Signs in as the administrator and opens the server's database to enqueue tasks (the
    /// binary has no endpoint that creates one; its dispatcher finds them within a second).
    async fn connect(server: ServerProcess, options: &Options) -> Bench {
        let http = reqwest::Client::new();
        let response = http
            .post(format!("http://{}/api/auth/login", server.address))
            .json(&json!({ "username": ADMIN, "password": PASSWORD }))
            .send()
            .await
            .expect("login answered");
        assert!(
            response.status().is_success(),
            "login: {}",
            response.status()
        );
        let cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("tidings_session="))
            .and_then(|value| value.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let location = DatabaseLocation::SqliteFile(server.directory.path().join("tidings.db"));
        let db = Database::connect(&location)
            .await
            .expect("the server's database");
        let config = Arc::new(Config::try_parse_from(["tidings"]).unwrap());
        // Never started: it only writes tasks for the server to run.
        let engine = TaskEngine::new(
            db.clone(),
            tidings::jobs::registry(
                &tidings::jobs::AnalysisTools::new(&Default::default()).unwrap(),
            ),
            config,
        );
        Bench {
            server,
            cookie: cookie.into(),
            db,
            engine,
            rounds: watch::channel(None).0,
            open: AtomicUsize::new(0),
            opening: options.opening.max(1),
            next_go: AtomicUsize::new(0),
        }
    }

    /// Enqueues a `test.broadcast` task with `input` (plus its go file) and waits until it runs
    /// (and waits for its go file).
    async fn broadcast(&self, mut input: serde_json::Value) -> BroadcastTask {
        let go = self.next_go.fetch_add(1, Ordering::Relaxed);
        let go_file = self.server.directory.path().join(format!("go-{go}"));
        input["go_file"] = json!(go_file);
        let id = self
            .engine
            .enqueue(TaskRequest {
                kind: "test.broadcast".into(),
                name: format!("ws_load {go}"),
                owner_id: None,
                input,
                priority: 0,
                retry_of: None,
            })
            .await
            .expect("task enqueued");
        self.wait_for_status(id, TaskStatus::Running).await;
        BroadcastTask { id, go_file }
    }

    async fn wait_for_status(&self, id: Uuid, status: TaskStatus) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let task = self.db.task(id).await.expect("task read").expect("task");
            if task.status == status {
                return;
            }
            assert!(
                Instant::now() < deadline && (!task.status.is_finished() || status.is_finished()),
                "task {id} is {:?}, expected {status:?} ({:?})",
                task.status,
                task.error
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens connections until `count` are open, `opening` at a time, each followed by its own
    /// reading task.
    async fn open(&self, count: usize) {
        let first = self.open.load(Ordering::Relaxed);
        if count <= first {
            return;
        }
        let started = Instant::now();
        let address = self.server.address;
        let next = Arc::new(AtomicUsize::new(first));
        let openers: Vec<_> = (0..self.opening.min(count - first))
            .map(|_| {
                let (next, cookie, rounds) =
                    (next.clone(), self.cookie.clone(), self.rounds.subscribe());
                tokio::spawn(async move {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            return;
                        }
                        let conn = tokio::time::timeout(
                            Duration::from_secs(60),
                            Conn::open(address, &cookie, None),
                        )
                        .await
                        .unwrap_or_else(|_| panic!("connection {index}: open timed out"))
                        .unwrap_or_else(|error| panic!("connection {index}: {error}"));
                        tokio::spawn(follow(index, conn, rounds.clone()));
                    }
                })
            })
            .collect();
        for opener in openers {
            opener.await.expect("opener");
        }
        self.open.store(count, Ordering::Relaxed);
        let elapsed = started.elapsed();
        println!(
            "opened {} connections in {:.1} s ({:.0}/s)",
            count - first,
            elapsed.as_secs_f64(),
            (count - first) as f64 / elapsed.as_secs_f64()
        );
    }

    /// Starts a round: connections `0..participants` subscribe to `task` (the others close);
    /// waits for every snapshot.
    async fn subscribe(
        &self,
        task: &BroadcastTask,
        participants: usize,
        updates: u64,
    ) -> Arc<Round> {
        assert!(
            participants <= self.open.load(Ordering::Relaxed),
            "only {} connections open",
            self.open.load(Ordering::Relaxed)
        );
        let round = Arc::new(Round::new(task.id, participants, updates as usize));
        let started = Instant::now();
        self.rounds.send_replace(Some(round.clone()));
        self.open.store(participants, Ordering::Relaxed);
        let deadline = started + Duration::from_secs(120);
        while round.subscribed.load(Ordering::Relaxed) < participants {
            assert!(
                round.closed.load(Ordering::Relaxed) == 0
                    && round.errors.load(Ordering::Relaxed) == 0,
                "connections closed ({}) or refused ({}) while subscribing",
                round.closed.load(Ordering::Relaxed),
                round.errors.load(Ordering::Relaxed)
            );
            assert!(
                Instant::now() < deadline,
                "only {} of {participants} subscribed",
                round.subscribed.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "{participants} connections subscribed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        round
    }

    /// Starts the task's updates and waits until every participant has them all (or a minute
    /// past the time they should take).
    async fn measure(&self, task: &BroadcastTask, round: &Round) -> RoundResult {
        let server_cpu = self.server.cpu();
        let client_cpu = cpu_time("/proc/self/stat");
        let machine_cpu = machine_busy();
        std::fs::write(&task.go_file, b"go").expect("go file");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        loop {
            let done =
                round.finished.load(Ordering::Relaxed) + round.closed.load(Ordering::Relaxed);
            if done >= round.participants || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let server_cpu = self.server.cpu() - server_cpu;
        let client_cpu = cpu_time("/proc/self/stat") - client_cpu;
        let others_cpu = (machine_busy() - machine_cpu).saturating_sub(server_cpu + client_cpu);
        let result = RoundResult::of(round, server_cpu, client_cpu, others_cpu);
        self.wait_for_status(task.id, TaskStatus::Completed).await;
        result
    }

    /// The latency of `stall_subscribers` readers without, then with, one more subscriber that
    /// never reads.
    async fn stall(&self, options: &Options) -> Stall {
        let input =
            json!({ "updates": options.stall_updates, "interval_ms": options.stall_interval_ms });
        let readers = options.stall_subscribers;
        self.open(readers).await;

        let task = self.broadcast(input.clone()).await;
        let round = self.subscribe(&task, readers, options.stall_updates).await;
        let without = self.measure(&task, &round).await;
        without.print(&format!(
            "{readers} readers, {} updates {} ms apart, alone",
            options.stall_updates, options.stall_interval_ms
        ));

        let flood = self
            .broadcast(json!({ "updates": FLOOD_UPDATES, "padding": FLOOD_PADDING }))
            .await;
        let task = self.broadcast(input).await;
        // The never-reading client subscribes to the measured task and to the flood, reads the
        // two snapshots, and never reads again.
        let mut stuck = Conn::open(
            self.server.address,
            &self.cookie,
            Some(STUCK_RECEIVE_BUFFER),
        )
        .await
        .expect("the never-reading client connects");
        stuck.subscribe(task.id, None).await;
        stuck.subscribe(flood.id, None).await;
        stuck.wait_for_snapshots(2).await;
        let round = self.subscribe(&task, readers, options.stall_updates).await;
        let flood_started = Instant::now();
        std::fs::write(&flood.go_file, b"go").expect("go file");
        self.wait_for_status(flood.id, TaskStatus::Completed).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stuck_started = Instant::now();
        let with = self.measure(&task, &round).await;
        with.print(&format!(
            "{readers} readers, {} updates {} ms apart, with one never-reading subscriber",
            options.stall_updates, options.stall_interval_ms
        ));
        let closed_for_overflow = self
            .server
            .slow_closed
            .lock()
            .unwrap()
            .iter()
            .find(|&&at| at > flood_started)
            .map(|&at| match at.checked_duration_since(stuck_started) {
                Some(after) => after.as_secs_f64(),
                None => -(stuck_started - at).as_secs_f64(),
            });
        // What did the stuck client end with? Read everything the server still had for it.
        let ending = stuck.drain(Duration::from_secs(20)).await;
        let stall = Stall {
            readers,
            without,
            with,
            closed_for_overflow,
            ending,
        };
        println!(
            "never-reading client: {}; reading it afterwards found {}",
            stall.closing(),
            stall.ending
        );
        stall
    }
}

// ---------------------------------------------------------------------------------------------
// Rounds and their results

/// What the connections record for one task's updates.
struct Round {
    task: Uuid,
    /// The task id as it appears in frames.
    task_text: String,
    participants: usize,
    updates: usize,
    /// Each update's stamp (µs since the epoch), from its frames.
    stamps: Vec<AtomicU64>,
    /// Each update's latest arrival over all connections.
    last_arrival: Vec<AtomicU64>,
    /// Latency of every delivery, by 10 µs bucket.
    histogram: Vec<AtomicU32>,
    /// Distinct updates delivered, over all connections.
    delivered: AtomicU64,
    /// Frames of the task received (updates, repeats of them in progress ticks, the task's end).
    frames: AtomicU64,
    subscribed: AtomicUsize,
    /// Connections that received every update.
    finished: AtomicUsize,
    /// Connections that the server closed during the round.
    closed: AtomicUsize,
    errors: AtomicUsize,
}

impl Round {
    fn new(task: Uuid, participants: usize, updates: usize) -> Round {
        let zeros = |count| (0..count).map(|_| AtomicU64::new(0)).collect();
        Round {
            task,
            task_text: task.hyphenated().to_string(),
            participants,
            updates,
            stamps: zeros(updates),
            last_arrival: zeros(updates),
            histogram: (0..=BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            delivered: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            subscribed: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
        }
    }
}

struct RoundResult {
    participants: usize,
    updates: usize,
    /// Per update, stamp → arrival at its last subscriber; sorted.
    to_all: Vec<Duration>,
    /// The updates slowest to reach everybody, slowest first.
    worst: Vec<usize>,
    delivery_p50: Duration,
    delivery_p99: Duration,
    delivered: u64,
    frames: u64,
    /// First stamp → last arrival.
    span: Duration,
    /// First stamp → last stamp: how long the job took to publish.
    publishing: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
    /// CPU time the machine spent on anything else meanwhile (other processes, interrupts).
    others_cpu: Duration,
}

impl RoundResult {
    fn of(
        round: &Round,
        server_cpu: Duration,
        client_cpu: Duration,
        others_cpu: Duration,
    ) -> RoundResult {
        let read = |values: &[AtomicU64]| -> Vec<u64> {
            values
                .iter()
                .map(|value| value.load(Ordering::Relaxed))
                .collect()
        };
        let (stamps, arrivals) = (read(&round.stamps), read(&round.last_arrival));
        let mut by_update: Vec<(Duration, usize)> = stamps
            .iter()
            .zip(&arrivals)
            .enumerate()
            .filter(|(_, (stamp, arrival))| **stamp > 0 && **arrival > 0)
            .map(|(index, (stamp, arrival))| {
                (Duration::from_micros(arrival.saturating_sub(*stamp)), index)
            })
            .collect();
        by_update.sort();
        let to_all = by_update.iter().map(|(latency, _)| *latency).collect();
        let worst = by_update
            .iter()
            .rev()
            .take(3)
            .map(|(_, index)| *index)
            .collect();
        let first_stamp = stamps.iter().copied().filter(|&stamp| stamp > 0).min();
        let last_arrival = arrivals.iter().copied().max();
        let last_stamp = stamps.iter().copied().max();
        let publishing = match (first_stamp, last_stamp) {
            (Some(first), Some(last)) => Duration::from_micros(last.saturating_sub(first)),
            _ => Duration::ZERO,
        };
        let span = match (first_stamp, last_arrival) {
            (Some(first), Some(last)) => Duration::from_micros(last.saturating_sub(first)),
            _ => Duration::ZERO,
        };
        let counts: Vec<u64> = round
            .histogram
            .iter()
            .map(|count| u64::from(count.load(Ordering::Relaxed)))
            .collect();
        let total: u64 = counts.iter().sum();
        let quantile = |fraction: f64| {
            let rank = ((total as f64 * fraction).ceil() as u64).max(1);
            let mut seen = 0;
            for (bucket, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return Duration::from_micros((bucket as u64 + 1) * BUCKET_MICROS);
                }
            }
            Duration::ZERO
        };
        RoundResult {
            participants: round.participants,
            updates: round.updates,
            to_all,
            worst,
            delivery_p50: quantile(0.50),
            delivery_p99: quantile(0.99),
            delivered: round.delivered.load(Ordering::Relaxed),
            frames: round.frames.load(Ordering::Relaxed),
            span,
            publishing,
            server_cpu,
            client_cpu,
            others_cpu,
        }
    }

    /// CPU time per frame received, µs.
    fn per_frame(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.frames.max(1) as f64
    }

    fn to_all(&self, fraction: f64) -> Duration {
        percentile(&self.to_all, fraction)
    }

    fn missing(&self) -> u64 {
        (self.participants * self.updates) as u64 - self.delivered
    }

    fn rate(&self) -> f64 {
        self.delivered as f64 / self.span.as_secs_f64().max(1e-9)
    }

    fn print(&self, what: &str) {
        println!(
            "{what}: one update to all p50 {} / p99 {} / max {} (slowest updates: {:?}); \
             single delivery p50 {} / p99 {}; \
             {} deliveries ({} missing, {} frames) in {:.3} s (published in {:.3} s) = {:.0}/s; \
             CPU server {:.2} s ({:.1} µs per frame), client {:.2} s ({:.1} µs per frame), \
             anything else {:.2} s",
            ms(self.to_all(0.50)),
            ms(self.to_all(0.99)),
            ms(self.to_all.last().copied().unwrap_or_default()),
            self.worst,
            ms(self.delivery_p50),
            ms(self.delivery_p99),
            self.delivered,
            self.missing(),
            self.frames,
            self.span.as_secs_f64(),
            self.publishing.as_secs_f64(),
            self.rate(),
            self.server_cpu.as_secs_f64(),
            self.per_frame(self.server_cpu),
            self.client_cpu.as_secs_f64(),
            self.per_frame(self.client_cpu),
            self.others_cpu.as_secs_f64(),
        );
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

struct Stall {
    readers: usize,
    without: RoundResult,
    with: RoundResult,
    /// When the server closed it for overflowing its outbox, in seconds after the measured run
    /// started (negative: before).
    closed_for_overflow: Option<f64>,
    ending: String,
}

impl Stall {
    fn closing(&self) -> String {
        match self.closed_for_overflow {
            Some(seconds) => format!(
                "closed for overflowing its outbox {seconds:.1} s after the measured run started"
            ),
            None => "not closed for overflowing its outbox".into(),
        }
    }
}

#[derive(Default)]
struct Report {
    /// Connections, KB per open connection, KB per subscribed connection.
    memory: Option<(usize, f64, f64)>,
    /// Subscribers, interval, result.
    latency: Vec<(usize, u64, RoundResult)>,
    throughput: Option<(usize, u64, RoundResult)>,
    stall: Option<Stall>,
    rss_end_kb: u64,
}

impl Report {
    fn print(&self) {
        println!();
        println!("| Measure | Result | SPEC §6 target |");
        println!("|---|---|---|");
        if let Some((count, open, subscribed)) = self.memory {
            println!(
                "| Server memory per idle connection ({count} open; subscribed) | {open:.1} KB; \
                 {subscribed:.1} KB | < 10 KB |"
            );
        }
        for (count, interval_ms, result) in &self.latency {
            let target = match count {
                5000 => "p99 < 20 ms",
                10000 => "p99 < 50 ms",
                _ => "",
            };
            println!(
                "| One update to all {count} subscribers, p50 / p99 ({} updates {} ms apart) | \
                 {} / {} ({} missing) | {target} |",
                result.updates,
                interval_ms,
                ms(result.to_all(0.50)),
                ms(result.to_all(0.99)),
                result.missing()
            );
        }
        if let Some((subscribers, updates, result)) = &self.throughput {
            println!(
                "| Deliveries/s, {subscribers} subscribers × {updates} updates | {:.0}/s \
                 ({} missing) | ≥ 358,500/s |",
                result.rate(),
                result.missing()
            );
        }
        if let Some(stall) = &self.stall {
            let (without, with) = (stall.without.to_all(0.99), stall.with.to_all(0.99));
            println!(
                "| p99 to all {} readers without / with one never-reading subscriber | {} / {} \
                 (×{:.2}); stuck client {} | ≤ ×2 |",
                stall.readers,
                ms(without),
                ms(with),
                with.as_secs_f64() / without.as_secs_f64().max(1e-9),
                stall.closing(),
            );
        }
        println!("| Server RSS at the end | {} KB | |", self.rss_end_kb);
    }
}

// ---------------------------------------------------------------------------------------------
// One connection

/// Reads a connection for its whole life: answers pings, follows the rounds (subscribing to
/// each round's task, or closing when the round has fewer participants than its number), and
/// records the updates of the current round's task.
async fn follow(index: usize, mut conn: Conn, mut rounds: watch::Receiver<Option<Arc<Round>>>) {
    let mut current: Option<Following> = None;
    loop {
        tokio::select! {
            changed = rounds.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(round) = rounds.borrow_and_update().clone() else {
                    continue;
                };
                if index >= round.participants {
                    return;
                }
                let previous = current.as_ref().map(|following| following.round.task);
                conn.subscribe(round.task, previous).await;
                current = Some(Following::new(round));
            }
            read = conn.read_more() => {
                match read {
                    Ok(0) | Err(_) => {
                        if let Some(following) = &current {
                            following.round.closed.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    Ok(_) => {}
                }
                let now = micros_now();
                let mut pongs = Vec::new();
                let mut closed = false;
                conn.each_frame(|opcode, payload| match opcode {
                    OPCODE_TEXT => {
                        if let Some(following) = &mut current {
                            following.text(payload, now);
                        }
                    }
                    OPCODE_PING => pongs.push(client_frame(OPCODE_PONG, payload)),
                    OPCODE_CLOSE => closed = true,
                    _ => {}
                });
                for pong in pongs {
                    if conn.stream.write_all(&pong).await.is_err() {
                        closed = true;
                    }
                }
                if closed {
                    if let Some(following) = &current {
                        following.round.closed.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
        }
    }
}

/// One connection's part of a round.
struct Following {
    round: Arc<Round>,
    received: Vec<bool>,
    count: usize,
    subscribed: bool,
}

static FIRST_ERROR: AtomicBool = AtomicBool::new(true);

impl Following {
    fn new(round: Arc<Round>) -> Following {
        Following {
            received: vec![false; round.updates],
            round,
            count: 0,
            subscribed: false,
        }
    }

    fn text(&mut self, frame: &[u8], now: u64) {
        let round = &*self.round;
        if frame.starts_with(br#"{"type":"task_update""#) {
            let Some(task) = after(frame, br#""task_id":""#) else {
                return;
            };
            if !task.starts_with(round.task_text.as_bytes()) {
                return; // a late frame of an earlier round's task
            }
            round.frames.fetch_add(1, Ordering::Relaxed);
            let Some((index, stamp)) = after(frame, br#""message":"b:"#).and_then(stamp) else {
                return;
            };
            let index = index as usize;
            // Progress ticks and the task's end repeat the last message: count each update once.
            if index >= self.received.len() || self.received[index] {
                return;
            }
            self.received[index] = true;
            self.count += 1;
            round.stamps[index].store(stamp, Ordering::Relaxed);
            round.last_arrival[index].fetch_max(now, Ordering::Relaxed);
            let bucket = (now.saturating_sub(stamp) / BUCKET_MICROS) as usize;
            round.histogram[bucket.min(BUCKETS)].fetch_add(1, Ordering::Relaxed);
            round.delivered.fetch_add(1, Ordering::Relaxed);
            if self.count == round.updates {
                round.finished.fetch_add(1, Ordering::Relaxed);
            }
        } else if frame.starts_with(br#"{"type":"task_snapshot""#) {
            if !self.subscribed && contains(frame, round.task_text.as_bytes()) {
                self.subscribed = true;
                round.subscribed.fetch_add(1, Ordering::Relaxed);
            }
        } else if frame.starts_with(br#"{"type":"error""#) {
            round.errors.fetch_add(1, Ordering::Relaxed);
            if FIRST_ERROR.swap(false, Ordering::Relaxed) {
                eprintln!("server error frame: {}", String::from_utf8_lossy(frame));
            }
        }
    }
}

/// The bytes after the first `needle` in `haystack`.
fn after<'a>(haystack: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| &haystack[at + needle.len()..])
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    after(haystack, needle).is_some()
}

/// `<index>:<stamp>:` → (index, stamp).
fn stamp(text: &[u8]) -> Option<(u64, u64)> {
    let number = |text: &[u8]| -> Option<(u64, usize)> {
        let digits = text.iter().take_while(|byte| byte.is_ascii_digit()).count();
        let value = std::str::from_utf8(&text[..digits]).ok()?.parse().ok()?;
        (text.get(digits) == Some(&b':')).then_some((value, digits + 1))
    };
    let (index, used) = number(text)?;
    let (stamp, _) = number(&text[used..])?;
    Some((index, stamp))
}

const OPCODE_TEXT: u8 = 0x1;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;
const READ_CHUNK: usize = 4096;

/// A client WebSocket on raw TCP.
struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet handled.
    buffer: Vec<u8>,
}

impl Conn {
    /// Connects, upgrades with the session cookie and reads the `hello` frame.
    /// `receive_buffer` shrinks the socket's receive buffer (for the never-reading client).
    async fn open(
        address: SocketAddr,
        cookie: &str,
        receive_buffer: Option<u32>,
    ) -> std::io::Result<Conn> {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let mut stream = socket.connect(address).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Cookie: {cookie}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut conn = Conn {
            stream,
            buffer: Vec::with_capacity(READ_CHUNK),
        };
        let head_end = loop {
            if let Some(at) = conn
                .buffer
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
            {
                break at + 4;
            }
            if conn.read_more().await? == 0 {
                return Err(std::io::Error::other("closed during the upgrade"));
            }
        };
        let head = String::from_utf8_lossy(&conn.buffer[..head_end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(std::io::Error::other(format!("upgrade refused: {head}")));
        }
        conn.buffer.drain(..head_end);
        let mut hello = false;
        while !hello {
            conn.each_frame(|opcode, payload| {
                hello |= opcode == OPCODE_TEXT && payload.starts_with(br#"{"type":"hello""#);
            });
            if !hello && conn.read_more().await? == 0 {
                return Err(std::io::Error::other("closed before hello"));
            }
        }
        Ok(conn)
    }

    async fn read_more(&mut self) -> std::io::Result<usize> {
        self.buffer.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.buffer).await
    }

    /// Calls `handle` with each whole frame in the buffer, and drops them from it.
    fn each_frame(&mut self, mut handle: impl FnMut(u8, &[u8])) {
        let mut used = 0;
        while let Some((opcode, payload)) = parse_frame(&self.buffer[used..]) {
            handle(
                opcode,
                &self.buffer[used + payload.start..used + payload.end],
            );
            used += payload.end;
        }
        self.buffer.drain(..used);
    }

    /// Subscribes to `task`, unsubscribing from `previous` first.
    async fn subscribe(&mut self, task: Uuid, previous: Option<Uuid>) {
        let mut frames = Vec::new();
        if let Some(previous) = previous {
            let text =
                format!(r#"{{"type":"unsubscribe","topic":{{"kind":"task","id":"{previous}"}}}}"#);
            frames.extend(client_frame(OPCODE_TEXT, text.as_bytes()));
        }
        let text = format!(r#"{{"type":"subscribe","topic":{{"kind":"task","id":"{task}"}}}}"#);
        frames.extend(client_frame(OPCODE_TEXT, text.as_bytes()));
        // A failed write shows as a closed connection when it is read next.
        let _ = self.stream.write_all(&frames).await;
    }

    /// Reads until `count` task snapshots have come.
    async fn wait_for_snapshots(&mut self, count: usize) {
        let mut seen = 0;
        loop {
            self.each_frame(|opcode, payload| {
                if opcode == OPCODE_TEXT && payload.starts_with(br#"{"type":"task_snapshot""#) {
                    seen += 1;
                }
            });
            if seen >= count {
                return;
            }
            let read = tokio::time::timeout(Duration::from_secs(30), self.read_more()).await;
            assert!(
                matches!(read, Ok(Ok(read)) if read > 0),
                "no snapshot for the never-reading client"
            );
        }
    }

    /// Reads everything left, for at most `patience`, and says how the connection ended.
    async fn drain(mut self, patience: Duration) -> String {
        let deadline = tokio::time::Instant::now() + patience;
        let (mut frames, mut bytes) = (0u64, 0usize);
        let mut close = None;
        loop {
            self.each_frame(|opcode, payload| {
                frames += 1;
                if opcode == OPCODE_CLOSE && payload.len() >= 2 {
                    close = Some(format!(
                        "close code {} ({})",
                        u16::from_be_bytes([payload[0], payload[1]]),
                        String::from_utf8_lossy(&payload[2..])
                    ));
                }
            });
            if let Some(close) = close {
                return format!("{frames} frames ({bytes} bytes), then {close}");
            }
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(Ok(0)) => {
                    return format!(
                        "{frames} frames ({bytes} bytes), then the end of the stream without a \
                         close frame"
                    );
                }
                Ok(Ok(read)) => bytes += read,
                Ok(Err(error)) => {
                    return format!("{frames} frames ({bytes} bytes), then {error}");
                }
                Err(_) => {
                    return format!(
                        "{frames} frames ({bytes} bytes) and the connection still open after \
                         {} s",
                        patience.as_secs()
                    );
                }
            }
        }
    }
}

/// A whole server frame at the start of `buffer`: its opcode and where its payload lies; the
/// payload's end is the frame's length. Server frames are never masked.
fn parse_frame(buffer: &[u8]) -> Option<(u8, Range<usize>)> {
    let (&first, &second) = (buffer.first()?, buffer.get(1)?);
    assert_eq!(second & 0x80, 0, "a masked frame from the server");
    let (length, start) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buffer.get(2)?, *buffer.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buffer.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        length => (usize::from(length), 2),
    };
    let end = start + length;
    (buffer.len() >= end).then_some((first & 0x0f, start..end))
}

/// A final client frame. Client frames must be masked; the mask key is zero, so the payload is
/// sent as it is.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        length @ 0..126 => frame.push(0x80 | length as u8),
        length @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend((length as u16).to_be_bytes());
        }
        length => {
            frame.push(0x80 | 127);
            frame.extend((length as u64).to_be_bytes());
        }
    }
    frame.extend([0; 4]);
    frame.extend(payload);
    frame
}
