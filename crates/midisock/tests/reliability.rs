//! Slow, hostile and vanishing peers: released notes, relay, allowlist, sysex policy, limits,
//! floods, many clients and graceful shutdown. Loopback only; every wait is bounded.

mod support;

use midisock::{connect, Message, PortServer, RefusalCause, ServerConfig, SysexPolicy};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;
use support::{eventually, notice, read_until_closed, WAIT};

fn bind(config: ServerConfig) -> PortServer {
    PortServer::bind_with("127.0.0.1:0", config).unwrap()
}

fn on(note: u8) -> Message {
    Message::NoteOn { channel: 0, note, velocity: 100 }
}

fn off(note: u8) -> Message {
    Message::NoteOff { channel: 0, note, velocity: 0 }
}

#[test]
fn notes_held_by_a_client_that_disconnects_are_released() {
    let server = bind(ServerConfig::default());
    let client = connect(server.local_addr()).unwrap();
    let sustain = |value| Message::ControlChange { channel: 0, control: 64, value };
    client.send_all(&[on(60), on(61), off(61), sustain(127), on(62)]).unwrap();
    for expected in [on(60), on(61), off(61), sustain(127), on(62)] {
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(expected));
    }
    drop(client);
    let released: Vec<Message> = (0..3).map(|_| server.receive_timeout(WAIT).unwrap().expect("release")).collect();
    assert_eq!(released, vec![off(60), off(62), sustain(0)]);
    assert_eq!(server.stats().notes_released, 3);
}

#[test]
fn relay_forwards_to_the_other_clients_and_releases_for_them() {
    let server = bind(ServerConfig::default().relay(true));
    let source = connect(server.local_addr()).unwrap();
    let listeners: Vec<_> = (0..2).map(|_| connect(server.local_addr()).unwrap()).collect();
    eventually("3 clients", || server.client_count() == 3);
    source.send(&on(64)).unwrap();
    for listener in &listeners {
        assert_eq!(listener.receive_timeout(WAIT).unwrap(), Some(on(64)));
    }
    assert_eq!(source.receive_timeout(Duration::from_millis(100)).unwrap(), None, "echoed to its source");
    drop(source); // leaves with note 64 held
    for listener in &listeners {
        assert_eq!(listener.receive_timeout(WAIT).unwrap(), Some(off(64)));
    }
    // The program reading the server sees the same stream.
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(64)));
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(off(64)));
}

#[test]
fn autoreset_port_releases_its_notes_on_close() {
    let server = bind(ServerConfig::default());
    let client = connect(server.local_addr()).unwrap();
    client.set_autoreset(true);
    client.send_all(&[on(1), on(2), off(1)]).unwrap();
    client.close();
    let got: Vec<Message> = (0..4 + 32).map(|_| server.receive_timeout(WAIT).unwrap().unwrap()).collect();
    assert_eq!(&got[..4], &[on(1), on(2), off(1), off(2)]);
    assert_eq!(got[4..].to_vec(), midisock::reset_messages());
}

#[test]
fn a_peer_off_the_allowlist_is_closed_before_any_byte_is_read() {
    let server = bind(ServerConfig::default().allow("10.0.0.0/8").unwrap().allow("::1").unwrap());
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    let _ = raw.write_all(&on(60).to_bytes());
    // Told why, then closed by the server.
    assert_eq!(read_until_closed(&mut raw, WAIT), notice(RefusalCause::NotAllowed));
    assert_eq!(server.receive_timeout(Duration::from_millis(100)).unwrap(), None);
    assert_eq!(server.client_count(), 0);
    assert_eq!(server.stats().connections_refused, 1);
    let allowed = bind(ServerConfig::default().allow("127.0.0.0/8").unwrap());
    let client = connect(allowed.local_addr()).unwrap();
    client.send(&on(1)).unwrap();
    assert_eq!(allowed.receive_timeout(WAIT).unwrap(), Some(on(1)));
}

#[test]
fn sysex_policy_deny_drops_sysex_and_keeps_the_rest() {
    let server = bind(ServerConfig::default().sysex(SysexPolicy::Deny));
    let client = connect(server.local_addr()).unwrap();
    client
        .send_all(&[Message::SysEx { data: vec![0x41, 0x10] }, on(5), Message::SysEx { data: vec![] }, on(6)])
        .unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(5)));
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(6)));
    assert_eq!(server.stats().sysex_denied, 2);
}

#[test]
fn sysex_over_the_size_limit_is_dropped() {
    let server = bind(ServerConfig::default().max_sysex_len(100));
    let client = connect(server.local_addr()).unwrap();
    client.send_all(&[Message::SysEx { data: vec![1; 101] }, Message::SysEx { data: vec![2; 100] }]).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::SysEx { data: vec![2; 100] }));
    assert_eq!(server.stats().sysex_oversized, 1);
}

#[test]
fn connections_over_max_clients_are_closed_at_once() {
    let server = bind(ServerConfig::default().max_clients(2));
    let _a = connect(server.local_addr()).unwrap();
    let _b = connect(server.local_addr()).unwrap();
    eventually("2 clients", || server.client_count() == 2);
    let third = connect(server.local_addr()).unwrap();
    assert_refused(third.receive_timeout(WAIT), RefusalCause::TooManyClients);
    assert_eq!(server.stats().connections_refused, 1);
    assert_eq!(server.client_count(), 2);
}

/// The client read the server's refusal notice and reports its cause, not a bare close.
fn assert_refused<T: std::fmt::Debug>(result: midisock::Result<T>, cause: RefusalCause) {
    match result {
        Err(midisock::Error::Refused { cause: got }) => assert_eq!(got, cause.as_str()),
        other => panic!("expected a refusal ({cause}), got {other:?}"),
    }
}

