//! Helpers shared by the CLI's process-level tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The bound on every wait for a process or a line: generous, for a loaded machine.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn midisock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_midisock"))
}

/// Stops and reaps the child when the test ends, pass or fail: SIGTERM first, so that it can
/// close what it holds (a JACK client killed mid-cycle stalls a synchronous jackd until its
/// timeout), then SIGKILL after a short grace.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            // SAFETY: signals our own child, not yet reaped, so the pid is still its.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Sends `signal` (libc::SIGINT, SIGTERM) to the child.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signals our own child, not yet reaped, so the pid is still its.
        assert_eq!(unsafe { libc::kill(self.0.id() as libc::pid_t, signal) }, 0);
    }

    /// Waits for the child to exit, failing the test after WAIT.
    pub fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the command did not exit within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Every line a reader produces, through a channel (so waits can time out).
pub fn lines_of(reader: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle` and returns it; lines before it are skipped.
pub fn wait_for_line(lines: &Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line containing {needle:?} within {WAIT:?}: {e}"),
        }
    }
}

/// Waits until every needle has been seen in some line, in any order.
pub fn wait_for_lines(lines: &Receiver<String>, needles: &[&str]) {
    let mut missing: Vec<&str> = needles.to_vec();
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !missing.is_empty() {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                missing.retain(|needle| !line.contains(needle));
                seen.push(line);
            }
            Err(e) => panic!("no lines containing {missing:?} within {WAIT:?} ({e}); the lines were {seen:#?}"),
        }
    }
}

/// The rest of the lines, once the writer has closed them.
pub fn remaining(lines: &Receiver<String>) -> Vec<String> {
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(WAIT) {
        rest.push(line);
    }
    rest
}

/// The port in "midisock: serving on 127.0.0.1:PORT (...)".
pub fn serving_port(line: &str) -> u16 {
    line.split_whitespace()
        .nth(3)
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
}

/// A directory of the test's own under the system's temp dir, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("midisock-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn join(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A midisock command running with all three pipes: stdin to write to, stdout and stderr as
/// lines.
pub struct Started {
    pub process: Running,
    pub stdin: std::process::ChildStdin,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
}

impl Started {
    /// Writes one line to the command's stdin and flushes it.
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

/// Starts `midisock ARGS...` (without a MIDISOCK_TOKEN from the environment).
pub fn start(args: &[&str]) -> Started {
    let mut child = midisock()
        .args(args)
        .env_remove("MIDISOCK_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    Started { process: Running(child), stdin, stdout, stderr }
}

/// Starts `midisock serve 127.0.0.1:0 EXTRA...` and returns it once it serves, with its port.
pub fn start_serve(extra: &[&str]) -> (Started, u16) {
    let mut args = vec!["serve", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let started = start(&args);
    let port = serving_port(&wait_for_line(&started.stderr, "serving on"));
    (started, port)
}

/// Waits until `server` has a client.
pub fn wait_for_client(server: &midisock::PortServer) {
    let deadline = Instant::now() + WAIT;
    while server.client_count() == 0 {
        assert!(Instant::now() < deadline, "the client never arrived within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
