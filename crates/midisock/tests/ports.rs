//! SocketPort and PortServer on loopback: the three server styles, closing, timeouts, callbacks,
//! concurrency, slow clients and IPv6. Every wait is bounded so a bug fails instead of hanging.

mod support;

use midisock::{connect, Error, Message, PortServer, Received, ServerConfig};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::{eventually, thread_id, wait_until_blocked, WAIT};

fn server() -> PortServer {
    PortServer::bind("127.0.0.1:0").expect("bind loopback")
}

fn addr(server: &PortServer) -> String {
    server.local_addr().to_string()
}

fn note(n: u8) -> Message {
    Message::NoteOn { channel: 0, note: n, velocity: 64 }
}

#[test]
fn server_receives_from_every_client() {
    let server = server();
    let a = connect(addr(&server)).unwrap();
    let b = connect(addr(&server)).unwrap();
    a.send(&note(1)).unwrap();
    b.send(&note(2)).unwrap();
    let mut got: Vec<Message> = (0..2).map(|_| server.receive_timeout(WAIT).unwrap().expect("message")).collect();
    got.sort_by_key(|m| m.to_string());
    assert_eq!(got, vec![note(1), note(2)]);
}

#[test]
fn server_broadcasts_to_every_client_even_if_it_never_receives() {
    let server = server();
    let clients: Vec<_> = (0..3).map(|_| connect(addr(&server)).unwrap()).collect();
    eventually("3 clients", || server.client_count() == 3);
    server.send(&note(9)).unwrap();
    for client in &clients {
        assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(note(9)));
    }
}

#[test]
fn accept_hands_one_connection_over_exclusively() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    client.send(&note(5)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().expect("a connection");
    assert_eq!(accepted.name(), client.local_addr().unwrap().to_string());
    assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(note(5)));
    // Exclusive: the server neither counts nor broadcasts to it any more.
    assert_eq!(server.client_count(), 0);
    server.send(&note(6)).unwrap();
    accepted.send(&note(7)).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(note(7)));
    assert_eq!(server.try_receive().unwrap(), None);
}

#[test]
fn try_accept_and_accept_timeout_do_not_wait_forever() {
    let server = server();
    assert!(server.try_accept().unwrap().is_none());
    let start = Instant::now();
    assert!(server.accept_timeout(Duration::from_millis(50)).unwrap().is_none());
    assert!(start.elapsed() >= Duration::from_millis(50));
    let _client = connect(addr(&server)).unwrap();
    let mut port = None;
    eventually("try_accept", || {
        port = server.try_accept().unwrap();
        port.is_some()
    });
}

#[test]
fn broadcast_queued_before_accept_is_delivered_after_handover() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    eventually("client", || server.client_count() == 1);
    server.send(&note(1)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    accepted.send(&note(2)).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(note(1)));
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(note(2)));
}

#[test]
fn close_is_seen_by_the_peer_at_once() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    client.send(&note(1)).unwrap();
    client.close();
    assert!(client.is_closed());
    assert!(matches!(client.send(&note(2)), Err(Error::Closed)));
    // Messages sent before the close still arrive, then the stream ends.
    assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(note(1)));
    assert!(matches!(accepted.receive_timeout(WAIT), Err(Error::Closed)));
    assert!(accepted.is_closed());
    client.close(); // twice is harmless
}

#[test]
fn iteration_ends_when_the_peer_closes() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    for n in 0..5 {
        accepted.send(&note(n)).unwrap();
    }
    drop(accepted);
    let got: Vec<Message> = client.iter().collect();
    assert_eq!(got, (0..5).map(note).collect::<Vec<_>>());
}

#[test]
fn close_from_another_thread_wakes_a_blocked_receive() {
    let server = server();
    let client = Arc::new(connect(addr(&server)).unwrap());
    let (tid_tx, tid_rx) = mpsc::channel();
    let reader = {
        let client = Arc::clone(&client);
        thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            client.receive()
        })
    };
    wait_until_blocked(tid_rx.recv_timeout(WAIT).unwrap());
    client.close();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(reader.join().unwrap()).unwrap());
    let result = rx.recv_timeout(WAIT).expect("receive returned after close");
    assert!(matches!(result, Err(Error::Closed)));
}