/// Raises this process's descriptor limit for the many-client test (each client costs two).
fn raise_fd_limit(wanted: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid, initialised rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

#[test]
fn a_thousand_clients_receive_a_broadcast() {
    raise_fd_limit(4096);
    let server = bind(ServerConfig::default());
    let clients: Vec<_> = (0..1000).map(|_| connect(server.local_addr()).unwrap()).collect();
    eventually("1000 clients", || server.client_count() == 1000);
    server.send_all(&[on(60), off(60)]).unwrap();
    for client in &clients {
        assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(on(60)));
        assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(off(60)));
    }
}

#[test]
fn close_flushes_queued_output_before_closing() {
    let server = bind(ServerConfig::default().max_client_queue(8 << 20).shutdown_flush(WAIT));
    let mut slow = TcpStream::connect(server.local_addr()).unwrap();
    eventually("client", || server.client_count() == 1);
    let sysex = Message::SysEx { data: vec![7; 1000] };
    for _ in 0..4000 {
        server.send(&sysex).unwrap(); // ~4 MB: more than the socket buffers, so some is queued
    }
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        slow.set_read_timeout(Some(WAIT)).unwrap();
        slow.read_to_end(&mut all).unwrap();
        all.len()
    });
    server.close();
    assert_eq!(reader.join().unwrap(), 4000 * 1002);
}

mod auth {
    use super::*;
    use midisock::{connect_with, ConnectOptions};

    fn with_token(token: &str) -> ConnectOptions {
        ConnectOptions::default().token(token)
    }

    #[test]
    fn the_right_token_gets_in_and_the_stream_follows_the_hello() {
        let server = bind(ServerConfig::default().token("s3cret word").unwrap());
        let client = connect_with(server.local_addr(), &with_token("s3cret word")).unwrap();
        client.send(&on(1)).unwrap();
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(1)));
        server.send(&on(2)).unwrap();
        assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(on(2)));
        assert_eq!(server.stats().auth_failures, 0);
        // accept() hands over an authenticated connection with nothing of the hello left in it.
        let accepting = bind(ServerConfig::default().token("t").unwrap());
        let client = connect_with(accepting.local_addr(), &with_token("t")).unwrap();
        client.send(&Message::Stop).unwrap();
        let port = accepting.accept_timeout(WAIT).unwrap().unwrap();
        assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(Message::Stop));
        assert_eq!(port.parser_stats(), midisock::ParserStats::default());
    }

    #[test]
    fn a_wrong_or_missing_token_is_closed() {
        let server = bind(ServerConfig::default().token("right").unwrap());
        let wrong = connect_with(server.local_addr(), &with_token("wrong")).unwrap();
        let _ = wrong.send(&on(3));
        assert_refused(wrong.receive_timeout(WAIT), RefusalCause::InvalidToken);
        let none = connect(server.local_addr()).unwrap();
        let _ = none.send(&on(4));
        assert_refused(none.receive_timeout(WAIT), RefusalCause::InvalidToken);
        assert_eq!(server.receive_timeout(Duration::from_millis(100)).unwrap(), None);
        assert_eq!(server.stats().auth_failures, 2);
        assert_eq!(server.client_count(), 0);
    }

    #[test]
    fn a_silent_connection_is_closed_when_its_hello_is_overdue() {
        let server = bind(ServerConfig::default().token("right").unwrap().auth_timeout(Duration::from_millis(100)));
        let mut silent = TcpStream::connect(server.local_addr()).unwrap();
        assert_eq!(read_until_closed(&mut silent, WAIT), notice(RefusalCause::TooSlow));
        assert_eq!(server.stats().auth_failures, 1);
    }

    #[test]
    fn repeated_failures_from_one_address_are_refused_for_a_while() {
        let server = bind(ServerConfig::default().token("right").unwrap());
        for _ in 0..5 {
            let wrong = connect_with(server.local_addr(), &with_token("nope")).unwrap();
            assert_refused(wrong.receive_timeout(WAIT), RefusalCause::InvalidToken);
        }
        // Even the right token is refused now, before any byte is read.
        let right = connect_with(server.local_addr(), &with_token("right")).unwrap();
        let _ = right.send(&on(5));
        assert_refused(right.receive_timeout(WAIT), RefusalCause::LockedOut);
        assert_eq!(server.receive_timeout(Duration::from_millis(100)).unwrap(), None);
        assert_eq!(server.stats().auth_failures, 5);
        assert!(server.stats().connections_refused >= 1);
    }

    #[test]
    fn a_hello_is_harmless_to_a_server_without_auth() {
        let server = bind(ServerConfig::default());
        let client = connect_with(server.local_addr(), &with_token("anything")).unwrap();
        client.send(&on(6)).unwrap();
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(6)));
    }

    #[test]
    fn bad_tokens_are_refused_up_front() {
        assert!(matches!(ServerConfig::default().token(""), Err(midisock::Error::InvalidToken)));
        let server = bind(ServerConfig::default());
        assert!(matches!(
            connect_with(server.local_addr(), &with_token("caf\u{e9}")),
            Err(midisock::Error::InvalidToken)
        ));
    }
}

#[test]
fn reading_paused_by_a_small_inbox_resumes_once_the_program_has_read() {
    // A bound below one inbox block: every message fills it, so reading pauses after each one.
    // After the program reads the clock, the rest of the stream (a sysex cut off by the close,
    // which yields nothing) must still be read, so the connection's end is seen and it is let go.
    let server = bind(ServerConfig::default().max_sysex_len(16).max_inbox_bytes(64));
    assert_eq!(server.try_receive().unwrap(), None);
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&[0xF8, 0xF0, 1, 2, 3]).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Clock));
    eventually("the connection let go", || server.client_count() == 0);
    assert_eq!(server.try_receive().unwrap(), None);
}
