//! Interop with the real mido 1.3.3 from PyPI, both directions, every message type, byte for
//! byte: mido's `str()` of what it sent or received must equal our `Display` of the same message.
//!
//! `cargo xtask test` creates the Python venv and sets MIDISOCK_TEST_PYTHON; the peer script is
//! tests/mido/peer.py.

use midisock::{connect, Message, PortServer};
use midisock_testkit::mido_peer::every_message;
use midisock_testkit::MidoPeer;
use std::time::Duration;

/// The longest any single wait may take: generous, so that only a real hang fails a test, even
/// on a machine loaded far past its cores.
const WAIT: Duration = Duration::from_secs(30);
/// Message count of peer.py's `every_message()`.
const EVERY_MESSAGE_COUNT: usize = 20;

#[test]
fn mido_client_to_our_server() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().port().to_string();
    let peer = MidoPeer::start("tests/mido/peer.py", &["client-send", &port]);
    let sent = peer.finish();
    assert_eq!(sent.len(), EVERY_MESSAGE_COUNT);
    let received: Vec<String> =
        (0..sent.len()).map(|_| server.receive_timeout(WAIT).unwrap().expect("message").to_string()).collect();
    assert_eq!(received, sent);
}

#[test]
fn our_client_to_mido_server() {
    let count = EVERY_MESSAGE_COUNT.to_string();
    let mut peer = MidoPeer::start("tests/mido/peer.py", &["server-receive", &count]);
    let client = connect(("127.0.0.1", peer.port())).unwrap();
    client.send_all(&every_message()).unwrap();
    let received = peer.finish();
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    assert_eq!(received, expected);
}

#[test]
fn our_client_with_a_token_to_mido_server_which_ignores_the_hello() {
    let count = EVERY_MESSAGE_COUNT.to_string();
    let mut peer = MidoPeer::start("tests/mido/peer.py", &["server-receive", &count]);
    let options = midisock::ConnectOptions::default().token("a token mido never heard of");
    let client = midisock::connect_with(("127.0.0.1", peer.port()), &options).unwrap();
    client.send_all(&every_message()).unwrap();
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    assert_eq!(peer.finish(), expected);
}

#[test]
fn mido_server_to_our_client() {
    let mut peer = MidoPeer::start("tests/mido/peer.py", &["server-send"]);
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
    let mut peers: Vec<MidoPeer> =
        (0..2).map(|_| MidoPeer::start("tests/mido/peer.py", &["client-receive", &port, &count])).collect();
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
    let mut peer = MidoPeer::start("tests/mido/peer.py", &["client-vanish", &port]);
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
