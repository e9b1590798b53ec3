//! The timing extension on real ports (docs/timing.md): a port with a jitter buffer asks its peer
//! for stamps, the peer answers (also when it only sends), and messages come out of the buffer
//! in order, each with its sender's time.
//!
//! Every wait is bounded and generous, and nothing asserts timing tighter than a machine loaded
//! far past its cores allows: order, counts, bytes and the stats' fields are what is checked.

mod support;

use midisock::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use midisock::timing::{Decoded, DelayMode, StampDecoder, STAMP_ANSWER, STAMP_REQUEST};
use midisock::{
    connect_with, ConnectOptions, Message, PortServer, Received, ServerConfig, SocketPort, TlsClient, TlsServer,
};
use midisock_testkit::{DelayDistribution, JitterProxy, ProxyConfig};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use support::{eventually, number_of, numbered, send_numbered_in_bursts, WAIT};

/// A listener whose accepted connection becomes a plain port (no buffer): the sending side.
fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn accept_port(listener: &TcpListener) -> SocketPort {
    let (stream, _) = listener.accept().unwrap();
    SocketPort::from_stream(stream).unwrap()
}

/// Sends throw-away messages until `sender` has read its peer's request and answers it (a port
/// that only sends reads the request from inside `send`).
fn until_stamping(sender: &SocketPort) {
    eventually("the sender to answer the request", || {
        sender.send(&Message::ActiveSensing).unwrap();
        sender.sends_stamps()
    });
}

/// Receives until message number `last` arrived; returns the numbered ones, skipping others.
fn receive_numbered(port: &SocketPort, last: u32) -> Vec<Received> {
    let mut got = Vec::new();
    loop {
        let received = port.receive_timeout_stamped(WAIT).unwrap().expect("a message within the wait");
        if let Some(n) = number_of(&received.message) {
            got.push(received);
            if n == last {
                return got;
            }
        }
    }
}

#[test]
fn a_port_pair_through_a_jittery_link_keeps_order_and_every_message_carries_its_stamp() {
    let listener = listener();
    let link: DelayDistribution = "20±10ms".parse().unwrap();
    // The receiver connects through the proxy, so the stream it receives goes back to the client.
    let config = ProxyConfig { to_client: link, ..ProxyConfig::new(listener.local_addr().unwrap(), link) };
    let proxy = JitterProxy::start(config).unwrap();
    let delay_ns = 30_000_000;
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(delay_ns));
    let receiver = connect_with(proxy.local_addr(), &options).unwrap();
    let sender = accept_port(&listener);
    assert!(receiver.playout_stats().is_some(), "the buffer exists from the start");
    until_stamping(&sender);

    const COUNT: u32 = 1_500;
    let sending = send_numbered_in_bursts(sender, COUNT);
    let got = receive_numbered(&receiver, COUNT - 1);
    let sender = sending.join().unwrap();

    let numbers: Vec<u32> = got.iter().map(|r| number_of(&r.message).unwrap()).collect();
    assert_eq!(numbers, (0..COUNT).collect::<Vec<_>>(), "in order, none lost, none twice");
    assert!(got.iter().all(|r| r.sender_ns.is_some()), "every message after the answer is stamped");
    for pair in got.windows(2) {
        assert!(pair[0].sender_ns <= pair[1].sender_ns, "sender times never go back");
        assert!(pair[0].timestamp_ns <= pair[1].timestamp_ns, "played-out times never go back");
    }
    // Sender and receiver share this machine's clock: nothing can come out before it was sent
    // plus the link's smallest delay (10 ms).
    assert!(got.iter().all(|r| r.timestamp_ns >= r.sender_ns.unwrap() + 10_000_000));

    let stats = receiver.playout_stats().unwrap();
    assert_eq!(stats.delay_ns, delay_ns, "the fixed delay is in force");
    let offset = stats.offset_ns.expect("an offset once stamped messages arrived");
    // One clock on both ends: the offset is the link's smallest delay seen lately (its floor is
    // 10 ms; a loaded machine only adds to it), less at most the drift correction's 2 ms
    // (500 ppm over half the 8 s window), which early, uneven minima can bring in.
    assert!(offset >= 8_000_000, "offset {offset} ns");
    assert!(stats.jitter_p50_ns.is_some() && stats.jitter_p999_ns.is_some());
    assert!(stats.pushed >= u64::from(COUNT));
    assert_eq!(stats.delivered, stats.pushed, "everything pushed came out");
    assert_eq!((stats.queued, stats.held_note_offs, stats.delivered_early_full), (0, 0, 0));
    assert!(stats.late <= stats.pushed);
    assert_eq!(receiver.decoder_stats(), Default::default(), "a clean stream");
    let latencies: Vec<u64> = got.iter().map(|r| r.timestamp_ns - r.sender_ns.unwrap()).collect();
    let median = median(latencies.clone());
    eprintln!(
        "20±10 ms link, fixed 30 ms: median latency {:.2} ms, offset {:.2} ms, late {} of {}",
        median as f64 / 1e6,
        offset as f64 / 1e6,
        stats.late,
        stats.pushed
    );
    drop(sender);
    // The peer closed: the port reports it once everything queued is out.
    eventually("the receiver to see the close", || receiver.try_receive().is_err() || receiver.is_closed());
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[test]
fn a_send_only_port_answers_through_its_peek_and_leaves_midi_for_its_receives() {
    let listener = listener();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(1_000_000));
    let receiver = connect_with(listener.local_addr().unwrap(), &options).unwrap();
    let sender = accept_port(&listener);
    // MIDI behind the request, already in the sender's socket before it sends anything.
    receiver.send_all(&[numbered(1), numbered(2)]).unwrap();
    until_stamping(&sender);
    sender.send(&numbered(7)).unwrap();
    let got = receive_numbered(&receiver, 7);
    assert!(got.last().unwrap().sender_ns.is_some());
    // The look took only the request: the sender's receives still get every message.
    assert_eq!(sender.receive_timeout(WAIT).unwrap(), Some(numbered(1)));
    assert_eq!(sender.receive_timeout(WAIT).unwrap(), Some(numbered(2)));
    assert_eq!(sender.parser_stats(), Default::default());
}

