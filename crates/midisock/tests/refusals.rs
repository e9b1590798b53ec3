//! The client side of refusals and of a peer's close: a port that reads a server's refusal notice
//! reports the cause on every receive and send; `finish` tells a sender it was refused; a send
//! after the peer closed fails instead of losing its bytes. The servers here are fakes written
//! with std's TcpListener, so each scenario is exactly the bytes it names.

use midisock::{connect, Error, Message, PortServer, RefusalCause};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The longest any single wait may take: generous, so that only a real hang fails a test, even
/// on a machine loaded far past its cores.
const WAIT: Duration = Duration::from_secs(30);

fn notice(cause: &str) -> Vec<u8> {
    [&[0xF4][..], b"refused: ", cause.as_bytes(), &[0xF7]].concat()
}

/// A server that accepts one connection and runs `serve` on it, on its own thread.
fn fake_server(serve: impl FnOnce(TcpStream) + Send + 'static) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        serve(stream);
    });
    (address, handle)
}

/// Reads until the client's end of stream (or WAIT): what it sent.
fn read_to_end(mut stream: &TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    got
}

fn assert_refused<T: std::fmt::Debug>(result: midisock::Result<T>, cause: &str) {
    match result {
        Err(Error::Refused { cause: got }) => assert_eq!(got, cause),
        other => panic!("expected Refused({cause:?}), got {other:?}"),
    }
}

#[test]
fn a_notice_is_reported_by_every_receive_and_send() {
    let cause = RefusalCause::InvalidToken.as_str();
    let (address, server) = fake_server(move |mut stream| {
        stream.write_all(&notice(cause)).unwrap();
    });
    let port = connect(&address).unwrap();
    assert_refused(port.receive_timeout(WAIT), cause);
    assert!(port.is_closed(), "a refused port is closed");
    assert_eq!(port.refusal(), Some(cause));
    assert_refused(port.receive(), cause);
    assert_refused(port.try_receive(), cause);
    assert_refused(port.send(&Message::Start), cause);
    assert_refused(port.receive_batch(&mut Vec::new()), cause);
    assert_refused(port.finish(WAIT), cause);
    // And after a local close the cause is still what the port reports.
    port.close();
    assert_refused(port.send(&Message::Start), cause);
    server.join().unwrap();
}

#[test]
fn a_notice_split_over_many_writes_is_still_a_notice() {
    let cause = RefusalCause::TooManyClients.as_str();
    let (address, server) = fake_server(move |mut stream| {
        stream.set_nodelay(true).unwrap();
        let wire = notice(cause);
        // Three pieces; the client acknowledges nothing, so wait for each to be sent by reading
        // nothing: the pieces may still coalesce, which the client must handle too.
        for piece in [&wire[..1], &wire[1..6], &wire[6..]] {
            stream.write_all(piece).unwrap();
            stream.flush().unwrap();
        }
    });
    let port = connect(&address).unwrap();
    assert_refused(port.receive_timeout(WAIT), cause);
    server.join().unwrap();
}

#[test]
fn a_cause_this_version_does_not_know_is_kept_as_text() {
    let (address, server) = fake_server(|mut stream| stream.write_all(&notice("maintenance until 9pm")).unwrap());
    let port = connect(&address).unwrap();
    assert_refused(port.receive_timeout(WAIT), "maintenance until 9pm");
    server.join().unwrap();
}

#[test]
fn a_midi_stream_is_never_taken_for_a_notice() {
    // Bytes that start like a notice and then are not one, then MIDI: every message the MIDI
    // parser makes of them is delivered, and nothing reports a refusal.
    let (address, server) = fake_server(|mut stream| {
        stream.write_all(b"\xF4refused: \x90\x3C\x40").unwrap();
        stream.write_all(&[0xF8, 0x80, 0x3C, 0x00]).unwrap();
    });
    let port = connect(&address).unwrap();
    assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(Message::NoteOn { channel: 0, note: 60, velocity: 64 }));
    assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(Message::Clock));
    assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(Message::NoteOff { channel: 0, note: 60, velocity: 0 }));
    assert!(matches!(port.receive_timeout(WAIT), Err(Error::Closed)));
    assert_eq!(port.refusal(), None);
    server.join().unwrap();

    // A notice that is not the first thing on the connection is MIDI noise, not a refusal.
    let (address, server) = fake_server(|mut stream| {
        stream.write_all(&[0xFA]).unwrap();
        stream.write_all(&notice("too many clients")).unwrap();
    });
    let port = connect(&address).unwrap();
    assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(Message::Start));
    assert!(matches!(port.receive_timeout(WAIT), Err(Error::Closed)));
    assert_eq!(port.refusal(), None);
    server.join().unwrap();
}

