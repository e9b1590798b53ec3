//! What a program that polls from its own loop gets (docs/timing.md, "Pollers"): `next_due_ns`,
//! when the next message held in a jitter buffer is due, and `poll_fd`, one descriptor readable
//! when a non-blocking receive may have something (bytes arrived, a held message fell due, a
//! state changed), quiet once drained.
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
use std::os::fd::RawFd;
use std::time::Duration;
use support::{eventually, numbered, WAIT};

/// A fixed delay long enough that every message is still queued when the test looks at it.
const DELAY_NS: u64 = 1_500_000_000;

/// Sends throw-away messages until `sender` answers its peer's request for stamps, then
/// [`MARKER`], stamped: once it has come out, every throw-away message has too.
fn until_stamping(sender: &SocketPort) {
    eventually("the sender to answer the request", || {
        sender.send(&Message::ActiveSensing).unwrap();
        sender.sends_stamps()
    });
    sender.send(&MARKER).unwrap();
}

/// The last message [`until_stamping`] sends.
const MARKER: Message = Message::Continue;

/// Whether `received` is the stamped marker, for the loops that wait for it.
fn is_marker(received: &Received) -> bool {
    received.message == MARKER && received.sender_ns.is_some()
}

/// Waits for and takes messages until numbered message `n` comes out; returns it. `receive`
/// gives `None` when nothing came within the wait, `Some(None)` for "nothing yet, ask again".
fn receive_number(receive: impl Fn() -> Option<Option<Received>>, n: u32) -> Received {
    loop {
        let received = receive().expect("a message within the wait");
        if received.as_ref().is_some_and(|r| r.message == numbered(n)) {
            return received.unwrap();
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
    // Drain the throw-away messages until the marker has played out.
    let mut marker = false;
    eventually("the throw-away messages to play out", || {
        while let Some(received) = receiver.try_receive_stamped().unwrap() {
            marker |= is_marker(&received);
        }
        marker && receiver.next_due_ns().is_none()
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
    let received = receive_number(|| receiver.receive_timeout_stamped(WAIT).unwrap().map(Some), 4);
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
    // Drain the throw-away messages until the marker has played out (after the delay).
    let mut marker = false;
    eventually("the throw-away messages to play out", || {
        while let Some(received) = server.try_receive_stamped().unwrap() {
            marker |= is_marker(&received);
        }
        marker && server.next_due_ns().is_none()
    });

    let pushed = || server.playout_stats().iter().map(|(_, s)| s.pushed).sum::<u64>();
    let pushed_before = pushed();
    client.send(&numbered(1)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    client.send(&numbered(2)).unwrap();
    // Both in the buffer first: an arrival may move the schedule of what is queued.
    eventually("both messages to be held", || pushed() == pushed_before + 2);
    let first_due = server.next_due_ns().unwrap();
    let first = receive_number(|| server.receive_timeout_stamped(WAIT).unwrap().map(Some), 1);
    assert_eq!(first.timestamp_ns, first_due, "played out at the time next_due_ns said");
    // The I/O thread publishes the next deadline when it has moved the first.
    eventually("the second message's deadline", || server.next_due_ns() != Some(first_due));
    let second_due = server.next_due_ns();
    let second = receive_number(|| server.receive_timeout_stamped(WAIT).unwrap().map(Some), 2);
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

/// Whether `fd` is readable within `timeout_ms` (0: now).
fn readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut fds = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut fds, 1, timeout_ms) };
    assert!(n >= 0, "poll failed: {}", std::io::Error::last_os_error());
    n > 0
}

const WAIT_MS: i32 = WAIT.as_millis() as i32;

#[test]
fn a_port_s_poll_fd_wakes_on_arrival_and_at_the_due_time_and_is_quiet_once_drained() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(DELAY_NS));
    let receiver = connect_with(listener.local_addr().unwrap(), &options).unwrap();
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    let fd = receiver.poll_fd().unwrap();
    assert_eq!(receiver.poll_fd().unwrap(), fd, "one descriptor for the port's life");
    assert!(!readable(fd, 0), "nothing arrived yet");
    until_stamping(&sender);
    // The poller's loop: wait, drain, until the throw-away messages have played out.
    let mut marker = false;
    eventually("the throw-away messages to play out", || {
        assert!(readable(fd, WAIT_MS), "something is always coming: bytes or a due message");
        while let Some(received) = receiver.try_receive_stamped().unwrap() {
            marker |= is_marker(&received);
        }
        marker && receiver.next_due_ns().is_none()
    });
    assert!(!readable(fd, 0), "drained and nothing held: quiet");

    sender.send(&numbered(1)).unwrap();
    assert!(readable(fd, WAIT_MS), "readable when the bytes arrive");
    assert_eq!(receiver.try_receive_stamped().unwrap(), None, "held for seconds");
    let due = receiver.next_due_ns().expect("held");
    assert!(!readable(fd, 0), "the socket is drained and the message is not due yet");
    assert!(readable(fd, WAIT_MS), "readable when the message falls due");
    assert!(monotonic_ns() >= due, "never before its time");
    let received = receiver.try_receive_stamped().unwrap().expect("due");
    assert_eq!((received.message, received.timestamp_ns), (numbered(1), due));
    assert!(!readable(fd, 0));

    // The peer closes with a message held: the end of the stream wakes the poller once, and
    // then only the due time does (an ended socket is readable for ever and leaves the set).
    sender.send(&numbered(2)).unwrap();
    sender.close();
    eventually("message 2 held and the end read", || {
        assert!(readable(fd, WAIT_MS));
        assert_eq!(receiver.try_receive_stamped().unwrap(), None);
        receiver.next_due_ns().is_some() && !readable(fd, 0)
    });
    assert!(readable(fd, WAIT_MS), "at the due time");
    let last = receiver.try_receive_stamped().unwrap().expect("due");
    assert_eq!(last.message, numbered(2));
    assert!(readable(fd, 0), "then the end of the stream");
    assert!(receiver.try_receive_stamped().is_err());
}

#[test]
fn a_port_without_a_buffer_wakes_its_poller_on_arrival_only() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = connect_with(listener.local_addr().unwrap(), &ConnectOptions::default()).unwrap();
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    let fd = receiver.poll_fd().unwrap();
    assert!(!readable(fd, 0));
    sender.send_all(&(0..100).map(numbered).collect::<Vec<_>>()).unwrap();
    let mut got = 0;
    while got < 100 {
        assert!(readable(fd, WAIT_MS));
        while let Some(received) = receiver.try_receive_stamped().unwrap() {
            assert_eq!(received.message, numbered(got));
            got += 1;
        }
    }
    assert!(!readable(fd, 0));
}

