//! TLS set up the way users do it: certificates made by `openssl` at test time (into a temporary
//! directory), loaded from PEM files. The usual self-signed certificate works when the client
//! trusts it; a CA-signed chain works; and what fails is explained in words.

use midisock::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use midisock::{connect_with, ConnectOptions, Error, Message, PortServer, ServerConfig, TlsClient, TlsServer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("midisock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// The README's command: a self-signed certificate for localhost and 127.0.0.1.
fn self_signed(dir: &TempDir) {
    openssl(
        &dir.0,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "365",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
    );
}

fn tls_server(cert: &Path, key: &Path) -> PortServer {
    let tls = TlsServer::from_pem_files(cert, key).unwrap();
    PortServer::bind_with("127.0.0.1:0", ServerConfig::default().tls(tls)).unwrap()
}

fn round_trip(server: &PortServer, host: &str, client: TlsClient) -> Result<(), Error> {
    let port = connect_with((host, server.local_addr().port()), &ConnectOptions::default().tls(client))?;
    port.send(&Message::Start)?;
    assert_eq!(server.receive_timeout(WAIT)?, Some(Message::Start));
    Ok(())
}

fn tls_message(result: Result<(), Error>) -> String {
    match result {
        Err(Error::Tls(message)) => message,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn the_usual_openssl_self_signed_certificate_works_when_trusted() {
    let dir = TempDir::new("self-signed");
    self_signed(&dir);
    let server = tls_server(&dir.path("cert.pem"), &dir.path("key.pem"));
    for host in ["localhost", "127.0.0.1"] {
        round_trip(&server, host, TlsClient::with_ca_file(dir.path("cert.pem")).unwrap()).unwrap();
    }
}

#[test]
fn a_pinned_certificate_is_still_checked_for_its_name() {
    let dir = TempDir::new("pinned-name");
    self_signed(&dir);
    let server = tls_server(&dir.path("cert.pem"), &dir.path("key.pem"));
    let client = TlsClient::with_ca_file(dir.path("cert.pem")).unwrap().server_name("example.org");
    let message = tls_message(round_trip(&server, "127.0.0.1", client));
    assert!(message.contains("not valid for the name"), "{message}");
}

#[test]
fn another_self_signed_certificate_is_not_trusted() {
    let dir = TempDir::new("other");
    self_signed(&dir);
    let other = TempDir::new("other-trusted");
    self_signed(&other);
    let server = tls_server(&dir.path("cert.pem"), &dir.path("key.pem"));
    let message =
        tls_message(round_trip(&server, "localhost", TlsClient::with_ca_file(other.path("cert.pem")).unwrap()));
    assert!(message.contains("CA used as end entity"), "{message}");
}

#[test]
fn a_ca_signed_chain_works_and_an_unknown_issuer_is_explained() {
    let dir = TempDir::new("chain");
    openssl(
        &dir.0,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Test CA",
        ],
    );
    openssl(
        &dir.0,
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost"],
    );
    std::fs::write(dir.path("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    openssl(
        &dir.0,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
    );
    let server = tls_server(&dir.path("cert.pem"), &dir.path("key.pem"));
    round_trip(&server, "localhost", TlsClient::with_ca_file(dir.path("ca.pem")).unwrap()).unwrap();
    // Trusting some other CA: the issuer is unknown.
    openssl(
        &dir.0,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Other CA",
        ],
    );
    let message =
        tls_message(round_trip(&server, "localhost", TlsClient::with_ca_file(dir.path("other.pem")).unwrap()));
    assert!(message.contains("not signed by a CA in the trust file"), "{message}");
}

#[test]
fn an_expired_pinned_certificate_is_refused_in_words() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let der: CertificateDer<'static> = cert.der().clone();
    let tls =
        TlsServer::from_der(vec![der.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
            .unwrap();
    let server = PortServer::bind_with("127.0.0.1:0", ServerConfig::default().tls(tls)).unwrap();
    let message = tls_message(round_trip(&server, "localhost", TlsClient::with_ca_der(vec![der]).unwrap()));
    assert!(message.contains("expired"), "{message}");
}
