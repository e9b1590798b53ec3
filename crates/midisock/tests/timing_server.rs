//! The timing extension on a `PortServer` (docs/timing.md): a server with a jitter buffer asks
//! every admitted client for stamps and plays each stamping client out through its own buffer;
//! any client that asks gets broadcasts and relays stamped, every other client today's bytes;
//! a relay forwards on arrival with the sender's time moved to the server's clock; nothing a
//! client sent is lost when it leaves or the server closes; real mido clients see nothing new.
//!
//! Every wait is bounded and generous, and nothing asserts timing tighter than a machine loaded
//! far past its cores allows: order, counts, bytes and the stats' fields are what is checked.

mod support;

use midisock::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use midisock::timing::{DelayMode, STAMP_REQUEST};
use midisock::{
    connect, connect_with, ConnectOptions, Message, PortServer, Received, ServerConfig, SocketPort, TlsClient,
    TlsServer,
};
use midisock_testkit::mido_peer::every_message;
use midisock_testkit::{DelayDistribution, JitterProxy, MidoPeer, ProxyConfig};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;
use support::{eventually, number_of, numbered, send_numbered_in_bursts, WAIT};

fn plain_bytes(messages: &[Message]) -> Vec<u8> {
    let mut bytes = Vec::new();
    Message::encode_all(messages, &mut bytes);
    bytes
}

fn stamped_port(address: std::net::SocketAddr, delay_ms: u64) -> SocketPort {
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(delay_ms * 1_000_000));
    connect_with(address, &options).unwrap()
}

/// Sends throw-away messages from `sender` until it stamps (it answers the server's request from
/// inside `send`, or once it has read it); returns how many it sent.
fn until_stamping(sender: &SocketPort) -> usize {
    let mut sent = 0;
    eventually("the client to answer the server's request", || {
        sender.send(&Message::ActiveSensing).unwrap();
        sent += 1;
        sender.sends_stamps()
    });
    sent
}

/// Receives from `server` until message number `last` of a numbered stream arrived; returns
/// every message received on the way.
fn server_receive_until(server: &PortServer, last: u32) -> Vec<Received> {
    let mut got = Vec::new();
    loop {
        let received = server.receive_timeout_stamped(WAIT).unwrap().expect("a message within the wait");
        let done = number_of(&received.message) == Some(last);
        got.push(received);
        if done {
            return got;
        }
    }
}

fn port_receive_until(port: &SocketPort, last: u32) -> Vec<Received> {
    let mut got = Vec::new();
    loop {
        let received = port.receive_timeout_stamped(WAIT).unwrap().expect("a message within the wait");
        let done = number_of(&received.message) == Some(last);
        got.push(received);
        if done {
            return got;
        }
    }
}

fn numbers(got: &[Received]) -> Vec<u32> {
    got.iter().filter_map(|r| number_of(&r.message)).collect()
}

fn assert_never_back(got: &[&Received]) {
    for pair in got.windows(2) {
        assert!(pair[0].sender_ns <= pair[1].sender_ns, "sender times never go back: {pair:?}");
        assert!(pair[0].timestamp_ns <= pair[1].timestamp_ns, "played-out times never go back: {pair:?}");
    }
}

fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).unwrap();
    bytes
}

