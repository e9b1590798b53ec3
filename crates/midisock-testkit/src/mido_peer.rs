//! A real mido 1.3.3 program as the other end of a test: a Python script run with the venv that
//! `cargo xtask test` installs, whose stdout the test reads line by line. The interop tests and
//! the timing tests share it, so there is one way to find Python and to start, read and reap a
//! peer.

use midisock::Message;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The repository's root, where the peer scripts and the venv live.
const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The Python with mido: `MIDISOCK_TEST_PYTHON` (set by `cargo xtask test`), else the venv in
/// the repository's `target/`.
pub fn python() -> String {
    let from_env = std::env::var("MIDISOCK_TEST_PYTHON").ok();
    let venv = format!("{REPO_ROOT}/target/venv/bin/python");
    from_env.or_else(|| std::path::Path::new(&venv).exists().then_some(venv)).unwrap_or_else(|| {
        panic!("no Python with mido: run the tests with `cargo xtask test`, which installs it (or set MIDISOCK_TEST_PYTHON)")
    })
}

/// A running peer script; killed and reaped when dropped, however the test ends.
#[derive(Debug)]
pub struct MidoPeer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl MidoPeer {
    /// Starts `script` (a path from the repository's root, e.g. `tests/mido/peer.py`) with `args`.
    pub fn start(script: &str, args: &[&str]) -> MidoPeer {
        let mut child = Command::new(python())
            .arg(format!("{REPO_ROOT}/{script}"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mido peer");
        let lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        MidoPeer { child, lines }
    }

    /// The peer's next line of output.
    pub fn line(&mut self) -> String {
        self.lines.next().expect("mido peer ended early").expect("mido peer's output is text")
    }

    /// The listening port a server peer announces as `PORT <n>`.
    pub fn port(&mut self) -> u16 {
        let line = self.line();
        line.strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line:?}"))
    }

    /// Waits for the peer to exit successfully; returns the rest of its output.
    pub fn finish(mut self) -> Vec<String> {
        let rest: Vec<String> = self.lines.by_ref().map(|line| line.expect("mido peer's output is text")).collect();
        let status = self.child.wait().expect("wait for the mido peer");
        assert!(status.success(), "mido peer failed: {status}");
        rest
    }
}

impl Drop for MidoPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message of every type, equal to `every_message()` in tests/mido/peer.py.
pub fn every_message() -> Vec<Message> {
    [
        "note_off channel=1 note=60 velocity=10",
        "note_on channel=15 note=127 velocity=0",
        "polytouch channel=2 note=3 value=4",
        "control_change channel=3 control=7 value=127",
        "program_change channel=4 program=99",
        "aftertouch channel=5 value=6",
        "pitchwheel channel=6 pitch=-8192",
        "pitchwheel channel=7 pitch=8191",
        "sysex data=(126,0,127,9)",
        "sysex data=()",
        "quarter_frame frame_type=7 frame_value=15",
        "songpos pos=16383",
        "song_select song=12",
        "tune_request",
        "clock",
        "start",
        "continue",
        "stop",
        "active_sensing",
        "reset",
    ]
    .iter()
    .map(|text| text.parse().expect("a message in mido's text form"))
    .collect()
}