#[test]
fn try_receive_and_receive_timeout_on_a_quiet_port() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    assert_eq!(client.try_receive().unwrap(), None);
    let start = Instant::now();
    assert_eq!(client.receive_timeout(Duration::from_millis(30)).unwrap(), None);
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(client.iter_pending().count(), 0);
}

#[test]
fn callback_receives_every_message_with_a_monotonic_timestamp() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    let (tx, rx) = mpsc::channel();
    let before = midisock::monotonic_ns();
    accepted
        .set_callback(move |received| {
            // The name the kernel keeps (15 bytes at most), as `top -H` and debuggers show it.
            let kernel_name = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
            tx.send((received, kernel_name)).unwrap()
        })
        .unwrap();
    assert!(matches!(accepted.receive_timeout(WAIT), Err(Error::CallbackInstalled)));
    assert!(matches!(accepted.set_callback(|_| {}), Err(Error::CallbackInstalled)));
    for n in 0..10 {
        client.send(&note(n)).unwrap();
    }
    let mut last = 0;
    for n in 0..10 {
        let (received, kernel_name) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(kernel_name.trim_end(), "midisock-cb", "the callback thread's whole name");
        assert_eq!(received.message, note(n));
        assert!(received.timestamp_ns >= before && received.timestamp_ns >= last);
        assert!(received.timestamp_ns <= midisock::monotonic_ns());
        last = received.timestamp_ns;
    }
    drop(accepted); // joins the callback thread
}

#[test]
fn a_removed_callback_hands_every_later_message_back_to_receive_in_order() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    let (tx, rx) = mpsc::channel();
    accepted.set_callback(move |received: Received| tx.send(received.message).unwrap()).unwrap();
    client.send_all(&(0..5).map(note).collect::<Vec<_>>()).unwrap();
    for n in 0..5 {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), note(n));
    }
    accepted.remove_callback(); // joins the thread: nothing reaches the callback afterwards
    client.send_all(&(5..10).map(note).collect::<Vec<_>>()).unwrap();
    for n in 5..10 {
        assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(note(n)));
    }
    assert!(rx.try_recv().is_err(), "a message reached the removed callback");
    accepted.remove_callback(); // none installed: nothing happens
                                // A new callback gets the messages from then on.
    let (tx, rx) = mpsc::channel();
    accepted.set_callback(move |received: Received| tx.send(received.message).unwrap()).unwrap();
    client.send(&note(10)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), note(10));
}

#[test]
fn concurrent_senders_never_interleave_bytes() {
    let server = server();
    let client = Arc::new(connect(addr(&server)).unwrap());
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let client = Arc::clone(&client);
            thread::spawn(move || {
                let sysex = Message::SysEx { data: vec![t; 3000] };
                for _ in 0..50 {
                    client.send(&sysex).unwrap();
                    client.send(&note(t)).unwrap();
                }
            })
        })
        .collect();
    let mut counts = [0usize; 4];
    for _ in 0..400 {
        match accepted.receive_timeout(WAIT).unwrap().expect("message") {
            Message::SysEx { data } => {
                assert_eq!(data.len(), 3000);
                assert!(data.iter().all(|&b| b == data[0]), "interleaved sysex");
                counts[usize::from(data[0])] += 1;
            }
            Message::NoteOn { note, .. } => counts[usize::from(note)] += 1,
            other => panic!("unexpected {other}"),
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counts, [100; 4]);
}

