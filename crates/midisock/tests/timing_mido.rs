//! A port with the jitter buffer on, against a real mido 1.3.3 peer (tests/mido/peer.py server-both):
//! mido ignores the request and never answers, so it receives exactly the messages it would
//! receive from a port without the buffer, and what it sends arrives unstamped, at once.
//!
//! `cargo xtask test` installs the Python venv with mido and sets MIDISOCK_TEST_PYTHON.

use midisock::timing::DelayMode;
use midisock::{connect_with, ConnectOptions, Message};
use midisock_testkit::mido_peer::every_message;
use midisock_testkit::MidoPeer;
use std::time::Duration;

/// The longest any single wait may take: only a real hang fails a test.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn mido_sees_todays_messages_and_its_own_arrive_unstamped() {
    let mut peer = MidoPeer::start("tests/mido/peer.py", &["server-both"]);
    let port_number = peer.port();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::adaptive());
    let port = connect_with(("127.0.0.1", port_number), &options).unwrap();

    // mido → midisock: plain messages, delivered at once, no sender time.
    for expected in every_message() {
        assert_eq!(peer.line(), format!("SENT {expected}"));
        let received = port.receive_timeout_stamped(WAIT).unwrap().expect("mido's message");
        assert_eq!(received.message, expected);
        assert_eq!(received.sender_ns, None, "mido never stamps");
    }
    let stats = port.playout_stats().expect("the buffer is on");
    assert_eq!((stats.pushed, stats.offset_ns, stats.late), (0, None, 0), "nothing needed playing out");
    assert_eq!(port.decoder_stats(), Default::default());
    assert_eq!(port.parser_stats(), Default::default());
    assert!(!port.sends_stamps(), "mido never asks");

    // midisock → mido: exactly these messages, nothing else (the request is ignored by mido's
    // parser), in order.
    port.send_all(&every_message()).unwrap();
    port.close();
    let mut got = Vec::new();
    loop {
        let line = peer.line();
        if line == "END" {
            break;
        }
        got.push(line.strip_prefix("GOT ").unwrap_or_else(|| panic!("{line:?}")).to_owned());
    }
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    assert_eq!(got, expected);
    // The peer exits successfully (finish asserts it).
    peer.finish();
}
