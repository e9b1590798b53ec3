//! `framing`: the real socket read paths. Each input (layout `[k][len_1 .. len_k][stream ...]`)
//! is written, in fuzz-chosen chunks, as the whole content of a TCP connection on 127.0.0.1,
//! then the writer closes. Three paths read it:
//!
//! 1. **served**: a `PortServer` (sysex limit 16, inbox limit 64 bytes) whose event loop reads and parses the connection
//!    into `receive()`. It must deliver exactly what a `Parser` makes of the bytes — a message
//!    cut off by the close is never delivered — followed by the note-offs and sustain-offs for
//!    what the connection left held (`HeldNotes`), and nothing else.
//! 2. **accepted**: a second `PortServer` nobody receives from, so the connection waits in the
//!    lobby; `accept()` hands it over as a `SocketPort`, which must yield what a `Parser` makes
//!    of the bytes (default limit) and then end.
//! 3. **connected**: a `SocketPort` from `connect()` to a plain listener that writes the bytes.
//!
//! Receive timestamps must never go backwards. The servers and the listener are set up once, lazily. Every wait is bounded: a hang is a
//! failure with the input named, not a stuck fuzzer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use midisock::{
    connect, monotonic_ns, HeldNotes, Message, PortServer, ServerConfig, SocketPort, DEFAULT_MAX_SYSEX_LEN,
};
use midisock_fuzz::{chunks, parse_all, split_header};
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SERVER_SYSEX_LIMIT: usize = 16;
const SERVER_INBOX_LIMIT: usize = 64;
const WAIT: Duration = Duration::from_secs(10);

struct Rig {
    served: PortServer,
    lobby: PortServer,
    listener: TcpListener,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        // A tiny inbox makes the event loop pause reading and resume on `receive` all the time.
        let config = ServerConfig::default().max_sysex_len(SERVER_SYSEX_LIMIT).max_inbox_bytes(SERVER_INBOX_LIMIT);
        let served = PortServer::bind_with("127.0.0.1:0", config).expect("bind served server");
        // Claim reads: from now on every new connection is served by the event loop.
        assert_eq!(served.try_receive().expect("try_receive"), None);
        let lobby = PortServer::bind("127.0.0.1:0").expect("bind lobby server");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind listener");
        Rig { served, lobby, listener }
    })
}

/// Writes `parts` on `stream` one write each, then closes our sending side. A reader that
/// refuses the connection (`refused_ok`) may close it while we still write.
fn write_parts(stream: &mut TcpStream, parts: &[&[u8]], refused_ok: bool) {
    stream.set_nodelay(true).expect("nodelay");
    for part in parts {
        if let Err(e) = stream.write_all(part) {
            assert!(refused_ok, "write to the reader: {e}");
            return;
        }
    }
    if let Err(e) = stream.shutdown(Shutdown::Write) {
        assert!(refused_ok, "shutdown: {e}");
    }
}

/// Everything `port` yields until the peer's close ends it, within `WAIT`.
fn drain_port(port: &SocketPort, what: &str) -> Vec<Message> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut last_ns = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: the port did not end within {WAIT:?}; got {got:?}");
        match port.receive_timeout_stamped(left) {
            Ok(Some(r)) => {
                check_timestamp(&mut last_ns, r.timestamp_ns, what);
                got.push(r.message);
            }
            Ok(None) => {}
            Err(midisock::Error::Closed) => return got,
            Err(e) => panic!("{what}: receive failed: {e}"),
        }
    }
}

/// Receive timestamps never go backwards and are never in the future.
fn check_timestamp(last_ns: &mut u64, ns: u64, what: &str) {
    assert!(ns >= *last_ns, "{what}: timestamp went backwards: {ns} after {last_ns}");
    assert!(ns <= monotonic_ns(), "{what}: timestamp {ns} is in the future");
    *last_ns = ns;
}

/// A plain server refuses a connection that starts with a TLS handshake record (`16 03`) and
/// parses none of it (docs/server.md).
fn starts_like_tls(stream: &[u8]) -> bool {
    stream.starts_with(&[0x16, 0x03])
}