#[test]
fn a_server_s_poll_fd_wakes_when_its_inbox_gains_messages_and_when_it_stops() {
    let config = ServerConfig::default().jitter_buffer(DelayMode::fixed(DELAY_NS));
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    let fd = server.poll_fd().unwrap();
    assert!(!readable(fd, 0));
    // A mido-like client (it never answers the request): delivered on arrival.
    let plain = std::net::TcpStream::connect(server.local_addr()).unwrap();
    let plain = SocketPort::from_stream(plain).unwrap();
    plain.send(&numbered(1)).unwrap();
    // The poller's loop (a connection joining wakes it too, before its messages).
    let first = receive_number(
        || {
            assert!(readable(fd, WAIT_MS));
            Some(server.try_receive_stamped().unwrap())
        },
        1,
    );
    assert_eq!(first.sender_ns, None);
    assert_eq!(server.try_receive_stamped().unwrap(), None);
    assert!(!readable(fd, 0), "drained");
    // A stamping client: its message wakes the poller when it is played out, not before.
    let client = connect_with(server.local_addr(), &ConnectOptions::default()).unwrap();
    until_stamping(&client);
    client.send(&numbered(2)).unwrap();
    let second = loop {
        assert!(readable(fd, WAIT_MS));
        if let Some(received) = server.try_receive_stamped().unwrap() {
            if received.message == numbered(2) {
                break received;
            }
        }
    };
    assert!(second.sender_ns.is_some());
    assert!(monotonic_ns() >= second.timestamp_ns);
    server.close();
    assert!(readable(fd, 0), "a stopped server wakes its poller");
    assert!(server.try_receive_stamped().is_err());
}

#[test]
fn a_reconnecting_port_s_poll_fd_follows_its_connections_and_wakes_on_a_drop() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let options = ConnectOptions::default().reconnect(Reconnect::default());
    let receiver = ReconnectingPort::connect(listener.local_addr().unwrap(), &options).unwrap();
    let fd = receiver.poll_fd().unwrap();
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    assert!(!readable(fd, 0));
    sender.send(&Message::NoteOn { channel: 0, note: 60, velocity: 100 }).unwrap();
    assert!(readable(fd, WAIT_MS));
    assert!(receiver.try_receive_stamped().unwrap().is_some());
    assert_eq!(receiver.try_receive_stamped().unwrap(), None);
    assert!(!readable(fd, 0));
    // The server side drops: the poller wakes, and gets the note-off for the held note.
    drop(sender);
    let release = loop {
        assert!(readable(fd, WAIT_MS));
        if let Some(received) = receiver.try_receive_stamped().unwrap() {
            break received;
        }
    };
    assert_eq!(release.message, Message::NoteOff { channel: 0, note: 60, velocity: 0 });
    // The next connection is watched by the same descriptor.
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    sender.send(&numbered(7)).unwrap();
    let next = loop {
        assert!(readable(fd, WAIT_MS));
        if let Some(received) = receiver.try_receive_stamped().unwrap() {
            if received.message == numbered(7) {
                break received;
            }
        }
    };
    assert_eq!(next.sender_ns, None);
    assert_eq!(receiver.poll_fd().unwrap(), fd);
}
