//! Interop with the real mido 1.3.3 from PyPI, both directions, every message type, byte for
//! byte: mido's `str()` of what it sent or received must equal our `Display` of the same message.
//!
//! `cargo xtask test` creates the Python venv and sets MIDISOCK_TEST_PYTHON; the peer script is
//! tests/mido/peer.py.

use midisock::{connect, Message, PortServer};
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The longest any single wait may take: generous, so that only a real hang fails a test, even
/// on a machine loaded far past its cores.
const WAIT: Duration = Duration::from_secs(30);
/// Message count of peer.py's `every_message()`.
const EVERY_MESSAGE_COUNT: usize = 20;

fn python() -> String {
    let from_env = std::env::var("MIDISOCK_TEST_PYTHON").ok();
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/venv/bin/python");
    from_env.or_else(|| std::path::Path::new(venv).exists().then(|| venv.to_owned())).unwrap_or_else(|| {
        panic!("no Python with mido: run the tests with `cargo xtask test`, which installs it (or set MIDISOCK_TEST_PYTHON)")
    })
}

struct Peer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        let mut child = Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mido/peer.py"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mido peer");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Peer { child, lines }
    }

    fn line(&mut self) -> String {
        self.lines.next().expect("mido peer ended early").unwrap()
    }

    fn port(&mut self) -> u16 {
        let line = self.line();
        line.strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line:?}"))
    }

    /// Waits for the peer to exit successfully, returning the rest of its output.
    fn finish(mut self) -> Vec<String> {
        let rest: Vec<String> = self.lines.by_ref().map(Result::unwrap).collect();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "mido peer failed: {status}");
        rest
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our side's one-of-every-type list, equal to peer.py's `every_message()`.
fn every_message() -> Vec<Message> {
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
    .map(|t| t.parse().unwrap())
    .collect()
}

#[test]
fn mido_client_to_our_server() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().port().to_string();
    let peer = Peer::start(&["client-send", &port]);
    let sent = peer.finish();
    assert_eq!(sent.len(), EVERY_MESSAGE_COUNT);
    let received: Vec<String> =
        (0..sent.len()).map(|_| server.receive_timeout(WAIT).unwrap().expect("message").to_string()).collect();
    assert_eq!(received, sent);
}

#[test]
fn our_client_to_mido_server() {
    let count = EVERY_MESSAGE_COUNT.to_string();
    let mut peer = Peer::start(&["server-receive", &count]);
    let client = connect(("127.0.0.1", peer.port())).unwrap();
    client.send_all(&every_message()).unwrap();
    let received = peer.finish();
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    assert_eq!(received, expected);
}

#[test]
fn our_client_with_a_token_to_mido_server_which_ignores_the_hello() {
    let count = EVERY_MESSAGE_COUNT.to_string();
    let mut peer = Peer::start(&["server-receive", &count]);
    let options = midisock::ConnectOptions::default().token("a token mido never heard of");
    let client = midisock::connect_with(("127.0.0.1", peer.port()), &options).unwrap();
    client.send_all(&every_message()).unwrap();
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    assert_eq!(peer.finish(), expected);
}

#[test]
fn mido_server_to_our_client() {
    let mut peer = Peer::start(&["server-send"]);
    let client = connect(("127.0.0.1", peer.port())).unwrap();
    let received: Vec<String> = client.iter().map(|m| m.to_string()).collect();
    let sent = peer.finish();
    assert_eq!(received, sent);
    assert_eq!(received.len(), EVERY_MESSAGE_COUNT);
}

#[test]
fn our_server_broadcast_to_mido_clients() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().port().to_string();
    let count = EVERY_MESSAGE_COUNT.to_string();
    let mut peers: Vec<Peer> = (0..2).map(|_| Peer::start(&["client-receive", &port, &count])).collect();
    for peer in &mut peers {
        assert_eq!(peer.line(), "CONNECTED");
    }
    let deadline = std::time::Instant::now() + WAIT;
    while server.client_count() < 2 {
        assert!(std::time::Instant::now() < deadline, "mido clients never showed up");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.send_all(&every_message()).unwrap();
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    for peer in peers {
        assert_eq!(peer.finish(), expected);
    }
}

#[test]
fn mido_client_vanishing_mid_message_forwards_no_fragment() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let steady = connect(server.local_addr()).unwrap();
    let port = server.local_addr().port().to_string();
    let mut peer = Peer::start(&["client-vanish", &port]);
    assert_eq!(peer.line(), "VANISHED");
    peer.finish();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOn { channel: 0, note: 60, velocity: 100 }));
    // Neither half message is ever delivered; the note it left held is released; and the server
    // keeps serving everyone else.
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOff { channel: 0, note: 60, velocity: 0 }));
    steady.send(&Message::Stop).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Stop));
    assert_eq!(server.receive_timeout(Duration::from_millis(200)).unwrap(), None);
}
