//! What a server tells: the event hook (`ServerConfig::on_event`) reports every connect,
//! disconnect (with its cause) and refusal (with its cause), and a refused client is sent the
//! cause in words before the connection closes. Loopback only; every wait is bounded.

mod support;

use midisock::{
    connect, connect_with, ConnectOptions, DisconnectCause, Message, PortServer, RefusalCause, ServerConfig,
    ServerEvent,
};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{eventually, notice, read_until_closed, WAIT};

/// A server whose events arrive on the returned channel.
fn server_with_events(config: ServerConfig) -> (PortServer, Receiver<ServerEvent>) {
    let (sender, events) = channel();
    let sender = Mutex::new(sender);
    let config = config.on_event(move |event| {
        let _ = sender.lock().unwrap().send(event.clone());
    });
    (PortServer::bind_with("127.0.0.1:0", config).unwrap(), events)
}

/// The next event, within `WAIT`.
fn next_event(events: &Receiver<ServerEvent>) -> ServerEvent {
    events.recv_timeout(WAIT).expect("an event within the wait")
}

fn local(stream: &TcpStream) -> SocketAddr {
    stream.local_addr().unwrap()
}

#[test]
fn connect_and_orderly_close_are_reported() {
    let (server, events) = server_with_events(ServerConfig::default());
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    let peer = local(&client);
    assert_eq!(next_event(&events), ServerEvent::Connected { peer });
    client.write_all(&Message::Start.to_bytes()).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Start));
    drop(client);
    assert_eq!(next_event(&events), ServerEvent::Disconnected { peer, cause: DisconnectCause::ClosedByPeer });
    assert_eq!(
        ServerEvent::Disconnected { peer, cause: DisconnectCause::ClosedByPeer }.to_string(),
        format!("disconnected {peer}: closed by the client")
    );
}

#[test]
fn a_reset_is_reported_as_a_reset() {
    use std::os::fd::AsRawFd;
    let (server, events) = server_with_events(ServerConfig::default());
    assert_eq!(server.try_receive().unwrap(), None);
    let client = TcpStream::connect(server.local_addr()).unwrap();
    let peer = local(&client);
    assert_eq!(next_event(&events), ServerEvent::Connected { peer });
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a linger struct of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(client);
    assert_eq!(next_event(&events), ServerEvent::Disconnected { peer, cause: DisconnectCause::Reset });
}

#[test]
fn a_client_that_stops_reading_is_reported_too_slow() {
    let (server, events) = server_with_events(ServerConfig::default().max_client_queue(16 * 1024));
    let client = TcpStream::connect(server.local_addr()).unwrap();
    let peer = local(&client);
    assert_eq!(next_event(&events), ServerEvent::Connected { peer });
    let sysex = Message::SysEx { data: vec![1; 1000] };
    // Far more than the socket buffers and the queue hold; the client reads nothing.
    let deadline = Instant::now() + WAIT;
    while server.client_count() > 0 {
        assert!(Instant::now() < deadline, "the slow client was never dropped");
        server.send_all(&vec![sysex.clone(); 64]).unwrap();
    }
    assert_eq!(next_event(&events), ServerEvent::Disconnected { peer, cause: DisconnectCause::TooSlow });
    assert_eq!(server.stats().slow_clients_dropped, 1);
    drop(client);
}

#[test]
fn a_client_that_sends_without_end_but_never_reads_is_still_dropped() {
    let (server, events) = server_with_events(ServerConfig::default().max_client_queue(16 * 1024));
    assert_eq!(server.try_receive().unwrap(), None);
    let client = TcpStream::connect(server.local_addr()).unwrap();
    let peer = local(&client);
    assert_eq!(next_event(&events), ServerEvent::Connected { peer });
    // It sends clocks for as long as the connection lasts, and reads nothing.
    let mut sending = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let clocks = [0xF8u8; 4096];
        while sending.write_all(&clocks).is_ok() {}
    });
    // The program keeps up with it, and broadcasts until the client is dropped as too slow.
    let sysex = vec![Message::SysEx { data: vec![1; 1000] }; 64];
    let deadline = Instant::now() + WAIT;
    let dropped = loop {
        assert!(Instant::now() < deadline, "the flooding client was never dropped");
        server.send_all(&sysex).unwrap();
        for _ in 0..10_000 {
            match server.try_receive().unwrap() {
                Some(message) => assert_eq!(message, Message::Clock),
                None => break,
            }
        }
        match events.try_recv() {
            Ok(event) => break event,
            Err(_) => std::thread::yield_now(),
        }
    };
    assert_eq!(dropped, ServerEvent::Disconnected { peer, cause: DisconnectCause::TooSlow });
    sender.join().unwrap();
}

#[test]
fn closing_the_server_is_reported_for_each_client() {
    let (server, events) = server_with_events(ServerConfig::default());
    let client = connect(server.local_addr()).unwrap();
    let peer = client.local_addr().unwrap();
    assert_eq!(next_event(&events), ServerEvent::Connected { peer });
    server.close();
    assert_eq!(next_event(&events), ServerEvent::Disconnected { peer, cause: DisconnectCause::ServerClosing });
}

#[test]
fn a_peer_off_the_allowlist_is_told_and_reported() {
    let (server, events) = server_with_events(ServerConfig::default().allow("10.0.0.0/8").unwrap());
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    let peer = local(&raw);
    assert_eq!(read_until_closed(&mut raw, WAIT), notice(RefusalCause::NotAllowed));
    assert_eq!(next_event(&events), ServerEvent::Refused { peer, cause: RefusalCause::NotAllowed });
    assert_eq!(server.stats().connections_refused, 1);
}