/// Reads until the server closes the connection.
fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn a_broadcast_gives_stamped_clients_their_own_stamps_and_plain_clients_todays_bytes() {
    // No jitter buffer on the server, and it never receives: every client waits in the lobby,
    // unread, and one that asks for stamps is answered all the same.
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let stamped = [stamped_port(addr, 5), stamped_port(addr, 5)];
    let mut raw = TcpStream::connect(addr).unwrap();
    let plain = connect(addr).unwrap();
    eventually("four clients", || server.client_count() == 4);

    // Until both stamped clients read stamps: each broadcast clock reaches each of them once,
    // plain before the server noticed its request, stamped from the answer on.
    let mut clocks = 0;
    let mut stamping = [false; 2];
    while stamping != [true; 2] {
        server.send(&Message::Clock).unwrap();
        clocks += 1;
        for (port, stamping) in stamped.iter().zip(&mut stamping) {
            let received = port.receive_timeout_stamped(WAIT).unwrap().expect("the clock");
            assert_eq!(received.message, Message::Clock);
            assert!(received.sender_ns.is_some() || !*stamping, "stamped once, stamped for good");
            *stamping = received.sender_ns.is_some();
        }
        assert!(clocks < 10_000, "never answered");
    }
    assert!(server.playout_stats().is_empty(), "no jitter buffer on the server");

    let mut sent: Vec<Message> = (0..300).map(numbered).collect();
    for chunk in sent.chunks(7) {
        server.send_all(chunk).unwrap();
    }
    let sysex = Message::SysEx { data: (0..200).map(|i| i % 128).collect() };
    server.send(&sysex).unwrap();
    server.send(&numbered(300)).unwrap();
    sent.push(sysex);
    sent.push(numbered(300));

    for port in &stamped {
        let got = port_receive_until(port, 300);
        let messages: Vec<Message> = got.iter().map(|r| r.message.clone()).collect();
        assert_eq!(messages, sent, "every message, in order, once");
        assert!(got.iter().all(|r| r.sender_ns.is_some()), "every message stamped");
        assert_never_back(&got.iter().collect::<Vec<_>>());
        assert_eq!(port.decoder_stats(), Default::default(), "a clean stamped stream");
    }
    let got = port_receive_until(&plain, 300);
    assert_eq!(got.len(), clocks + sent.len());
    assert!(got.iter().all(|r| r.sender_ns.is_none()), "a client that did not ask gets no stamps");

    // The raw client gets byte for byte what mido would, and nothing else.
    server.close();
    let mut expected = vec![0xF8; clocks];
    expected.extend(plain_bytes(&sent));
    assert_eq!(read_to_end(&mut raw), expected);
}

#[test]
fn a_jitter_server_plays_each_stamping_client_out_through_its_own_buffer_and_others_on_arrival() {
    let delay_ns = 30_000_000;
    let server =
        PortServer::bind_with("127.0.0.1:0", ServerConfig::default().jitter_buffer(DelayMode::fixed(delay_ns)))
            .unwrap();
    assert_eq!(server.try_receive().unwrap(), None, "served from now on");
    let link: DelayDistribution = "20±10ms".parse().unwrap();
    let proxy = JitterProxy::start(ProxyConfig::new(server.local_addr(), link)).unwrap();
    // A stamping client through the jittery link, and a raw one that only ever writes plain MIDI.
    let jittery = connect(proxy.local_addr()).unwrap();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    eventually("two clients", || server.client_count() == 2);
    assert_eq!(read_exactly(&mut raw, STAMP_REQUEST.len()), STAMP_REQUEST, "asked first thing");
    let warm_up = until_stamping(&jittery);

    const COUNT: u32 = 1_000;
    let sending = send_numbered_in_bursts(jittery, COUNT);
    let controls: Vec<Message> =
        (0..100).map(|i| Message::ControlChange { channel: 1, control: 7, value: i as u8 }).collect();
    std::io::Write::write_all(&mut raw, &plain_bytes(&controls)).unwrap();

    // Each message as received, with when `receive` returned it.
    let mut got = Vec::new();
    let mut returned_at = Vec::new();
    loop {
        let received = server.receive_timeout_stamped(WAIT).unwrap().expect("a message within the wait");
        returned_at.push(midisock::monotonic_ns());
        let done = number_of(&received.message) == Some(COUNT - 1);
        got.push(received);
        if done {
            break;
        }
    }
    let jittery = sending.join().unwrap();
    // A played-out message's time is never one still to come when `receive` returns it. How
    // long after it the program got it is the timer's, the I/O thread's and this thread's
    // scheduling: reported, not asserted (it is whatever the machine's load makes it).
    let mut after: Vec<u64> = Vec::new();
    for (r, &at) in got.iter().zip(&returned_at) {
        assert!(r.timestamp_ns <= at, "stamped {} ns in the future", r.timestamp_ns - at);
        if r.sender_ns.is_some() {
            after.push(at - r.timestamp_ns);
        }
    }
    after.sort_unstable();
    let quantile = |q: f64| after[((after.len() - 1) as f64 * q) as usize] as f64 / 1e3;
    eprintln!(
        "played-out messages reached receive() after their time: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} messages)",
        quantile(0.5),
        quantile(0.9),
        quantile(0.99),
        quantile(1.0),
        after.len()
    );
    while got.iter().filter(|r| matches!(r.message, Message::ControlChange { .. })).count() < controls.len() {
        got.push(server.receive_timeout_stamped(WAIT).unwrap().expect("the raw client's controls"));
    }
    let from_jittery: Vec<&Received> = got.iter().filter(|r| number_of(&r.message).is_some()).collect();
    assert_eq!(numbers(&got), (0..COUNT).collect::<Vec<_>>(), "in order, none lost, none twice");
    assert!(from_jittery.iter().all(|r| r.sender_ns.is_some()), "played out with their stamps");
    assert_never_back(&from_jittery);
    // One clock on both ends, and the link's smallest delay is 10 ms: nothing comes out earlier.
    assert!(from_jittery.iter().all(|r| r.timestamp_ns >= r.sender_ns.unwrap() + 10_000_000));
    let from_raw: Vec<Message> =
        got.iter().filter(|r| matches!(r.message, Message::ControlChange { .. })).map(|r| r.message.clone()).collect();
    assert_eq!(from_raw, controls);
    assert!(got.iter().filter(|r| matches!(r.message, Message::ControlChange { .. })).all(|r| r.sender_ns.is_none()));
    let sensing = got.iter().filter(|r| r.message == Message::ActiveSensing).count();
    assert!(sensing <= warm_up, "{sensing} of {warm_up} warm-up messages so far");

    // One buffer: the stamping client's (the raw one never answered).
    let stats = server.playout_stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    let (peer, stats) = stats[0];
    assert_ne!(peer, raw.local_addr().unwrap(), "listed by its own address (the proxy's end)");
    assert_eq!(stats.delay_ns, delay_ns);
    assert!(stats.offset_ns.expect("an offset") >= 10_000_000, "{stats:?}");
    assert!(stats.pushed >= u64::from(COUNT) && stats.delivered <= stats.pushed, "{stats:?}");
    assert_eq!(stats.stale_notes_dropped, 0);
    drop(jittery);
    eventually("the client to leave", || server.client_count() == 1);
    assert!(server.playout_stats().is_empty(), "a departed client's buffer is gone");
}

