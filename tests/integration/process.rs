//! The `tidings` binary as an operator runs it: start-up, logs, and shutdown on signals.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser as _;
use serde_json::json;
use tidings::{
    api::{accounts::Role, tasks::TaskStatus},
    config::{Config, DatabaseLocation},
    db::{Database, NewUser},
    engine::{TaskEngine, TaskRequest},
};

/// The `tidings` binary serving on an ephemeral port.
struct Binary {
    child: KillOnDrop,
    logs: std::io::Lines<BufReader<std::process::ChildStderr>>,
    address: String,
}

impl Binary {
    /// Starts the binary on `data_dir` and waits for its "listening" log line.
    fn start(data_dir: &Path, extra_args: &[&str]) -> Binary {
        let child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .args([
                "--leptos-config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
            ])
            .args(extra_args)
            .env("TIDINGS_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let mut logs = BufReader::new(child.0.stderr.take().unwrap()).lines();
        let address = logs
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let rest = line.split("listening on http://").nth(1)?;
                rest.split_whitespace().next().map(str::to_owned)
            })
            .expect("a listening log line");
        Binary {
            child,
            logs,
            address,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Starts the binary, checks that it serves, then sends `signal` and expects a clean exit.
fn serve_then_stop_with(signal: &str) {
    let directory = tempfile::tempdir().unwrap();
    let mut binary = Binary::start(directory.path(), &[]);
    let address = &binary.address;
    let health = std::net::TcpStream::connect(address).map(drop);
    assert!(
        health.is_ok(),
        "the server accepts connections at {address}"
    );
    assert!(
        directory.path().join("tidings.db").exists(),
        "the embedded database was created"
    );
    binary.signal(signal);
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = binary.child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit after {signal}: {exit}");
    let rest: Vec<String> = binary.logs.by_ref().map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");
}

/// Kills the server if the test fails before stopping it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_shuts_down_gracefully() {
    serve_then_stop_with("-TERM");
}

#[test]
fn sigint_shuts_down_gracefully() {
    serve_then_stop_with("-INT");
}

#[test]
fn a_bad_database_url_fails_start_up_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "--database-url",
            "mysql://root:hunter2@localhost/x",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--leptos-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
        ])
        .args([
            "--data-dir",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unsupported database URL scheme"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// SIGKILL while tasks run, then a restart: no task stays running; the retryable one runs
/// again and finishes, the other fails as interrupted — and their owner has one notification
/// of each ending.
#[tokio::test]
async fn tasks_running_at_a_crash_are_recovered_at_the_next_start() {
    let directory = tempfile::tempdir().unwrap();
    let first = Binary::start(directory.path(), &[]);
    let db = Database::connect(&DatabaseLocation::SqliteFile(
        directory.path().join("tidings.db"),
    ))
    .await
    .unwrap();
    // An engine that is never started: it only writes tasks for the binary to run.
    let config = Arc::new(Config::try_parse_from(["tidings"]).unwrap());
    let enqueuer = TaskEngine::new(
        db.clone(),
        tidings::jobs::registry(&tidings::jobs::AnalysisTools::new(&Default::default()).unwrap()),
        config,
    );
    let owner = db
        .insert_user(&NewUser {
            username: "ann",
            display_name: "Ann",
            password_hash: "not used",
            role: Role::User,
        })
        .await
        .unwrap();
    let enqueue = |kind: &str, steps: u64| TaskRequest {
        kind: kind.into(),
        name: format!("{kind} across a crash"),
        owner_id: Some(owner.id),
        input: json!({ "steps": steps, "step_ms": 50 }),
        priority: 0,
        retry_of: None,
    };
    let plain = enqueuer.enqueue(enqueue("test.steps", 600)).await.unwrap();
    let retryable = enqueuer
        .enqueue(enqueue("test.retryable_steps", 30))
        .await
        .unwrap();
    let status = |id| {
        let db = db.clone();
        async move { db.task(id).await.unwrap().unwrap() }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(plain).await.status != TaskStatus::Running
        || status(retryable).await.status != TaskStatus::Running
    {
        assert!(Instant::now() < deadline, "the tasks never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    first.signal("-KILL");
    drop(first);
    assert_eq!(
        status(plain).await.status,
        TaskStatus::Running,
        "a crash records nothing"
    );

    let second = Binary::start(directory.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (plain, retryable) = loop {
        let (plain, retryable) = (status(plain).await, status(retryable).await);
        if plain.status.is_finished() && retryable.status.is_finished() {
            break (plain, retryable);
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {:?} {:?}",
            plain.status,
            retryable.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(plain.status, TaskStatus::Failed);
    assert_eq!(
        plain.error.as_deref(),
        Some("interrupted by server restart")
    );
    assert_eq!(
        (retryable.status, retryable.attempt),
        (TaskStatus::Completed, 2)
    );
    let mut notified: Vec<_> = db
        .notifications_page(owner.id, false, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|notification| (notification.task_id.unwrap(), notification.kind))
        .collect();
    notified.sort();
    let mut expected = vec![
        (plain.id, "task_failed".to_owned()),
        (retryable.id, "task_complete".to_owned()),
    ];
    expected.sort();
    assert_eq!(notified, expected);
    second.signal("-TERM");
}
