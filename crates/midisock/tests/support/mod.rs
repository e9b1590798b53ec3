//! Helpers shared by the core's integration tests (`mod support;` in each test file): bounded
//! waits, child processes that cannot outlive a test, and the raw-connection helpers.
// Each test binary uses part of this module.
#![allow(dead_code)]

use midisock::{Message, RefusalCause, SocketPort};
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The longest any single wait may take: generous, so that only a real hang fails a test, even
/// on a machine loaded far past its cores.
pub const WAIT: Duration = Duration::from_secs(30);

/// Waits until `condition` holds, failing the test after [`WAIT`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The calling thread's kernel id, for [`wait_until_blocked`].
pub fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Waits until thread `tid` of this process sleeps in a blocking system call (read, recv, poll or
/// a futex: a receive waiting for data or for a lock), so a test acts on a blocked receiver and not
/// on one that has not started yet, whatever the load.
pub fn wait_until_blocked(tid: i32) {
    let task = format!("/proc/self/task/{tid}");
    eventually("the thread to block in a receive", || {
        let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
        // The state follows the parenthesised name, which may itself contain spaces.
        let sleeping = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('S'));
        let syscall = std::fs::read_to_string(format!("{task}/syscall")).unwrap_or_default();
        let number = syscall.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
        let blocking = [libc::SYS_read, libc::SYS_recvfrom, libc::SYS_poll, libc::SYS_ppoll, libc::SYS_futex];
        sleeping && number.is_some_and(|n| blocking.contains(&n))
    });
}

/// A child process that is killed and reaped when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything the server writes until it closes the connection, within `wait`.
pub fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut bytes = Vec::new();
    if let Err(e) = stream.read_to_end(&mut bytes) {
        assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed within {wait:?}");
    }
    bytes
}

/// The refusal notice on the wire, written out from docs/protocol.md: F4 "refused: <cause>" F7.
pub fn notice(cause: RefusalCause) -> Vec<u8> {
    [&[0xF4][..], b"refused: ", cause.as_str().as_bytes(), &[0xF7]].concat()
}

/// Runs the test named `scenario` of this same test binary in a child process, alone and on one
/// thread, with `child_env` set so the scenario knows it is the child (it returns at once
/// otherwise). For what must own the whole process: its descriptor limit, its signal actions.
/// Fails the calling test if the child fails or ran no test (a filter typo passes "0 passed").
pub fn run_scenario_in_child(scenario: &str, child_env: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([scenario, "--exact", "--test-threads=1", "--nocapture"])
        .env(child_env, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the scenario failed in its child process ({:?}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("1 passed"), "the child did not run the scenario:\n{stdout}\n{stderr}");
}

/// Message `i` of a numbered stream (18 bits: channel and pitch). Not a note: a jitter buffer
/// drops a note-on that comes very late (with its note-off), and the timing tests count everything.
pub fn numbered(i: u32) -> Message {
    Message::PitchWheel { channel: ((i >> 14) & 15) as u8, pitch: (i & 0x3FFF) as i16 - 8192 }
}

/// The number of a [`numbered`] message.
pub fn number_of(message: &Message) -> Option<u32> {
    match *message {
        Message::PitchWheel { channel, pitch } => Some((u32::from(channel) << 14) | (pitch + 8192) as u32),
        _ => None,
    }
}

/// Sends [`numbered`] messages `0..count` from `sender` on a thread, at 1 kHz in bursts of 4
/// every 4 ms (a stream a jittery link cuts into many chunks); the thread gives the port back.
pub fn send_numbered_in_bursts(sender: SocketPort, count: u32) -> std::thread::JoinHandle<SocketPort> {
    std::thread::spawn(move || {
        for burst in (0..count).collect::<Vec<_>>().chunks(4) {
            for &i in burst {
                sender.send(&numbered(i)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(4));
        }
        sender
    })
}