#[test]
fn finish_tells_a_sender_that_it_was_refused() {
    // The server reads the client's hello and messages, then refuses: the sends all succeed (the
    // bytes fit in the socket buffers), and only finish learns the truth.
    let cause = RefusalCause::NotAllowed.as_str();
    let (address, server) = fake_server(move |mut stream| {
        let mut first = [0u8; 3];
        stream.read_exact(&mut first).unwrap();
        stream.write_all(&notice(cause)).unwrap();
        // Half-close and drain, as a server does, so the close is a FIN and not a reset.
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        read_to_end(&stream);
    });
    let port = connect(&address).unwrap();
    port.send(&Message::NoteOn { channel: 0, note: 60, velocity: 64 }).unwrap();
    assert_refused(port.finish(WAIT), cause);
    assert!(port.is_closed());
    server.join().unwrap();
}

#[test]
fn a_send_that_finds_the_connection_reset_reports_the_notice_before_it() {
    // The fake server writes its notice and closes without reading: the client's next bytes
    // reach a closed socket, whose reset makes a later send fail. That send reports the cause.
    let cause = RefusalCause::LockedOut.as_str();
    let (address, server) = fake_server(move |mut stream| {
        stream.write_all(&notice(cause)).unwrap();
    });
    let port = connect(&address).unwrap();
    server.join().unwrap();
    let deadline = Instant::now() + WAIT;
    let error = loop {
        match port.send(&Message::Start) {
            Ok(()) => assert!(Instant::now() < deadline, "sends kept succeeding after the server closed"),
            Err(e) => break e,
        }
        // Each send waits for nothing; the reset needs one round trip to come back.
        thread::yield_now();
    };
    assert!(matches!(&error, Error::Refused { cause: c } if c == cause), "{error:?}");
    assert_refused(port.send(&Message::Start), cause);
}

#[test]
fn finish_against_a_server_that_accepts_is_ok_and_delivers_everything() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let port = connect(server.local_addr()).unwrap();
    let notes: Vec<Message> = (0..50).map(|n| Message::NoteOn { channel: 1, note: n, velocity: 1 }).collect();
    port.send_all(&notes).unwrap();
    // The server serves a connection once it receives (until then the client waits in its
    // lobby, for accept() to claim): finish then sees the server close its side.
    assert_eq!(server.receive_timeout(WAIT).unwrap().as_ref(), Some(&notes[0]));
    let started = Instant::now();
    port.finish(WAIT).unwrap();
    assert!(started.elapsed() < WAIT / 2, "finish waited for its timeout, not for the server's close");
    assert!(port.is_closed());
    assert!(matches!(port.send(&Message::Start), Err(Error::Closed)));
    for expected in &notes[1..] {
        assert_eq!(server.receive_timeout(WAIT).unwrap().as_ref(), Some(expected));
    }
}

#[test]
fn finish_against_mute_server_returns_within_its_timeout() {
    // A peer that never closes its side: finish gives up after its timeout, and that is not a
    // refusal.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (address, server) = fake_server(move |stream| {
        let _ = rx.recv_timeout(WAIT);
        drop(stream);
    });
    let port = connect(&address).unwrap();
    let started = Instant::now();
    port.finish(Duration::from_millis(100)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    tx.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn every_send_after_the_peer_closed_fails() {
    let (address, server) = fake_server(drop);
    let port = connect(&address).unwrap();
    server.join().unwrap();
    // The close has been observed by a receive: from then on, sends fail rather than vanish.
    assert!(matches!(port.receive_timeout(WAIT), Err(Error::Closed)));
    assert!(port.is_closed());
    for _ in 0..3 {
        assert!(matches!(port.send(&Message::Start), Err(Error::Closed)));
    }
    assert_eq!(port.refusal(), None);
}

#[test]
fn a_send_that_finds_the_peer_gone_makes_every_later_send_fail() {
    let (address, server) = fake_server(drop);
    let port = connect(&address).unwrap();
    server.join().unwrap();
    let deadline = Instant::now() + WAIT;
    while port.send(&Message::Start).is_ok() {
        assert!(Instant::now() < deadline, "sends kept succeeding after the peer closed");
        thread::yield_now();
    }
    for _ in 0..3 {
        assert!(matches!(port.send(&Message::Start), Err(Error::Closed)));
    }
}
