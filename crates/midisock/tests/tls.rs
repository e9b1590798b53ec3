//! TLS (rustls) between midisock clients and servers on loopback, with an in-memory self-signed
//! certificate.

mod support;

use midisock::rustls;
use midisock::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use midisock::{
    connect, connect_with, ConnectOptions, Error, Message, PortServer, RefusalCause, ServerConfig, ServerEvent,
    TlsClient, TlsServer,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{eventually, notice, read_until_closed, WAIT};

struct Identity {
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

fn identity() -> Identity {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    Identity {
        cert: generated.cert.der().clone(),
        key_der: generated.signing_key.serialize_der(),
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
    }
}

fn tls_server(id: &Identity, config: ServerConfig) -> PortServer {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone()));
    let tls = TlsServer::from_der(vec![id.cert.clone()], key).unwrap();
    PortServer::bind_with("127.0.0.1:0", config.tls(tls)).unwrap()
}

fn client_options(id: &Identity) -> ConnectOptions {
    ConnectOptions::default().tls(TlsClient::with_ca_der(vec![id.cert.clone()]).unwrap())
}

fn on(note: u8) -> Message {
    Message::NoteOn { channel: 0, note, velocity: 90 }
}

#[test]
fn tls_round_trip_both_ways() {
    let id = identity();
    let server = tls_server(&id, ServerConfig::default());
    let client = connect_with(("127.0.0.1", server.local_addr().port()), &client_options(&id)).unwrap();
    let sysex = Message::SysEx { data: (0..100_000u32).map(|i| (i % 128) as u8).collect() };
    client.send_all(&[on(60), sysex.clone()]).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(on(60)));
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(sysex.clone()));
    eventually("client admitted", || server.client_count() == 1);
    server.send_all(&[on(61), sysex.clone()]).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(on(61)));
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(sysex));
    client.close();
    // The server sees the clean close and releases the note the client left held.
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::NoteOff { channel: 0, note: 60, velocity: 0 }));
}

#[test]
fn tls_with_a_token_and_accept_handover() {
    let id = identity();
    let server = tls_server(&id, ServerConfig::default().token("pw").unwrap());
    let options = client_options(&id).token("pw");
    let client = connect_with(("localhost", server.local_addr().port()), &options).unwrap();
    client.send(&on(1)).unwrap();
    let accepted = server.accept_timeout(WAIT).unwrap().expect("a connection");
    assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(on(1)));
    accepted.send(&on(2)).unwrap();
    assert_eq!(client.receive_timeout(WAIT).unwrap(), Some(on(2)));
    // While one thread waits in receive, another can send (the session lock is not held while
    // waiting for the socket).
    let client = std::sync::Arc::new(client);
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let waiter = {
        let client = std::sync::Arc::clone(&client);
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            client.receive_timeout(WAIT)
        })
    };
    wait_until_polling(tid_rx.recv_timeout(WAIT).unwrap());
    client.send(&on(3)).unwrap();
    assert_eq!(accepted.receive_timeout(WAIT).unwrap(), Some(on(3)));
    accepted.send(&on(4)).unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Some(on(4)));
    drop(accepted);
    assert!(matches!(client.receive_timeout(WAIT), Err(Error::Closed)));
}

#[test]
fn an_untrusted_certificate_fails_the_handshake() {
    let id = identity();
    let other = identity();
    let server = tls_server(&id, ServerConfig::default());
    let err = connect_with(("127.0.0.1", server.local_addr().port()), &client_options(&other)).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("handshake"), "{err}");
}

#[test]
fn a_wrong_server_name_fails_the_handshake() {
    let id = identity();
    let server = tls_server(&id, ServerConfig::default());
    let options = ConnectOptions::default()
        .tls(TlsClient::with_ca_der(vec![id.cert.clone()]).unwrap().server_name("example.org"));
    assert!(matches!(connect_with(("127.0.0.1", server.local_addr().port()), &options), Err(Error::Tls(_))));
}

