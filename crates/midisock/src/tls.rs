//! Optional TLS (rustls) for ports and servers, and the record-layer plumbing both share.
//!
//! With TLS the MIDI byte stream travels inside TLS records; nothing else changes (a mido peer,
//! which has no TLS, cannot connect to a TLS server). Certificates are PEM files; a client trusts
//! the CA (or self-signed certificate) it is given, and checks the server's name against the host
//! it connects to unless told another name.
//!
//! A self-signed certificate made the usual way (`openssl req -x509 ...`) is marked as a CA
//! (`CA:TRUE`), and standard path validation refuses a CA certificate as the server's own
//! ("CA used as end entity"). A client given such a certificate as its trust file therefore
//! *pins* it: the server must present exactly that certificate, still within its validity dates
//! and for the name connected to. Certificates that are not in the trust file are validated the
//! standard way.

use crate::error::{Error, Result};
use crate::refusal;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, Connection, DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// TLS for a server: its certificate chain and private key.
#[derive(Clone)]
pub struct TlsServer {
    config: Arc<rustls::ServerConfig>,
}

/// TLS for a client: the roots it trusts and, optionally, the name to check.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(&format!("cannot read certificates from {}", path.display()), e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&format!("bad certificate in {}", path.display()), e))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}

impl TlsServer {
    /// Loads a PEM certificate chain (leaf first) and its PEM private key.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, private_key: impl AsRef<Path>) -> Result<TlsServer> {
        let certs = read_certs(cert_chain.as_ref())?;
        let key = PrivateKeyDer::from_pem_file(private_key.as_ref())
            .map_err(|e| tls_error(&format!("cannot read a private key from {}", private_key.as_ref().display()), e))?;
        TlsServer::from_der(certs, key)
    }

    /// From DER certificates (leaf first) and key, e.g. generated in memory.
    pub fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        private_key: PrivateKeyDer<'static>,
    ) -> Result<TlsServer> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS setup", e))?
            .with_no_client_auth()
            .with_single_cert(cert_chain, private_key)
            .map_err(|e| tls_error("certificate and key do not fit together", e))?;
        Ok(TlsServer { config: Arc::new(config) })
    }

    /// From a rustls configuration built by the caller (client certificates, ALPN, ...).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> TlsServer {
        TlsServer { config }
    }

    pub(crate) fn accept(&self) -> Result<Connection> {
        let conn = rustls::ServerConnection::new(Arc::clone(&self.config)).map_err(|e| tls_error("TLS session", e))?;
        Ok(Connection::Server(conn))
    }
}

impl TlsClient {
    /// Trusts the certificates in a PEM file: a CA, or the server's self-signed certificate.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<TlsClient> {
        TlsClient::with_ca_der(read_certs(path.as_ref())?)
    }

    /// Trusts the given DER certificates: CAs, or servers' own self-signed certificates (pinned:
    /// see the module docs).
    pub fn with_ca_der(roots: Vec<CertificateDer<'static>>) -> Result<TlsClient> {
        let mut store = rustls::RootCertStore::empty();
        for root in &roots {
            store.add(root.clone()).map_err(|e| tls_error("unusable CA certificate", e))?;
        }
        let provider = provider();
        let standard = WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
            .build()
            .map_err(|e| tls_error("unusable CA certificates", e))?;
        let verifier = PinningVerifier { standard, pinned: roots };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS setup", e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(TlsClient { config: Arc::new(config), server_name: None })
    }

    /// From a rustls configuration built by the caller.
    pub fn from_rustls(config: Arc<rustls::ClientConfig>) -> TlsClient {
        TlsClient { config, server_name: None }
    }

    /// Checks the server's certificate against `name` instead of the host connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsClient {
        self.server_name = Some(name.into());
        self
    }

    /// Runs the handshake over a connected blocking stream.
    pub(crate) fn handshake(&self, host: &str, stream: &mut std::net::TcpStream) -> Result<Connection> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_owned()).map_err(|e| tls_error(&format!("server name {name:?}"), e))?;
        let mut conn = Connection::Client(
            rustls::ClientConnection::new(Arc::clone(&self.config), name).map_err(|e| tls_error("TLS session", e))?,
        );
        // The ClientHello first; then a look at the reply's first byte: a server that refuses
        // the connection answers with a notice in plain bytes (see `crate::refusal`), not TLS.
        while conn.wants_write() {
            conn.write_tls(&mut NoSignal(&mut *stream)).map_err(|e| tls_error("TLS handshake failed", e))?;
        }
        let mut first = [0u8];
        if matches!(stream.peek(&mut first), Ok(1)) && refusal::scan(&first) == refusal::NoticeScan::NeedMore {
            return Err(read_refusal(stream));
        }
        while conn.is_handshaking() {
            conn.complete_io(&mut NoSignal(&mut *stream)).map_err(|e| handshake_error(&e))?;
        }
        Ok(conn)
    }
}