#[test]
fn a_connection_over_max_clients_is_told_and_reported() {
    let (server, events) = server_with_events(ServerConfig::default().max_clients(1));
    let first = TcpStream::connect(server.local_addr()).unwrap();
    assert_eq!(next_event(&events), ServerEvent::Connected { peer: local(&first) });
    let mut second = TcpStream::connect(server.local_addr()).unwrap();
    assert_eq!(read_until_closed(&mut second, WAIT), notice(RefusalCause::TooManyClients));
    assert_eq!(next_event(&events), ServerEvent::Refused { peer: local(&second), cause: RefusalCause::TooManyClients });
}

#[test]
fn wrong_missing_slow_and_locked_out_hellos_are_told_and_reported() {
    let config = ServerConfig::default().token("right").unwrap().auth_timeout(Duration::from_millis(300));
    let (server, events) = server_with_events(config);
    // Wrong token.
    let mut wrong = TcpStream::connect(server.local_addr()).unwrap();
    wrong.write_all(b"\xF4wrong\xF7").unwrap();
    assert_eq!(read_until_closed(&mut wrong, WAIT), notice(RefusalCause::InvalidToken));
    assert_eq!(next_event(&events), ServerEvent::Refused { peer: local(&wrong), cause: RefusalCause::InvalidToken });
    // No hello: MIDI straight away.
    let mut missing = TcpStream::connect(server.local_addr()).unwrap();
    missing.write_all(&Message::Start.to_bytes()).unwrap();
    assert_eq!(read_until_closed(&mut missing, WAIT), notice(RefusalCause::InvalidToken));
    assert_eq!(next_event(&events), ServerEvent::Refused { peer: local(&missing), cause: RefusalCause::InvalidToken });
    // Half a hello, then nothing until the deadline.
    let mut slow = TcpStream::connect(server.local_addr()).unwrap();
    slow.write_all(b"\xF4rig").unwrap();
    assert_eq!(read_until_closed(&mut slow, WAIT), notice(RefusalCause::TooSlow));
    assert_eq!(next_event(&events), ServerEvent::Refused { peer: local(&slow), cause: RefusalCause::TooSlow });
    // Two more failures make five: the address is locked out, even with the right token.
    for _ in 0..2 {
        let mut wrong = TcpStream::connect(server.local_addr()).unwrap();
        wrong.write_all(b"\xF4nope\xF7").unwrap();
        assert_eq!(read_until_closed(&mut wrong, WAIT), notice(RefusalCause::InvalidToken));
        assert!(matches!(next_event(&events), ServerEvent::Refused { cause: RefusalCause::InvalidToken, .. }));
    }
    let mut right = TcpStream::connect(server.local_addr()).unwrap();
    let _ = right.write_all(b"\xF4right\xF7");
    assert_eq!(read_until_closed(&mut right, WAIT), notice(RefusalCause::LockedOut));
    assert_eq!(next_event(&events), ServerEvent::Refused { peer: local(&right), cause: RefusalCause::LockedOut });
    assert_eq!(server.stats().auth_failures, 5);
    assert_eq!(server.stats().connections_refused, 1);
    assert_eq!(server.receive_timeout(Duration::from_millis(50)).unwrap(), None);
}

#[test]
fn the_right_hello_connects_and_the_client_is_reported() {
    let (server, events) = server_with_events(ServerConfig::default().token("pw").unwrap());
    let client = connect_with(server.local_addr(), &ConnectOptions::default().token("pw")).unwrap();
    let peer = client.local_addr().unwrap();
    assert_eq!(next_event(&events), ServerEvent::Connected { peer });
    client.send(&Message::Continue).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Continue));
}

#[test]
fn a_panicking_hook_does_not_stop_the_server() {
    let server =
        PortServer::bind_with("127.0.0.1:0", ServerConfig::default().on_event(|event| panic!("hook fails on {event}")))
            .unwrap();
    for note in 0..3 {
        let client = connect(server.local_addr()).unwrap();
        client.send(&Message::NoteOn { channel: 0, note, velocity: 1 }).unwrap();
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOn { channel: 0, note, velocity: 1 }));
        drop(client);
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOff { channel: 0, note, velocity: 0 }));
    }
    eventually("clients gone", || server.client_count() == 0);
}

#[test]
fn the_hook_may_call_the_server() {
    let (sender, events) = channel();
    let sender = Mutex::new(sender);
    let server = std::sync::Arc::new(std::sync::OnceLock::<std::sync::Weak<PortServer>>::new());
    let hook_server = std::sync::Arc::clone(&server);
    let config = ServerConfig::default().on_event(move |event| {
        // Greets every new client with a broadcast and reads the client count, from the hook.
        if let (ServerEvent::Connected { .. }, Some(server)) = (event, hook_server.get().and_then(|w| w.upgrade())) {
            server.send(&Message::Start).unwrap();
            let _ = sender.lock().unwrap().send(server.client_count());
        }
    });
    let bound = std::sync::Arc::new(PortServer::bind_with("127.0.0.1:0", config).unwrap());
    server.set(std::sync::Arc::downgrade(&bound)).unwrap();
    let client = connect(bound.local_addr()).unwrap();
    assert_eq!(events.recv_timeout(WAIT).unwrap(), 1);
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(Message::Start));
}