#[test]
fn a_plain_client_cannot_talk_to_a_tls_server() {
    let id = identity();
    let server = tls_server(&id, ServerConfig::default().auth_timeout(Duration::from_millis(200)));
    let plain = connect(server.local_addr()).unwrap();
    let _ = plain.send(&on(5));
    // Closed, with a refusal notice saying why when the server sends one.
    let ended = plain.receive_timeout(WAIT);
    assert!(matches!(ended, Err(Error::Closed | Error::Refused { .. })), "{ended:?}");
    assert_eq!(server.receive_timeout(Duration::from_millis(100)).unwrap(), None);
    assert_eq!(server.stats().connections_refused, 1);
    // On the wire: told in plain words, since it speaks no TLS.
    let mut raw = TcpStream::connect(server.local_addr()).unwrap();
    raw.write_all(&on(5).to_bytes()).unwrap();
    assert_eq!(read_until_closed(&mut raw, WAIT), notice(RefusalCause::TlsRequired));
}

/// The ClientHello a real rustls client sends first.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    assert_eq!(&hello[..2], &[0x16, 0x03]);
    hello
}

#[test]
fn a_tls_client_to_a_plain_server_is_refused_not_parsed_as_midi() {
    // Served at once (the program reads), parked for accept(), and behind a token.
    for (config, claim_reads) in [
        (ServerConfig::default(), true),
        (ServerConfig::default(), false),
        (ServerConfig::default().token("pw").unwrap(), true),
    ] {
        let (sender, events) = std::sync::mpsc::channel();
        let sender = std::sync::Mutex::new(sender);
        let config = config.on_event(move |e| {
            let _ = sender.lock().unwrap().send(e.clone());
        });
        let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
        if claim_reads {
            assert_eq!(server.try_receive().unwrap(), None);
        }
        let mut raw = TcpStream::connect(server.local_addr()).unwrap();
        let peer = raw.local_addr().unwrap();
        raw.write_all(&client_hello()).unwrap();
        assert_eq!(read_until_closed(&mut raw, WAIT), notice(RefusalCause::TlsNotOffered));
        let refused = ServerEvent::Refused { peer, cause: RefusalCause::TlsNotOffered };
        let deadline = Instant::now() + WAIT;
        while events.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap() != refused {}
        assert_eq!(server.stats().connections_refused, 1);
        // Nothing made up from the ClientHello's bytes.
        assert_eq!(server.receive_timeout(Duration::from_millis(100)).unwrap(), None);
        assert_eq!(server.accept_timeout(Duration::from_millis(10)).unwrap().map(|p| p.name().to_owned()), None);
    }
    // And a real midisock TLS client is told so: its handshake fails.
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let id = identity();
    match connect_with(("127.0.0.1", server.local_addr().port()), &client_options(&id)) {
        Err(Error::Refused { cause }) => assert_eq!(cause, RefusalCause::TlsNotOffered.as_str()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_tls_handshake_has_a_deadline() {
    let id = identity();
    let timeout = Duration::from_millis(300);
    let server = tls_server(&id, ServerConfig::default().auth_timeout(timeout));
    // Half a ClientHello, then silence.
    let mut stalled = TcpStream::connect(server.local_addr()).unwrap();
    let started = Instant::now();
    stalled.write_all(&client_hello()[..20]).unwrap();
    assert_eq!(read_until_closed(&mut stalled, WAIT), notice(RefusalCause::TooSlow));
    assert!(started.elapsed() >= timeout, "closed after {:?}", started.elapsed());
    // Nothing at all.
    let mut silent = TcpStream::connect(server.local_addr()).unwrap();
    assert_eq!(read_until_closed(&mut silent, WAIT), notice(RefusalCause::TooSlow));
    assert_eq!(server.stats().auth_failures, 2);
}

#[test]
fn a_wrong_token_over_tls_is_told_through_tls() {
    let id = identity();
    let server = tls_server(&id, ServerConfig::default().token("right").unwrap());
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(id.cert.clone()).unwrap();
        roots
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let socket = TcpStream::connect(server.local_addr()).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, socket);
    tls.write_all(b"\xF4wrong\xF7").unwrap();
    let mut plaintext = Vec::new();
    let _ = tls.read_to_end(&mut plaintext);
    assert_eq!(plaintext, notice(RefusalCause::InvalidToken));
    assert_eq!(server.stats().auth_failures, 1);
}

#[test]
fn pem_files_load() {
    let id = identity();
    let dir = std::env::temp_dir().join(format!("midisock-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &id.cert_pem).unwrap();
    std::fs::write(&key, &id.key_pem).unwrap();
    let server = PortServer::bind_with(
        "127.0.0.1:0",
        ServerConfig::default().tls(TlsServer::from_pem_files(&cert, &key).unwrap()),
    )
    .unwrap();
    let options = ConnectOptions::default().tls(TlsClient::with_ca_file(&cert).unwrap());
    let client = connect_with(("localhost", server.local_addr().port()), &options).unwrap();
    client.send(&Message::Start).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Start));
    assert!(matches!(TlsServer::from_pem_files(&key, &key), Err(Error::Tls(_))));
    assert!(matches!(TlsClient::with_ca_file(dir.join("missing.pem")), Err(Error::Tls(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Waits until thread `tid` of this process sleeps in poll (a TLS receive waiting for the socket,
/// without the session lock), so the send that follows overlaps a waiting receive for certain.
fn wait_until_polling(tid: i32) {
    let task = format!("/proc/self/task/{tid}");
    let deadline = Instant::now() + WAIT;
    loop {
        let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
        let sleeping = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('S'));
        let syscall = std::fs::read_to_string(format!("{task}/syscall")).unwrap_or_default();
        let number = syscall.split_whitespace().next().and_then(|n| n.parse::<i64>().ok());
        if sleeping && number.is_some_and(|n| n == libc::SYS_poll || n == libc::SYS_ppoll) {
            return;
        }
        assert!(Instant::now() < deadline, "the receiver never blocked in poll");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_connect_timeout_bounds_the_handshake() {
    // A server that accepts the TCP connection and never answers the ClientHello.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let id = identity();
    let options = client_options(&id).timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = connect_with(("127.0.0.1", listener.local_addr().unwrap().port()), &options).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    // One handshake read waits at most the timeout; well under the WAIT that would mean "forever".
    assert!(started.elapsed() < WAIT, "the handshake took {:?}", started.elapsed());
    drop(listener);
}

#[test]
fn a_lone_0x16_is_judged_with_the_byte_after_it_however_the_stream_is_cut() {
    // 0x16 starts a TLS record, but is also a MIDI data byte (ignored with no status in effect):
    // only the next byte tells them apart. The verdict must not depend on the reads, so each
    // stream is sent whole and cut after its first byte, to a served and to a lobby connection.
    for split in [false, true] {
        for claim_reads in [true, false] {
            let server = PortServer::bind("127.0.0.1:0").unwrap();
            if claim_reads {
                assert_eq!(server.try_receive().unwrap(), None);
            }
            // Stray 0x16, then a note: MIDI.
            let mut raw = TcpStream::connect(server.local_addr()).unwrap();
            let stream = [0x16, 0x90, 60, 64];
            if split {
                raw.write_all(&stream[..1]).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                raw.write_all(&stream[1..]).unwrap();
            } else {
                raw.write_all(&stream).unwrap();
            }
            let note = Message::note_on(0, 60, 64).unwrap();
            if claim_reads {
                assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(note), "split {split}");
            } else {
                let port = server.accept_timeout(WAIT).unwrap().expect("a MIDI client to accept");
                assert_eq!(port.receive_timeout(WAIT).unwrap(), Some(note), "split {split}");
            }
            assert_eq!(server.stats().connections_refused, 0);
            // 0x16 0x03: a TLS record, refused in words.
            let mut tls_like = TcpStream::connect(server.local_addr()).unwrap();
            if split {
                tls_like.write_all(&[0x16]).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                tls_like.write_all(&[0x03, 0x01, 0x00, 0x05]).unwrap();
            } else {
                tls_like.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05]).unwrap();
            }
            assert_eq!(read_until_closed(&mut tls_like, WAIT), notice(RefusalCause::TlsNotOffered), "split {split}");
            assert_eq!(server.stats().connections_refused, 1);
        }
    }
}