fn served(rig: &Rig, parts: &[&[u8]], stream: &[u8]) {
    let mut expected = if starts_like_tls(stream) { Vec::new() } else { parse_all(SERVER_SYSEX_LIMIT, stream) };
    let mut held = HeldNotes::default();
    for m in &expected {
        held.observe(m);
    }
    held.release_all(|m| expected.push(m));

    let mut conn = TcpStream::connect(rig.served.local_addr()).expect("connect to served server");
    write_parts(&mut conn, parts, starts_like_tls(stream));

    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut last_ns = 0;
    while got.len() < expected.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rig.served.receive_timeout_stamped(left).expect("server receive") {
            Some(r) => {
                check_timestamp(&mut last_ns, r.timestamp_ns, "served");
                got.push(r.message);
            }
            None => panic!("served: timed out; expected {expected:?}, got {got:?}"),
        }
    }
    assert_eq!(got, expected, "served: delivered messages differ from the parser's");
    // Nothing more: wait until the server has let the connection go, then look once more.
    while rig.served.client_count() > 0 {
        assert!(Instant::now() < deadline, "served: the connection was never dropped");
        std::thread::sleep(Duration::from_micros(50));
    }
    drop(conn);
    if let Some(extra) = rig.served.try_receive().expect("server try_receive") {
        panic!("served: delivered more than expected: {extra:?} after {got:?}");
    }
}

fn accepted(rig: &Rig, parts: &[&[u8]], stream: &[u8]) {
    let expected = parse_all(DEFAULT_MAX_SYSEX_LEN, stream);
    let mut conn = TcpStream::connect(rig.lobby.local_addr()).expect("connect to lobby server");
    write_parts(&mut conn, parts, false);
    let port = rig
        .lobby
        .accept_timeout(WAIT)
        .expect("accept")
        .unwrap_or_else(|| panic!("accepted: no connection to accept within {WAIT:?}"));
    assert_eq!(drain_port(&port, "accepted"), expected, "accepted: port yields differ from the parser's");
}

fn connected(rig: &Rig, parts: &[&[u8]], stream: &[u8]) {
    let port = connect(rig.listener.local_addr().expect("listener address")).expect("connect()");
    let (mut conn, _) = rig.listener.accept().expect("listener accept");
    write_parts(&mut conn, parts, false);
    // A client reads a refusal notice at the start of its connection as the server's refusal
    // (docs/protocol.md): nothing is delivered, every receive reports the cause.
    if let Some(cause) = refusal_notice(stream) {
        match port.receive_timeout(WAIT) {
            Err(midisock::Error::Refused { cause: got }) => assert_eq!(got, cause, "connected: refusal cause"),
            other => panic!("connected: expected a refusal ({cause:?}), got {other:?}"),
        }
        return;
    }
    let expected = parse_all(DEFAULT_MAX_SYSEX_LEN, stream);
    assert_eq!(drain_port(&port, "connected"), expected, "connected: port yields differ from the parser's");
}

/// The cause, when `stream` starts with a refusal notice as docs/protocol.md defines it: `F4`,
/// `refused: `, a non-empty printable ASCII cause and `F7`, all within the first 128 bytes.
fn refusal_notice(stream: &[u8]) -> Option<String> {
    const HEAD: &[u8] = b"\xF4refused: ";
    const MAX_LEN: usize = 128;
    let rest = stream.strip_prefix(HEAD)?;
    let window = &rest[..rest.len().min(MAX_LEN - HEAD.len())];
    let end = window.iter().position(|&b| b == 0xF7)?;
    let cause = &window[..end];
    (end > 0 && cause.iter().all(|b| (0x20..=0x7E).contains(b))).then(|| String::from_utf8_lossy(cause).into_owned())
}

fuzz_target!(|input: &[u8]| {
    let (lens, stream) = split_header(input);
    let parts = chunks(stream, &lens);
    let rig = rig();
    served(rig, &parts, stream);
    // A connection that sends nothing may leave the lobby before accept() sees it, and one
    // that starts like TLS is refused there: skip both.
    if !stream.is_empty() && !starts_like_tls(stream) {
        accepted(rig, &parts, stream);
    }
    connected(rig, &parts, stream);
});
