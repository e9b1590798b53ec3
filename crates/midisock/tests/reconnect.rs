//! ReconnectingPort against real servers on loopback: a server restart is survived with the held
//! notes released, sends while down fail with `Disconnected`, a server that keeps refusing is
//! given up on after the allowed attempts without being hammered, and closing wakes everyone.
//! Every wait is for a condition (a state the port reports, a message), bounded by WAIT.

use midisock::{Error, LinkState, Message, PortServer, Reconnect, ReconnectingPort};
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// The longest any single wait may take: generous, so that only a real hang fails a test, even
/// on a machine loaded far past its cores.
const WAIT: Duration = Duration::from_secs(30);

fn on(note: u8) -> Message {
    Message::NoteOn { channel: 0, note, velocity: 100 }
}

fn off(note: u8) -> Message {
    Message::NoteOff { channel: 0, note, velocity: 0 }
}

fn quick(max_attempts: Option<u32>) -> midisock::ConnectOptions {
    let policy = Reconnect {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_attempts,
        jitter_percent: 20,
    };
    midisock::ConnectOptions::default().timeout(WAIT).reconnect(policy)
}

/// Every state the port reports, in order, through its callback.
fn watch(port: &ReconnectingPort) -> mpsc::Receiver<LinkState> {
    let (tx, rx) = mpsc::channel();
    port.on_state_change(move |state| {
        let _ = tx.send(state.clone());
    });
    rx
}

/// Waits for a reported state that `matches`; returns every state seen on the way.
fn wait_for_state(states: &mpsc::Receiver<LinkState>, matches: impl Fn(&LinkState) -> bool) -> Vec<LinkState> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let state = states.recv_timeout(left).unwrap_or_else(|_| panic!("state never came; saw {seen:?}"));
        let done = matches(&state);
        seen.push(state);
        if done {
            return seen;
        }
    }
}

#[test]
fn a_server_restart_is_survived_and_held_notes_are_released() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr();
    let client = ReconnectingPort::connect(address, &quick(None)).unwrap();
    let states = watch(&client);
    assert_eq!(client.state(), LinkState::Connected);
    let deadline = Instant::now() + WAIT;
    while server.client_count() < 1 {
        assert!(Instant::now() < deadline, "the client was never served");
        thread::sleep(Duration::from_millis(5));
    }
    server.send_all(&[on(60), on(64), off(64)]).unwrap();
    for expected in [on(60), on(64), off(64)] {
        assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(expected));
    }

    // The server goes away with note 60 still held: the receiver gets its note-off.
    server.close();
    drop(server);
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(off(60)));
    let seen = wait_for_state(&states, |s| matches!(s, LinkState::Reconnecting { .. }));
    assert!(matches!(seen[0], LinkState::Disconnected { .. }), "{seen:?}");

    // While down, a send fails at once and says so.
    assert!(matches!(client.send(&on(1)), Err(Error::Disconnected { .. })));

    // The server comes back on the same address: the port reconnects by itself.
    let server = PortServer::bind(address).unwrap();
    let seen = wait_for_state(&states, |s| *s == LinkState::Connected);
    let attempts: Vec<u32> = seen
        .iter()
        .filter_map(|s| match s {
            LinkState::Reconnecting { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert!(attempts.windows(2).all(|w| w[1] == w[0] + 1), "attempts count up: {seen:?}");
    assert_eq!(client.state(), LinkState::Connected);
    client.send(&on(62)).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(62)));
    server.send(&on(67)).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(on(67)));
}

#[test]
fn a_send_that_finds_the_server_gone_reports_disconnected() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = ReconnectingPort::connect(server.local_addr(), &quick(None)).unwrap();
    let states = watch(&client);
    drop(server);
    // Nobody receives: only sends can notice. The first may still fit in the socket buffer.
    let deadline = Instant::now() + WAIT;
    let error = loop {
        match client.send(&on(1)) {
            Ok(()) => assert!(Instant::now() < deadline, "sends kept succeeding with the server gone"),
            Err(e) => break e,
        }
        thread::yield_now();
    };
    assert!(matches!(error, Error::Disconnected { .. }), "{error:?}");
    wait_for_state(&states, |s| matches!(s, LinkState::Reconnecting { .. }));
}

#[test]
fn a_server_that_keeps_refusing_is_given_up_on_without_hammering_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = Arc::clone(&accepted);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(b"\xF4refused: too many clients\xF7");
            }
        });
    }
    let client = ReconnectingPort::connect(address, &quick(Some(3))).unwrap();
    let states = watch(&client);
    // Receiving drives the discovery of each refusal; it ends when the port gives up.
    let error = match client.receive_timeout(WAIT) {
        Ok(Some(m)) => panic!("a refusing server sent {m:?}"),
        Ok(None) => panic!("no verdict within {WAIT:?}"),
        Err(e) => e,
    };
    match &error {
        Error::GaveUp { attempts, reason } => {
            assert_eq!(*attempts, 3);
            assert!(reason.contains("too many clients"), "{reason}");
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    // The first connection and two more attempts: three in all, never more.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    let seen = wait_for_state(&states, |s| matches!(s, LinkState::GaveUp { .. }));
    // Each wait was at least as long as the one before (backoff, not a fixed rate).
    let delays: Vec<Duration> = seen
        .iter()
        .filter_map(|s| match s {
            LinkState::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2, "{seen:?}");
    assert!(client.is_closed());
    assert!(matches!(client.send(&on(1)), Err(Error::GaveUp { .. })));
}

#[test]
fn closing_wakes_a_receive_waiting_for_the_next_connection() {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = Arc::new(ReconnectingPort::connect(server.local_addr(), &quick(None)).unwrap());
    let states = watch(&client);
    drop(server);
    let receiver = {
        let client = Arc::clone(&client);
        thread::spawn(move || client.receive())
    };
    wait_for_state(&states, |s| matches!(s, LinkState::Reconnecting { .. }));
    client.close();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(receiver.join().unwrap()).unwrap());
    assert!(matches!(rx.recv_timeout(WAIT).expect("receive returned after close"), Err(Error::Closed)));
    assert_eq!(client.state(), LinkState::Closed);
    assert!(matches!(client.send(&on(1)), Err(Error::Closed)));
}

#[test]
fn the_first_connection_must_succeed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    assert!(matches!(ReconnectingPort::connect(address, &quick(None)), Err(Error::Connect { .. })));
    assert!(matches!(ReconnectingPort::connect("no-port", &quick(None)), Err(Error::AddressSyntax { .. })));
}
