//! The `tidings` binary as an operator runs it: start-up, logs, and shutdown on signals.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Starts the binary on an ephemeral port, waits for its "listening" log line, checks that it
/// serves, then sends `signal` and expects a clean exit.
fn serve_then_stop_with(signal: &str) {
    let directory = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            directory.path().to_str().unwrap(),
        ])
        .args([
            "--leptos-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
        ])
        .env("TIDINGS_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut child = KillOnDrop(child);
    let address = logs
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.split("listening on http://").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .expect("a listening log line");
    let health = std::net::TcpStream::connect(&address).map(drop);
    assert!(
        health.is_ok(),
        "the server accepts connections at {address}"
    );
    assert!(
        directory.path().join("tidings.db").exists(),
        "the embedded database was created"
    );

    let status = Command::new("kill")
        .args([signal, &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit after {signal}: {exit}");
    let rest: Vec<String> = logs.map_while(Result::ok).collect();
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