#[test]
fn many_stamping_clients_share_the_inbox_bound_and_nothing_they_send_is_lost() {
    const CLIENTS: usize = 10;
    const PER_CLIENT: u32 = 2_500;
    let max = 1 << 20;
    // A delay far longer than the burst: without a shared bound every message would wait in a
    // buffer, 25 000 of them (1.2 MiB as queued messages) against a 1 MiB bound.
    let config = ServerConfig::default().max_inbox_bytes(max).jitter_buffer(DelayMode::fixed(5_000_000_000));
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    assert_eq!(server.try_receive().unwrap(), None, "served from now on");
    let clients: Vec<SocketPort> = (0..CLIENTS).map(|_| connect(server.local_addr()).unwrap()).collect();
    let warm_up: usize = clients.iter().map(until_stamping).sum();
    // Client k sends numbers k * PER_CLIENT .. (k + 1) * PER_CLIENT, all at once.
    for (k, client) in clients.iter().enumerate() {
        let first = k as u32 * PER_CLIENT;
        client.send_all(&(first..first + PER_CLIENT).map(numbered).collect::<Vec<_>>()).unwrap();
    }
    let slot = std::mem::size_of::<Received>();
    let mut got = Vec::new();
    let mut sensing = 0;
    let mut max_held = 0;
    while got.len() < CLIENTS * PER_CLIENT as usize {
        let received = server.receive_timeout_stamped(WAIT).unwrap().expect("a message within the wait");
        match number_of(&received.message) {
            Some(number) => got.push(number),
            None => sensing += 1,
        }
        if got.len() % 1_000 == 0 {
            // What the buffers hold stays within the bound the inbox shares with them. NOTE: each
            // client's figure is read at its own instant while the I/O thread runs on, so the
            // sum is only checked against twice the bound here; the server's own test checks the
            // peak exactly, as the I/O thread sees it.
            let held: usize = server.playout_stats().iter().map(|(_, s)| s.queued + s.held_note_offs).sum();
            max_held = max_held.max(held * slot);
            assert!(held * slot <= 2 * max, "{held} messages held, {} bytes, bound {max}", held * slot);
        }
    }
    assert!(sensing <= warm_up);
    for k in 0..CLIENTS as u32 {
        let own: Vec<u32> = got.iter().copied().filter(|n| n / PER_CLIENT == k).collect();
        assert_eq!(own, (k * PER_CLIENT..(k + 1) * PER_CLIENT).collect::<Vec<_>>(), "client {k}: in order, whole");
    }
    let stats = server.playout_stats();
    assert_eq!(stats.len(), CLIENTS);
    let early: u64 = stats.iter().map(|(_, s)| s.delivered_early_full).sum();
    eprintln!("{early} of {} messages delivered early; at most {max_held} bytes held (seen)", got.len());
    assert!(early > 0, "the buffers gave way to the bound, and counted it: {stats:?}");
    assert!(stats.iter().all(|(_, s)| s.stale_notes_dropped == 0 && s.delivered <= s.pushed), "{stats:?}");
}

