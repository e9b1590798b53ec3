//! A TLS peer that vanishes must never raise SIGPIPE: a C host (Pd, a C program) that does not
//! ignore the signal would be killed by it. Rust test binaries ignore SIGPIPE, so the scenario
//! runs in a child copy of this binary that restores the default action first.

mod support;

use midisock::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use midisock::{connect_with, ConnectOptions, Message, PortServer, ServerConfig, TlsClient, TlsServer};
use std::time::{Duration, Instant};
use support::run_scenario_in_child;

const WAIT: Duration = Duration::from_secs(30);
const CHILD_ENV: &str = "MIDISOCK_SIGPIPE_CHILD";
const SCENARIO: &str = "scenario_in_child_process";

#[test]
fn a_vanished_tls_client_does_not_raise_sigpipe_in_the_server_process() {
    run_scenario_in_child(SCENARIO, CHILD_ENV);
}

/// The scenario; does nothing unless started by the test above as a child process.
#[test]
fn scenario_in_child_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // SAFETY: setting a signal's action to its default at the start of a single-threaded test.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
    let tls = TlsServer::from_der(vec![generated.cert.der().clone()], key).unwrap();
    let server = PortServer::bind_with("127.0.0.1:0", ServerConfig::default().tls(tls)).unwrap();
    // Nobody receives, so the connection waits in the lobby: the server never reads it and
    // learns it is gone only from its writes.
    let ca = tempfile_with(generated.cert.pem().as_bytes());
    let options = ConnectOptions::default().tls(TlsClient::with_ca_file(&ca).unwrap().server_name("localhost"));
    let client = connect_with(("127.0.0.1", server.local_addr().port()), &options).unwrap();
    let deadline = Instant::now() + WAIT;
    while server.client_count() == 0 {
        assert!(Instant::now() < deadline, "client never admitted");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(client);
    // The first write after the close draws a reset; the next one fails with EPIPE, which
    // without MSG_NOSIGNAL raises SIGPIPE and ends this process.
    for _ in 0..50 {
        server.send(&Message::note_on(0, 60, 100).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::remove_file(ca).unwrap();
}

fn tempfile_with(bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("midisock-sigpipe-{}.pem", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}