#[test]
fn the_answer_and_stamps_on_the_wire_decode_and_a_request_after_a_token_hello_is_found() {
    let listener = listener();
    let mut raw = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let sender = accept_port(&listener);
    // What a client with a token and a jitter buffer writes first (a port made with
    // from_stream reads the token hello as MIDI would: ignored).
    let mut first = b"\xF4secret\xF7".to_vec();
    first.extend_from_slice(STAMP_REQUEST);
    raw.write_all(&first).unwrap();
    until_stamping(&sender);
    sender.send_all(&[numbered(1), Message::sysex(vec![1, 2, 3]).unwrap(), numbered(2)]).unwrap();
    sender.close();
    let mut wire = Vec::new();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.read_to_end(&mut wire).unwrap();
    let answer_at = wire.windows(STAMP_ANSWER.len()).position(|w| w == STAMP_ANSWER).expect("the answer");
    assert!(wire[..answer_at].iter().all(|&b| b == 0xFE), "only plain active sensing before it: {wire:02X?}");
    assert_eq!(wire.windows(STAMP_ANSWER.len()).filter(|w| *w == STAMP_ANSWER).count(), 1, "one answer");
    let mut decoder = StampDecoder::default();
    let mut items = Vec::new();
    decoder.feed(&wire, |item| items.push(item));
    let after: Vec<_> = items.iter().skip_while(|item| **item != Decoded::StampsStart).skip(1).collect();
    let messages: Vec<_> = after
        .iter()
        .map(|item| match item {
            Decoded::Message { sender_ns: Some(_), message } => message.clone(),
            other => panic!("unstamped after the answer: {other:?}"),
        })
        .filter(|m| *m != Message::ActiveSensing)
        .collect();
    assert_eq!(messages, [numbered(1), Message::sysex(vec![1, 2, 3]).unwrap(), numbered(2)]);
    assert_eq!(decoder.stats(), Default::default());
}

