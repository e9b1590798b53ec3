//! `next_due_ns` on ports and servers (docs/timing.md, "For pollers"): when the next message held
//! in a jitter buffer is due, so a program that polls from its own clock can sleep until then.
//!
//! Only relations are asserted (order, equality with the delivered message's played-out time,
//! `None` when nothing is held), never how close to a time anything happened: the machine may be
//! loaded far past its cores. Delays are long (seconds) so that nothing is late however slowly
//! the test runs.

mod support;

use midisock::timing::DelayMode;
use midisock::{
    connect_with, monotonic_ns, ConnectOptions, Message, PortServer, Received, Reconnect, ReconnectingPort,
    ServerConfig, SocketPort,
};
use std::net::TcpListener;
use std::time::Duration;
use support::{eventually, numbered, WAIT};

/// A fixed delay long enough that every message is still queued when the test looks at it.
const DELAY_NS: u64 = 1_500_000_000;

/// Sends throw-away messages until `sender` answers its peer's request for stamps.
fn until_stamping(sender: &SocketPort) {
    eventually("the sender to answer the request", || {
        sender.send(&Message::ActiveSensing).unwrap();
        sender.sends_stamps()
    });
}

/// Waits for and takes messages until numbered message `n` comes out; returns it.
fn receive_number(receive: impl Fn() -> Option<Received>, n: u32) -> Received {
    loop {
        let received = receive().expect("a message within the wait");
        if received.message == numbered(n) {
            return received;
        }
    }
}

/// Sleeps until `monotonic_ns()` has passed `due_ns`.
fn sleep_until(due_ns: u64) {
    while monotonic_ns() < due_ns {
        std::thread::sleep(Duration::from_nanos((due_ns - monotonic_ns()).min(50_000_000)));
    }
}

#[test]
fn a_port_says_when_each_held_message_is_due_and_a_poller_woken_then_finds_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(DELAY_NS));
    let receiver = connect_with(listener.local_addr().unwrap(), &options).unwrap();
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    assert_eq!(receiver.next_due_ns(), None, "nothing held yet");
    until_stamping(&sender);
    // Drain the throw-away messages until the buffer is empty again.
    eventually("the throw-away messages to play out", || {
        while receiver.try_receive_stamped().unwrap().is_some() {}
        receiver.next_due_ns().is_none() && receiver.playout_stats().unwrap().pushed > 0
    });

    // Three stamped messages, a few ms apart, all held by the buffer.
    let pushed_before = receiver.playout_stats().unwrap().pushed;
    for n in 1..=3 {
        sender.send(&numbered(n)).unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    eventually("the three messages to be in the buffer", || {
        assert_eq!(receiver.try_receive_stamped().unwrap(), None, "nothing is due for seconds");
        receiver.playout_stats().unwrap().pushed == pushed_before + 3
    });

    let mut previous_due = 0;
    for n in 1..=3 {
        let due = receiver.next_due_ns().expect("a message is held");
        assert!(due >= previous_due, "due times go in sender order");
        // A poller that sleeps until the due time finds the message then, with that time.
        sleep_until(due);
        let received = receiver.try_receive_stamped().unwrap().expect("due, so handed over");
        assert_eq!(received.message, numbered(n));
        assert_eq!(received.timestamp_ns, due, "played out at the time next_due_ns said");
        assert!(received.sender_ns.is_some());
        previous_due = due;
    }
    assert_eq!(receiver.next_due_ns(), None, "the buffer is empty again");

    // A blocking receive agrees with the poller's view.
    sender.send(&numbered(4)).unwrap();
    eventually("message 4 to be held", || {
        let _ = receiver.try_receive_stamped().unwrap();
        receiver.next_due_ns().is_some()
    });
    let due = receiver.next_due_ns().unwrap();
    let received = receive_number(|| receiver.receive_timeout_stamped(WAIT).unwrap(), 4);
    assert_eq!(received.timestamp_ns, due);
    assert!(monotonic_ns() >= due);

    // Held messages of a port closed here are never delivered: nothing is due.
    sender.send(&numbered(5)).unwrap();
    eventually("message 5 to be held", || {
        let _ = receiver.try_receive_stamped().unwrap();
        receiver.next_due_ns().is_some()
    });
    receiver.close();
    assert_eq!(receiver.next_due_ns(), None);
}

#[test]
fn a_port_without_a_buffer_never_has_anything_due() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = connect_with(listener.local_addr().unwrap(), &ConnectOptions::default()).unwrap();
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    sender.send_all(&(0..10).map(numbered).collect::<Vec<_>>()).unwrap();
    let first = receiver.receive_timeout_stamped(WAIT).unwrap().unwrap();
    assert_eq!((first.message, first.sender_ns), (numbered(0), None));
    // Nine more were read with it and wait in the port, but none is held for a time.
    assert_eq!(receiver.next_due_ns(), None);
}

#[test]
fn a_server_says_when_the_next_message_of_any_client_is_due() {
    let config = ServerConfig::default().jitter_buffer(DelayMode::fixed(DELAY_NS));
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    assert_eq!(server.next_due_ns(), None);
    let client = connect_with(server.local_addr(), &ConnectOptions::default()).unwrap();
    until_stamping(&client);
    // Drain the throw-away messages (they play out after the delay).
    eventually("the throw-away messages to play out", || {
        while server.try_receive_stamped().unwrap().is_some() {}
        server.next_due_ns().is_none() && server.playout_stats().iter().any(|(_, s)| s.pushed > 0)
    });

    let pushed = || server.playout_stats().iter().map(|(_, s)| s.pushed).sum::<u64>();
    let pushed_before = pushed();
    client.send(&numbered(1)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    client.send(&numbered(2)).unwrap();
    // Both in the buffer first: an arrival may move the schedule of what is queued.
    eventually("both messages to be held", || pushed() == pushed_before + 2);
    let first_due = server.next_due_ns().unwrap();
    let first = receive_number(|| server.receive_timeout_stamped(WAIT).unwrap(), 1);
    assert_eq!(first.timestamp_ns, first_due, "played out at the time next_due_ns said");
    // The I/O thread publishes the next deadline when it has moved the first.
    eventually("the second message's deadline", || server.next_due_ns() != Some(first_due));
    let second_due = server.next_due_ns();
    let second = receive_number(|| server.receive_timeout_stamped(WAIT).unwrap(), 2);
    assert!(second.timestamp_ns >= first.timestamp_ns);
    match second_due {
        Some(due) => assert_eq!(second.timestamp_ns, due),
        // Only when the I/O thread was late by the whole gap between the two (a loaded machine).
        None => eprintln!("the second message was moved before the first was looked at"),
    }
    eventually("nothing held", || server.next_due_ns().is_none());
    server.close();
    assert_eq!(server.next_due_ns(), None);
}

#[test]
fn a_reconnecting_port_reports_its_connection_s_buffer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(DELAY_NS)).reconnect(Reconnect::default());
    let receiver = ReconnectingPort::connect(listener.local_addr().unwrap(), &options).unwrap();
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    assert_eq!(receiver.next_due_ns(), None);
    until_stamping(&sender);
    eventually("a stamped message to be held", || {
        let _ = receiver.try_receive_stamped().unwrap();
        receiver.next_due_ns().is_some()
    });
    let due = receiver.next_due_ns().unwrap();
    let received = receiver.receive_timeout_stamped(WAIT).unwrap().expect("played out");
    assert_eq!(received.timestamp_ns, due);
    receiver.close();
    assert_eq!(receiver.next_due_ns(), None);
}