#[test]
fn concurrent_broadcasts_never_interleave_bytes() {
    let server = Arc::new(server());
    let client = connect(addr(&server)).unwrap();
    eventually("client", || server.client_count() == 1);
    let threads: Vec<_> = (0..3u8)
        .map(|t| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                for _ in 0..30 {
                    server.send(&Message::SysEx { data: vec![t; 2000] }).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..90 {
        let Message::SysEx { data } = client.receive_timeout(WAIT).unwrap().unwrap() else { panic!("not sysex") };
        assert!(data.len() == 2000 && data.iter().all(|&b| b == data[0]));
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_stalls_no_one() {
    // The default 1 MiB queue, and a 20 MB broadcast: far past the stalled client's kernel
    // buffers plus its queue.
    let server = PortServer::bind_with("127.0.0.1:0", ServerConfig::default()).unwrap();
    let stalled = TcpStream::connect(server.local_addr()).unwrap();
    let healthy = connect(addr(&server)).unwrap();
    eventually("2 clients", || server.client_count() == 2);
    let sysex = Message::SysEx { data: vec![0x11; 1000] };
    let (tx, rx) = mpsc::channel();
    // The healthy client is healthy because it keeps up: the broadcaster never runs more than
    // WINDOW messages (256 KB, a quarter of the queue) ahead of it, however slowly the machine
    // schedules its reader. The stalled client reads nothing, so it still falls 20 MB behind.
    const WINDOW: usize = 256;
    let received = Arc::new(AtomicUsize::new(0));
    let reader = thread::spawn({
        let received = Arc::clone(&received);
        move || {
            let mut n = 0;
            while n < 20_000 {
                match healthy.receive_timeout(WAIT) {
                    Ok(Some(_)) => {
                        n += 1;
                        received.store(n, Ordering::Release);
                    }
                    other => panic!("healthy client lost its stream: {other:?}"),
                }
            }
            tx.send(n).unwrap();
            healthy // kept open until the end of the test
        }
    });
    let start = Instant::now();
    let mut dropped_after = None;
    for i in 0..20_000 {
        let deadline = Instant::now() + WAIT;
        while i >= received.load(Ordering::Acquire) + WINDOW {
            assert!(Instant::now() < deadline, "healthy client stopped at {i} messages");
            thread::sleep(Duration::from_micros(200));
        }
        server.send(&sysex).unwrap();
        if dropped_after.is_none() && server.stats().slow_clients_dropped == 1 {
            dropped_after = Some((start.elapsed(), (i + 1) * 1002));
        }
    }
    // A figure for the closing notes, not an assertion: timing depends on the machine.
    eprintln!("stalled client disconnected after {dropped_after:?} (elapsed, bytes broadcast)");
    assert_eq!(rx.recv_timeout(WAIT * 3).expect("healthy client got everything"), 20_000);
    let healthy = reader.join().unwrap();
    eventually("stalled client dropped", || server.client_count() == 1);
    assert!(!healthy.is_closed());
    let mut rest = Vec::new();
    let mut stalled = stalled;
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    // The stalled client gets a clean end of stream after what its buffers held.
    stalled.read_to_end(&mut rest).unwrap();
    assert!(rest.len() < 20_000 * 1002);
}

#[test]
fn peer_vanishing_mid_message_forwards_no_fragment() {
    let server = server();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&[0x90, 60, 64, 0x90, 61]).unwrap();
    raw.write_all(&[0xF0, 1, 2, 3]).unwrap();
    drop(raw);
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note(60)));
    // The half messages never arrive; the note the peer left held is released.
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOff { channel: 0, note: 60, velocity: 0 }));
    assert_eq!(server.receive_timeout(Duration::from_millis(200)).unwrap(), None);
    eventually("client dropped", || server.client_count() == 0);
}

#[test]
fn reset_and_panic_send_midos_message_sets() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    client.reset().unwrap();
    client.panic().unwrap();
    let got: Vec<Message> = (0..48).map(|_| server.receive_timeout(WAIT).unwrap().unwrap()).collect();
    let cc = |channel, control| Message::ControlChange { channel, control, value: 0 };
    let mut expected: Vec<Message> = (0..16).flat_map(|c| [cc(c, 123), cc(c, 121)]).collect();
    expected.extend((0..16).map(|c| cc(c, 120)));
    assert_eq!(got, expected);
}