#[test]
fn a_peer_that_never_asks_gets_todays_bytes_and_its_messages_arrive_unstamped_at_once() {
    let listener = listener();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::adaptive());
    let port = connect_with(listener.local_addr().unwrap(), &options).unwrap();
    let (mut raw, _) = listener.accept().unwrap();
    // Like mido: plain bytes both ways.
    raw.write_all(&[0x90, 60, 100, 0xF8]).unwrap();
    let first = port.receive_timeout_stamped(WAIT).unwrap().unwrap();
    assert_eq!(first.message, Message::NoteOn { channel: 0, note: 60, velocity: 100 });
    assert_eq!(first.sender_ns, None);
    assert_eq!(port.receive_timeout_stamped(WAIT).unwrap().unwrap().message, Message::Clock);
    let stats = port.playout_stats().unwrap();
    assert_eq!((stats.pushed, stats.offset_ns), (0, None), "nothing went through the buffer");
    port.send_all(&[numbered(5), Message::Stop]).unwrap();
    port.close();
    let mut wire = Vec::new();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.read_to_end(&mut wire).unwrap();
    let mut expected = STAMP_REQUEST.to_vec();
    expected.extend_from_slice(&numbered(5).to_bytes());
    expected.push(0xFC);
    assert_eq!(wire, expected, "the request, then today's bytes: no stamp without an answer");
}

#[test]
fn without_a_buffer_nothing_is_asked_and_nothing_changes() {
    let listener = listener();
    let port = connect_with(listener.local_addr().unwrap(), &ConnectOptions::default()).unwrap();
    let (mut raw, _) = listener.accept().unwrap();
    assert_eq!(port.playout_stats(), None);
    port.send(&Message::Start).unwrap();
    port.close();
    let mut wire = Vec::new();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.read_to_end(&mut wire).unwrap();
    assert_eq!(wire, [0xFA]);
}

#[test]
fn a_port_that_receives_answers_from_its_receive_and_both_directions_can_ask() {
    let listener = listener();
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(2_000_000));
    let a = connect_with(listener.local_addr().unwrap(), &options).unwrap();
    let b = accept_port(&listener);
    // b receives (a callback), so its reader sees the request; a sends to it first.
    let (tx, rx) = std::sync::mpsc::channel();
    b.set_callback(move |received| tx.send(received).unwrap()).unwrap();
    a.send(&numbered(1)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap().message, numbered(1));
    eventually("b to have read the request", || b.sends_stamps());
    b.send(&numbered(2)).unwrap();
    let got = receive_numbered(&a, 2);
    assert_eq!(got.len(), 1);
    assert!(got[0].sender_ns.is_some());
    // a never got a request from b (b has no buffer): a's messages stay plain.
    assert!(!a.sends_stamps());
    a.send(&numbered(3)).unwrap();
    let third = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((third.message, third.sender_ns), (numbered(3), None));
}

#[test]
fn a_closing_peer_leaves_nothing_queued_behind() {
    let listener = listener();
    // A long delay: everything is still queued when the sender closes.
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(200_000_000));
    let receiver = connect_with(listener.local_addr().unwrap(), &options).unwrap();
    let sender = accept_port(&listener);
    until_stamping(&sender);
    sender.send_all(&(0..50).map(numbered).collect::<Vec<_>>()).unwrap();
    sender.close();
    let got = receive_numbered(&receiver, 49);
    assert_eq!(got.len(), 50);
    assert!(receiver.receive_timeout(WAIT).is_err(), "then the end of the stream");
    let stats = receiver.playout_stats().unwrap();
    assert_eq!((stats.queued, stats.delivered), (0, stats.pushed));
}