/// Reads a refusal notice that came instead of the server's TLS reply.
fn read_refusal(stream: &mut std::net::TcpStream) -> Error {
    let not_tls = || Error::Tls("TLS handshake failed: the server answered in something other than TLS".into());
    let mut received = Vec::with_capacity(refusal::MAX_NOTICE_LEN);
    let mut byte = [0u8];
    while received.len() < refusal::MAX_NOTICE_LEN {
        match stream.read(&mut byte) {
            Ok(1) => received.push(byte[0]),
            _ => return not_tls(),
        }
        match refusal::scan(&received) {
            refusal::NoticeScan::Refused { cause, .. } => return Error::Refused { cause },
            refusal::NoticeScan::NotANotice => return not_tls(),
            refusal::NoticeScan::NeedMore => {}
        }
    }
    not_tls()
}

/// Standard validation, except that a certificate in the trust file that the server presents
/// as its own is accepted even though it is marked as a CA (a self-signed certificate pinned).
#[derive(Debug)]
struct PinningVerifier {
    standard: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict = self.standard.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match verdict {
            Err(e) if is_ca_used_as_end_entity(&e) && self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) => {
                // NOTE: the validity dates were checked already: webpki checks them before the CA
                // flag, so reaching this error means they passed. The name is checked here.
                let cert = webpki::EndEntityCert::try_from(end_entity)
                    .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
                cert.verify_is_valid_for_subject_name(server_name)
                    .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::NotValidForName))?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.standard.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.standard.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.standard.supported_verify_schemes()
    }
}

fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
        }
        _ => false,
    }
}

/// A failed client handshake, explained: certificate problems in words a user can act on.
fn handshake_error(e: &io::Error) -> Error {
    let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let Some(rustls::Error::InvalidCertificate(problem)) = tls else {
        return tls_error("TLS handshake failed", e);
    };
    let words = match problem {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the server's certificate is not valid for the name connected to (connect by a name or address \
             the certificate lists in its subjectAltName, or set the name to check)"
                .to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (check the clocks)".to_owned()
        }
        CertificateError::UnknownIssuer => "the server's certificate is not signed by a CA in the trust file, and is \
                                            not a certificate in it"
            .to_owned(),
        CertificateError::BadSignature => "the server's certificate has a bad signature".to_owned(),
        other if is_ca_used_as_end_entity(&rustls::Error::InvalidCertificate(other.clone())) => {
            "the server presented a CA certificate as its own, and it is not the one in the trust file (a CA used \
             as end entity)"
                .to_owned()
        }
        other => format!("the server's certificate was rejected: {other}"),
    };
    Error::Tls(format!("TLS handshake failed: {words}"))
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsServer { .. }")
    }
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl PartialEq for TlsServer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsServer {}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for TlsClient {}

/// A socket that writes one buffer at a time, with `send(MSG_NOSIGNAL)` (std's and mio's
/// `TcpStream::write` on Linux); reads are plain reads. Every TLS write in this crate goes
/// through it.
///
/// NOTE: rustls writes its records with `write_vectored`, which std implements with `writev`:
/// no MSG_NOSIGNAL, so a peer that has gone raises SIGPIPE, which kills a C host program (Pd, a
/// C application) that does not ignore it. Hiding `write_vectored` makes every record go out
/// through `write`.
struct NoSignal<S>(S);

impl<S: Read> Read for NoSignal<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for NoSignal<S> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Writes TLS records the connection has ready, until it has none or the socket would block.
pub(crate) fn flush_records(conn: &mut Connection, socket: impl Write) -> io::Result<()> {
    let mut socket = NoSignal(socket);
    while conn.wants_write() {
        match conn.write_tls(&mut socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads plaintext, doing at most one socket read.
///
/// `Ok(Some(n))`: `n` bytes of plaintext, or the end of the stream when `n` is 0.
/// `Ok(None)`: the socket gave records but no complete plaintext yet: call again (a blocking
/// caller should wait for readability first).
/// `Err(WouldBlock)`: a non-blocking socket has nothing now.
/// Records the peer's records call for (handshake replies, alerts) are written on the way.
pub(crate) fn read_plaintext(
    conn: &mut Connection,
    socket: impl Read + Write,
    buf: &mut [u8],
) -> io::Result<Option<usize>> {
    let mut socket = NoSignal(socket);
    if let Some(n) = buffered_plaintext(conn, buf)? {
        return Ok(Some(n));
    }
    let got = conn.read_tls(&mut socket)?;
    let processed = conn.process_new_packets();
    let flushed = flush_records(conn, &mut socket);
    processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    flushed?;
    match buffered_plaintext(conn, buf)? {
        Some(n) => Ok(Some(n)),
        // TCP end of stream with nothing left to decrypt.
        None if got == 0 => Ok(Some(0)),
        None => Ok(None),
    }
}

/// Plaintext rustls already holds, without touching the socket: `None` when it has none.
pub(crate) fn buffered_plaintext(conn: &mut Connection, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match conn.reader().read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        // The peer closed without close_notify: for a MIDI stream that is just the end.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
        Err(e) => Err(e),
    }
}