#[test]
fn a_relay_forwards_on_arrival_and_a_stamped_receiver_removes_both_legs_jitter() {
    let config = ServerConfig::default().relay(true).jitter_buffer(DelayMode::fixed(20_000_000));
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    let link: DelayDistribution = "20±10ms".parse().unwrap();
    let up = JitterProxy::start(ProxyConfig::new(server.local_addr(), link)).unwrap();
    let down_config = ProxyConfig {
        to_client: link,
        to_upstream: DelayDistribution::Fixed(Duration::ZERO),
        seed: 7,
        ..ProxyConfig::new(server.local_addr(), link)
    };
    let down = JitterProxy::start(down_config).unwrap();
    let sender = connect(up.local_addr()).unwrap();
    let receiver = stamped_port(down.local_addr(), 40);
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    eventually("three clients", || server.client_count() == 3);
    assert_eq!(read_exactly(&mut raw, STAMP_REQUEST.len()), STAMP_REQUEST);

    // Until the sender stamps and the receiver reads stamps from the server.
    let mut warm_up = until_stamping(&sender);
    loop {
        sender.send(&Message::ActiveSensing).unwrap();
        warm_up += 1;
        let received = receiver.receive_timeout_stamped(WAIT).unwrap().expect("a relayed message");
        if received.sender_ns.is_some() {
            break;
        }
    }

    const COUNT: u32 = 1_000;
    let sending = send_numbered_in_bursts(sender, COUNT);
    let got = port_receive_until(&receiver, COUNT - 1);
    let sender = sending.join().unwrap();
    let relayed: Vec<&Received> = got.iter().filter(|r| number_of(&r.message).is_some()).collect();
    assert_eq!(numbers(&got), (0..COUNT).collect::<Vec<_>>(), "in order, none lost, none twice");
    assert!(relayed.iter().all(|r| r.sender_ns.is_some()), "relayed with the sender's time");
    assert_never_back(&relayed);
    // The stamps are on the server's clock (here, the same clock): sender time + the first
    // leg's smallest delay, and the second leg adds at least 10 ms more.
    assert!(relayed.iter().all(|r| r.timestamp_ns >= r.sender_ns.unwrap() + 10_000_000));
    assert_eq!(receiver.decoder_stats(), Default::default());

    // A client that did not ask gets exactly the plain bytes of everything the sender sent.
    let mut expected = vec![0xFE; warm_up];
    expected.extend(plain_bytes(&(0..COUNT).map(numbered).collect::<Vec<_>>()));
    assert_eq!(read_exactly(&mut raw, expected.len()), expected);
    // And the server's own receive got it all too, played out through the sender's buffer.
    let own = server_receive_until(&server, COUNT - 1);
    assert_eq!(numbers(&own), (0..COUNT).collect::<Vec<_>>());
    drop(sender);
}