#[test]
fn invalid_messages_are_refused_before_anything_is_sent() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    let bad = Message::NoteOn { channel: 16, note: 0, velocity: 0 };
    assert!(matches!(client.send(&bad), Err(Error::InvalidMessage(_))));
    assert!(matches!(client.send_all(&[note(1), bad]), Err(Error::InvalidMessage(_))));
    client.send(&note(2)).unwrap();
    assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(note(2)));
}

#[test]
fn ipv6_loopback_both_ways() {
    let Ok(server) = PortServer::bind("[::1]:0") else {
        // NOTE: a machine without IPv6 cannot run this; the bind error says so. Fail loudly in CI.
        panic!("IPv6 loopback unavailable");
    };
    assert!(server.local_addr().is_ipv6());
    let client = connect(format!("[::1]:{}", server.local_addr().port())).unwrap();
    assert_eq!(client.name(), format!("[::1]:{}", server.local_addr().port()));
    client.send(&note(3)).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note(3)));
    server.send(&note(4)).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(note(4)));
}

#[test]
fn localhost_listens_on_every_address_it_resolves_to() {
    let server = PortServer::bind("localhost:0").unwrap();
    let port = server.local_addr().port();
    assert!(server.local_addrs().iter().all(|a| a.port() == port));
    for host in ["127.0.0.1", "[::1]"] {
        if server.local_addrs().iter().any(|a| a.ip().to_string() == host.trim_matches(['[', ']'])) {
            let client = connect(format!("{host}:{port}")).unwrap();
            client.send(&note(1)).unwrap();
            assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note(1)));
        }
    }
    assert!(!server.local_addrs().is_empty());
}

#[test]
fn any_address_accepts_ipv4_and_ipv6() {
    let server = PortServer::bind(":0").unwrap();
    let port = server.local_addr().port();
    for host in ["127.0.0.1", "[::1]"] {
        let client = connect(format!("{host}:{port}")).unwrap();
        client.send(&Message::Start).unwrap();
        assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Start));
    }
}

#[test]
fn address_errors_are_clear() {
    for (text, needle) in [
        ("localhost", "expected host:port"),
        ("localhost:http", "port must be a number"),
        ("localhost:70000", "port must be a number"),
        ("::1:8080", "needs brackets"),
        ("[::1:8080", "missing ']'"),
        ("[nothost]:1", "not an IPv6 address"),
    ] {
        let err = connect(text).unwrap_err();
        assert!(matches!(err, Error::AddressSyntax { .. }), "{text}: {err:?}");
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    let err = connect("no-such-host.invalid:1").unwrap_err();
    assert!(matches!(err, Error::Resolve { .. }), "{err:?}");
}

#[test]
fn refused_connection_is_an_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = connect(format!("127.0.0.1:{port}")).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot connect"));
}

#[test]
fn closing_the_server_ends_its_clients_and_wakes_receivers() {
    let server = Arc::new(server());
    let client = connect(addr(&server)).unwrap();
    eventually("client", || server.client_count() == 1);
    let (tid_tx, tid_rx) = mpsc::channel();
    let receiver = {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            server.receive()
        })
    };
    wait_until_blocked(tid_rx.recv_timeout(WAIT).unwrap());
    server.close();
    assert!(matches!(receiver.join().unwrap(), Err(Error::Closed)));
    assert!(matches!(client.receive_timeout(WAIT), Err(Error::Closed)));
    assert!(matches!(server.send(&note(1)), Err(Error::Closed)));
    assert!(matches!(server.accept_timeout(Duration::from_millis(10)), Err(Error::Closed)));
}

#[test]
fn garbage_from_the_network_is_counted_not_fatal() {
    let server = server();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    raw.write_all(&[1, 2, 3, 0xF4, 0x90, 60, 64]).unwrap();
    assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(note(60)));
    assert_eq!(accepted.parser_stats().stray_data_bytes, 3);
    // And the raw side reads what we send as plain bytes.
    accepted.send(&Message::SongPos { pos: 300 }).unwrap();
    let mut buf = [0u8; 3];
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [0xF2, (300 & 0x7F) as u8, (300 >> 7) as u8]);
}

