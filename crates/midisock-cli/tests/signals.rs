//! SIGINT and SIGTERM end `serve`, `connect` and `send --hold` cleanly: the notes they left
//! sounding are released, one line on stderr, exit status 0. A server that goes away is a
//! failure for `connect`.

mod common;

use common::*;
use midisock::{Message, PortServer};
use std::time::{Duration, Instant};

const NOTE: Message = Message::NoteOn { channel: 2, note: 60, velocity: 100 };
const RELEASE: Message = Message::NoteOff { channel: 2, note: 60, velocity: 0 };

/// Receives until a message other than the note-on arrives (the note-on may be repeated while
/// waiting for the connection to be registered), or the connection ends.
fn next_other_than(port: &midisock::SocketPort, skip: &Message) -> Option<Message> {
    loop {
        match port.receive_timeout(WAIT).unwrap() {
            Some(m) if &m == skip => continue,
            other => return other,
        }
    }
}

#[test]
fn serve_releases_broadcast_notes_and_exits_0_on_sigterm_and_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let (mut server, port) = start_serve(&[]);
        let client = midisock::connect(("127.0.0.1", port)).unwrap();
        // The server may not have registered the client when the first line is broadcast.
        let deadline = Instant::now() + WAIT;
        loop {
            server.type_line(&NOTE.to_string());
            if client.receive_timeout(Duration::from_millis(200)).unwrap() == Some(NOTE.clone()) {
                break;
            }
            assert!(Instant::now() < deadline, "the broadcast never arrived");
        }

        server.process.signal(signal);
        assert_eq!(next_other_than(&client, &NOTE), Some(RELEASE), "signal {signal}");
        // Then the server closes the connection.
        assert_eq!(client.receive_timeout(WAIT).unwrap_err().to_string(), midisock::Error::Closed.to_string());
        assert_eq!(server.process.exit_status().code(), Some(0), "signal {signal}");
        let name = if signal == libc::SIGTERM { "SIGTERM" } else { "SIGINT" };
        // Besides the connection log (connected, disconnected: server closing), one line.
        let rest: Vec<String> = remaining(&server.stderr).into_iter().filter(|l| !l.contains("connected ")).collect();
        assert_eq!(rest, vec![format!("midisock: {name}: server closed (released 1 held note)")]);
    }
}

#[test]
fn connect_releases_its_notes_and_exits_0_on_sigint() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut client = start(&["connect", &server.local_addr().to_string()]);
    wait_for_line(&client.stderr, "connected to");
    client.type_line(&NOTE.to_string());
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(NOTE));

    client.process.signal(libc::SIGINT);
    assert_eq!(client.process.exit_status().code(), Some(0));
    assert_eq!(
        remaining(&client.stderr),
        vec!["midisock: SIGINT: connection closed (released 1 held note)".to_string()]
    );
    // The release came from the client itself: the server's own release of a departed
    // client's notes would find nothing left to release.
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(RELEASE));
    assert_eq!(server.receive_timeout(Duration::from_millis(300)).unwrap(), None);
}

#[test]
fn connect_fails_when_the_server_goes_away() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut client = start(&["connect", &server.local_addr().to_string()]);
    wait_for_line(&client.stderr, "connected to");
    // Wait until the server has the client, then close it.
    wait_for_client(&server);
    server.close();
    assert_eq!(client.process.exit_status().code(), Some(1));
    let rest = remaining(&client.stderr);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(rest[0].contains("closed the connection"), "{rest:?}");
}

#[test]
fn send_hold_keeps_notes_sounding_until_interrupted() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut sender = start(&["send", "--hold", &server.local_addr().to_string(), &NOTE.to_string()]);
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(NOTE));
    wait_for_line(&sender.stderr, "holding");
    // Still connected, nothing released.
    assert_eq!(server.receive_timeout(Duration::from_millis(300)).unwrap(), None);
    assert!(sender.process.0.try_wait().unwrap().is_none(), "send --hold exited on its own");

    sender.process.signal(libc::SIGTERM);
    assert_eq!(sender.process.exit_status().code(), Some(0));
    // Leaving, the client's note is released (by the server, as for any client that leaves).
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(RELEASE));
}

#[test]
fn connect_reconnect_survives_a_server_restart_without_stuck_notes() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let mut client = start(&["connect", "--reconnect", &addr.to_string()]);
    let (stdout, stderr) = (&client.stdout, &client.stderr);
    wait_for_client(&server);
    server.send(&Message::NoteOn { channel: 4, note: 70, velocity: 80 }).unwrap();
    assert_eq!(stdout.recv_timeout(WAIT).unwrap(), "note_on channel=4 note=70 velocity=80 time=0");

    // The server goes away: the note it left sounding is released at once.
    server.close();
    drop(server);
    assert_eq!(stdout.recv_timeout(WAIT).unwrap(), "note_off channel=4 note=70 velocity=0 time=0");
    wait_for_line(stderr, "disconnected");
    wait_for_line(stderr, "reconnecting: attempt ");

    // A new server on the same address: the client comes back by itself, both ways.
    let server = PortServer::bind(addr).unwrap();
    wait_for_client(&server);
    wait_for_line(stderr, "midisock: connected");
    server.send(&Message::Continue).unwrap();
    assert_eq!(stdout.recv_timeout(WAIT).unwrap(), "continue time=0");
    client.type_line("song_select song=5");
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::SongSelect { song: 5 }));

    client.process.signal(libc::SIGTERM);
    assert_eq!(client.process.exit_status().code(), Some(0));
}

#[test]
fn connect_reconnect_gives_up_after_max_attempts() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let mut client = start(&["connect", "--reconnect", "--max-attempts", "2", &server.local_addr().to_string()]);
    wait_for_client(&server);
    server.close();
    drop(server);
    assert_eq!(client.process.exit_status().code(), Some(1));
    // The failure line; the state-change log line ("gave up after 2 attempts") comes from the
    // reconnecting thread and may be printed before or after it.
    let rest = remaining(&client.stderr);
    assert!(rest.iter().any(|l| l.starts_with("midisock: gave up reconnecting after 2 failed attempts")), "{rest:?}");
}