#[test]
fn a_departing_client_and_a_closing_server_deliver_everything_the_buffers_held() {
    // A minute of delay: anything received within the test's waits was delivered by the
    // departure or the close, not by the schedule.
    let config = ServerConfig::default().jitter_buffer(DelayMode::fixed(60_000_000_000));
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    assert_eq!(server.try_receive().unwrap(), None);
    let leaving = connect(server.local_addr()).unwrap();
    let staying = connect(server.local_addr()).unwrap();
    let leaving_warm_up = until_stamping(&leaving);
    let staying_warm_up = until_stamping(&staying);
    leaving.send_all(&(0..50).map(numbered).collect::<Vec<_>>()).unwrap();
    leaving.send(&Message::NoteOn { channel: 0, note: 60, velocity: 90 }).unwrap();
    staying.send_all(&(100..150).map(numbered).collect::<Vec<_>>()).unwrap();
    eventually("both buffers to hold their messages", || {
        let stats = server.playout_stats();
        stats.len() == 2 && stats.iter().map(|(_, s)| s.queued).sum::<usize>() >= 101
    });
    drop(leaving);

    // Everything the leaving client sent, in order, then the note it left held is released.
    let mut got = Vec::new();
    loop {
        let received = server.receive_timeout_stamped(WAIT).unwrap().expect("drained on departure");
        let done = matches!(received.message, Message::NoteOff { .. });
        got.push(received);
        if done {
            break;
        }
    }
    assert_eq!(numbers(&got), (0..50).collect::<Vec<_>>());
    let n = got.len();
    assert_eq!(got[n - 2].message, Message::NoteOn { channel: 0, note: 60, velocity: 90 });
    assert!(got[n - 2].sender_ns.is_some());
    assert_eq!(got[n - 1].message, Message::NoteOff { channel: 0, note: 60, velocity: 0 });
    // Warm-up messages sent before a client answered are plain and delivered at once, from
    // either client; none twice.
    let warm_ups = got.iter().filter(|r| r.message == Message::ActiveSensing).count();
    assert!(warm_ups <= leaving_warm_up + staying_warm_up, "{warm_ups} warm-up messages received");
    let now = midisock::monotonic_ns();
    assert!(got.iter().all(|r| r.timestamp_ns <= now), "never stamped with a time still to come");
    assert_eq!(server.playout_stats().len(), 1);

    // Closing delivers what the staying client's buffer held; receive gives it out after.
    server.close();
    let mut rest = Vec::new();
    while let Ok(Some(received)) = server.try_receive_stamped() {
        rest.push(received);
    }
    assert_eq!(numbers(&rest), (100..150).collect::<Vec<_>>());
    assert!(rest.iter().filter(|r| r.message == Message::ActiveSensing).count() <= staying_warm_up);
    assert!(server.receive().is_err(), "closed once drained");
}

#[test]
fn a_denied_sysex_is_dropped_whether_it_came_stamped_or_not() {
    let config = ServerConfig::default().jitter_buffer(DelayMode::fixed(5_000_000)).sysex(midisock::SysexPolicy::Deny);
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    assert_eq!(server.try_receive().unwrap(), None);
    let stamping = connect(server.local_addr()).unwrap();
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    until_stamping(&stamping);
    let sysex = Message::SysEx { data: vec![0x41, 0x10, 0x42] };
    stamping.send_all(&[numbered(0), sysex.clone(), numbered(1), sysex.clone(), numbered(2)]).unwrap();
    std::io::Write::write_all(&mut raw, &plain_bytes(&[sysex.clone(), numbered(10)])).unwrap();
    let mut got = server_receive_until(&server, 2);
    if !got.iter().any(|r| number_of(&r.message) == Some(10)) {
        got.extend(server_receive_until(&server, 10));
    }
    assert!(got.iter().all(|r| !matches!(r.message, Message::SysEx { .. })), "no sysex gets through");
    let mut seen = numbers(&got);
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2, 10]);
    assert_eq!(server.stats().sysex_denied, 3, "counted once each, stamped or not");
}

struct Identity {
    cert: midisock::rustls::pki_types::CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn identity() -> Identity {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    Identity { cert: generated.cert.der().clone(), key_der: generated.signing_key.serialize_der() }
}

#[test]
fn token_and_tls_carry_the_hellos_both_ways() {
    let id = identity();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone()));
    let tls = TlsServer::from_der(vec![id.cert.clone()], key).unwrap();
    let config = ServerConfig::default().tls(tls).token("s3cret").unwrap().jitter_buffer(DelayMode::adaptive());
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    assert_eq!(server.try_receive().unwrap(), None);
    let options = ConnectOptions::default()
        .tls(TlsClient::with_ca_der(vec![id.cert.clone()]).unwrap())
        .token("s3cret")
        .jitter_buffer(DelayMode::fixed(10_000_000));
    let client = connect_with(("127.0.0.1", server.local_addr().port()), &options).unwrap();
    eventually("the client admitted", || server.client_count() == 1);

    // Client to server: the server asked (inside TLS, after the token), the client stamps.
    until_stamping(&client);
    client.send_all(&(0..100).map(numbered).collect::<Vec<_>>()).unwrap();
    let got = server_receive_until(&server, 99);
    assert_eq!(numbers(&got), (0..100).collect::<Vec<_>>());
    assert!(got.iter().filter(|r| number_of(&r.message).is_some()).all(|r| r.sender_ns.is_some()));
    assert_eq!(server.playout_stats().len(), 1);

    // Server to client: the client asked, the server answers with its first broadcast.
    server.send_all(&(200..300).map(numbered).collect::<Vec<_>>()).unwrap();
    let got = port_receive_until(&client, 299);
    assert_eq!(numbers(&got), (200..300).collect::<Vec<_>>());
    assert!(got.iter().all(|r| r.sender_ns.is_some()), "stamped from the first broadcast on");
    assert_eq!(client.decoder_stats(), Default::default());
    assert_eq!(server.stats().auth_failures, 0);
}