#[test]
fn receive_batch_drains_everything_that_has_arrived() {
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    let sent: Vec<Message> = (0..100).map(note).collect();
    client.send_all(&sent).unwrap();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let n = accepted.receive_batch(&mut got).unwrap();
        assert!(n > 0);
    }
    assert_eq!(got.iter().map(|r| r.message.clone()).collect::<Vec<_>>(), sent);
    drop(client);
    assert!(matches!(accepted.receive_batch(&mut got), Err(Error::Closed)));

    let other = connect(addr(&server)).unwrap();
    other.send_all(&sent).unwrap();
    let mut from_server = Vec::new();
    while from_server.len() < sent.len() {
        server.receive_batch(&mut from_server).unwrap();
    }
    assert_eq!(from_server.into_iter().map(|r| r.message).collect::<Vec<_>>(), sent);
}

#[test]
fn receive_batch_into_a_reused_buffer_keeps_order_across_reads() {
    // A cleared buffer with room trades places with the port's own (no copy); the messages must
    // still come out whole and in order, read after read, and appending must still work.
    let server = server();
    let client = connect(addr(&server)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().unwrap();
    let mut got = Vec::new();
    let mut batch = Vec::with_capacity(4096);
    for round in 0..20u8 {
        let sent: Vec<Message> = (0..50).map(|i| note(round.wrapping_mul(50).wrapping_add(i) % 128)).collect();
        client.send_all(&sent).unwrap();
        let mut this_round = Vec::new();
        while this_round.len() < sent.len() {
            batch.clear();
            let n = accepted.receive_batch(&mut batch).unwrap();
            assert_eq!(n, batch.len());
            this_round.extend(batch.iter().map(|r| r.message.clone()));
        }
        assert_eq!(this_round, sent, "round {round}");
        got.extend(this_round);
    }
    assert_eq!(got.len(), 1000);
    client.send(&note(1)).unwrap();
    let mut appended = vec![Received::unstamped(Message::Clock, 0)];
    accepted.receive_batch(&mut appended).unwrap();
    assert_eq!(appended.iter().map(|r| r.message.clone()).collect::<Vec<_>>(), vec![Message::Clock, note(1)]);
}

/// A connection the program accepted itself, handed to `SocketPort::from_stream`: named after the
/// peer, configured like every midisock socket (blocking again, too), messages both ways.
#[test]
fn from_stream_adopts_a_connection_accepted_elsewhere() {
    use midisock::{SocketPort, KEEPALIVE_IDLE, WRITE_DEADLINE};
    use std::os::fd::AsRawFd;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, peer) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    // A second descriptor for the same socket, to look at the options the port set.
    let observer = accepted.try_clone().unwrap();
    let port = SocketPort::from_stream(accepted).unwrap();

    assert_eq!(port.name(), peer.to_string());
    assert_eq!(port.peer_addr().unwrap(), client.local_addr().unwrap());
    let socket = socket2::SockRef::from(&observer);
    assert!(socket.tcp_nodelay().unwrap());
    assert!(socket.keepalive().unwrap());
    assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
    assert_eq!(socket.tcp_user_timeout().unwrap(), Some(WRITE_DEADLINE));
    // SAFETY: F_GETFL on a descriptor this test owns has no other effect.
    let flags = unsafe { libc::fcntl(observer.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0, "the port needs a blocking socket");

    client.send(&note(60)).unwrap();
    assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(note(60)));
    port.send(&note(61)).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(note(61)));
    port.close();
    assert!(matches!(client.receive_timeout(WAIT), Err(Error::Closed)), "the peer sees the port close");
}

#[test]
fn from_stream_refuses_a_socket_that_is_not_connected() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let result = midisock::SocketPort::from_stream(socket.into());
    assert!(matches!(result, Err(Error::Io(ref e)) if e.raw_os_error() == Some(libc::ENOTCONN)));
}