struct Identity {
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn identity() -> Identity {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    Identity { cert: generated.cert.der().clone(), key_der: generated.signing_key.serialize_der() }
}

#[test]
fn token_and_tls_carry_the_hellos_and_a_send_only_accepted_port_answers() {
    let id = identity();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone()));
    let tls = TlsServer::from_der(vec![id.cert.clone()], key).unwrap();
    let server =
        PortServer::bind_with("127.0.0.1:0", ServerConfig::default().tls(tls).token("s3cret").unwrap()).unwrap();
    let options = ConnectOptions::default()
        .tls(TlsClient::with_ca_der(vec![id.cert.clone()]).unwrap())
        .token("s3cret")
        .jitter_buffer(DelayMode::adaptive());
    let client = connect_with(("127.0.0.1", server.local_addr().port()), &options).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().expect("the client, admitted by its token");
    until_stamping(&accepted);
    accepted.send_all(&(0..20).map(numbered).collect::<Vec<_>>()).unwrap();
    let got = receive_numbered(&client, 19);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|r| r.sender_ns.is_some()));
    assert_eq!(client.decoder_stats(), Default::default());
    // And the other way, plain: the accepted port did not ask.
    client.send(&numbered(3)).unwrap();
    let back = accepted.receive_timeout_stamped(WAIT).unwrap().unwrap();
    assert_eq!((back.message, back.sender_ns), (numbered(3), None));
    assert_eq!(client.refusal(), None);
}

#[test]
fn a_wrong_token_is_still_refused_with_the_request_behind_it() {
    let server = PortServer::bind_with("127.0.0.1:0", ServerConfig::default().token("right").unwrap()).unwrap();
    let options = ConnectOptions::default().token("wrong").jitter_buffer(DelayMode::adaptive());
    let client = connect_with(("127.0.0.1", server.local_addr().port()), &options).unwrap();
    let error = client.finish(WAIT).unwrap_err();
    assert!(matches!(error, midisock::Error::Refused { .. }), "{error:?}");
}

#[test]
fn a_reconnecting_port_asks_again_on_every_connection() {
    let listener = listener();
    let options = ConnectOptions::default()
        .jitter_buffer(DelayMode::fixed(1_000_000))
        .reconnect(midisock::Reconnect { initial_delay: Duration::from_millis(10), ..Default::default() });
    let port = midisock::ReconnectingPort::connect(listener.local_addr().unwrap(), &options).unwrap();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    let accepting = std::thread::spawn(move || {
        for _ in 0..2 {
            accepted_tx.send(accept_port(&listener)).unwrap();
        }
    });
    for round in 0..2u32 {
        // The port notices a drop when it next reads: keep it reading while it reconnects.
        let sender = loop {
            if let Ok(sender) = accepted_rx.try_recv() {
                break sender;
            }
            let _ = port.receive_timeout(Duration::from_millis(5));
        };
        until_stamping(&sender);
        sender.send(&numbered(round)).unwrap();
        let received = loop {
            let received = port.receive_timeout_stamped(WAIT).unwrap().expect("a message within the wait");
            if number_of(&received.message).is_some() {
                break received;
            }
        };
        assert_eq!((number_of(&received.message), received.sender_ns.is_some()), (Some(round), true));
        assert!(port.playout_stats().is_some_and(|stats| stats.pushed >= 1));
        // The server goes away; the port reconnects and asks its new peer.
        sender.close();
    }
    accepting.join().unwrap();
}

#[test]
fn an_adopted_stream_with_a_jitter_buffer_asks_for_stamps_and_plays_them_out() {
    let listener = listener();
    // The program accepted the connection itself (mido's `conn=`): the sender is the client.
    let sender = midisock::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let playout = midisock::timing::PlayoutConfig::new(DelayMode::fixed(2_000_000));
    let receiver = SocketPort::from_stream_with_jitter_buffer(stream, playout).unwrap();
    assert_eq!(receiver.playout_stats().map(|s| s.delay_ns), Some(2_000_000), "the buffer exists from the start");
    until_stamping(&sender);
    const COUNT: u32 = 200;
    let sending = send_numbered_in_bursts(sender, COUNT);
    let got = receive_numbered(&receiver, COUNT - 1);
    drop(sending.join().unwrap());
    let numbers: Vec<u32> = got.iter().map(|r| number_of(&r.message).unwrap()).collect();
    assert_eq!(numbers, (0..COUNT).collect::<Vec<_>>(), "in order, none lost, none twice");
    assert!(got.iter().all(|r| r.sender_ns.is_some()), "every message after the answer is stamped");
    let stats = receiver.playout_stats().unwrap();
    assert!(stats.pushed >= u64::from(COUNT) && stats.offset_ns.is_some(), "{stats:?}");
}