// ----- Real mido 1.3.3 clients against a server with its jitter buffer on -----

#[test]
fn mido_clients_of_a_jitter_server_receive_exactly_the_broadcast_and_send_unstamped() {
    let config = ServerConfig::default().jitter_buffer(DelayMode::adaptive());
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    let port = server.local_addr().port().to_string();
    let expected: Vec<String> = every_message().iter().map(Message::to_string).collect();
    let count = expected.len().to_string();

    // Broadcast: each mido client prints exactly the messages, none made of the request.
    let mut receivers: Vec<MidoPeer> =
        (0..2).map(|_| MidoPeer::start("tests/mido/peer.py", &["client-receive", &port, &count])).collect();
    for peer in &mut receivers {
        assert_eq!(peer.line(), "CONNECTED");
    }
    eventually("the mido clients", || server.client_count() == 2);
    server.send_all(&every_message()).unwrap();
    for peer in receivers {
        assert_eq!(peer.finish(), expected);
    }

    // Receive: what a mido client sends arrives whole, unstamped, with no buffer made for it.
    let sender = MidoPeer::start("tests/mido/peer.py", &["client-send", &port]);
    assert_eq!(sender.finish(), expected);
    let received: Vec<Received> =
        (0..expected.len()).map(|_| server.receive_timeout_stamped(WAIT).unwrap().expect("a message")).collect();
    let texts: Vec<String> = received.iter().map(|r| r.message.to_string()).collect();
    assert_eq!(texts, expected);
    assert!(received.iter().all(|r| r.sender_ns.is_none()));
    assert!(server.playout_stats().is_empty(), "mido never answers, so no client is played out");
    assert_eq!(server.receive_timeout(Duration::from_millis(100)).unwrap(), None, "nothing more");
}

/// A connection taken with `accept()` from a server with a jitter buffer keeps what the server
/// set up for it: the buffer (the client was asked for stamps while in the lobby, so it stamps
/// what it sends), and the server's answer to the client's own request (so the accepted port
/// stamps what it sends, however late its first send comes).
#[test]
fn an_accepted_connection_keeps_the_servers_jitter_buffer_and_stamping() {
    let server =
        PortServer::bind_with("127.0.0.1:0", ServerConfig::default().jitter_buffer(DelayMode::fixed(1_000_000)))
            .unwrap();
    let client = stamped_port(server.local_addr(), 1);
    // The server answers the client's request from the lobby (once it has looked at the lobby:
    // broadcasts before that go out plain) and from then on stamps its broadcasts for it.
    eventually("the server to see the client", || server.client_count() == 1);
    let mut sent = 0;
    eventually("a stamped broadcast at the client", || {
        server.send(&numbered(sent)).unwrap();
        sent += 1;
        let received = client.receive_timeout_stamped(Duration::from_millis(20)).unwrap();
        received.is_some_and(|received| received.sender_ns.is_some())
    });
    let accepted = server.accept_timeout(WAIT).unwrap().expect("the connection in the lobby");
    assert!(accepted.playout_stats().is_some(), "the accepted port has the server's jitter buffer");

    // The client answered the server's request: what it sends arrives stamped and played out.
    until_stamping(&client);
    client.send(&numbered(7)).unwrap();
    let received = loop {
        let received = accepted.receive_timeout_stamped(WAIT).unwrap().expect("the client's message");
        if received.message != Message::ActiveSensing {
            break received;
        }
    };
    assert_eq!(received.message, numbered(7));
    assert!(received.sender_ns.is_some(), "the client's message came stamped");

    // The accepted port stamps for the client from its first send, as the server did.
    accepted.send(&numbered(9)).unwrap();
    let back = loop {
        let received = client.receive_timeout_stamped(WAIT).unwrap().expect("the accepted port's message");
        if number_of(&received.message) == Some(9) {
            break received;
        }
    };
    assert!(back.sender_ns.is_some(), "the accepted port stamps as the server did");
    assert_eq!(client.decoder_stats().garbage_bytes, 0, "the client's decoder skipped nothing");
}
