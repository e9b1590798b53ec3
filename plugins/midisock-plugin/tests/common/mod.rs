//! Shared by the host tests: where the bundles are, the plugin state that points the plugin at a
//! test server, and bounded waiting.
#![allow(dead_code)] // each test binary uses part of it

pub mod scenarios;
pub use scenarios::HostRig;

use midisock::{Message, PortServer, ServerConfig, TlsServer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Every wait in these tests ends after this long (a generous bound for a busy 2-core machine;
/// a passing run takes milliseconds per step).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// `<target>/bundled`, built by `cargo xtask bundle midisock-plugin` (which `cargo xtask test` runs
/// first). Honours CARGO_TARGET_DIR like cargo does.
pub fn bundled_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    };
    target.join("bundled")
}

pub fn bundle(name: &str) -> PathBuf {
    let path = bundled_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo xtask bundle midisock-plugin` (cargo xtask test does)",
        path.display()
    );
    path
}

/// The plugin state a DAW would restore from a project, with the address set to `address`: the
/// same JSON nice-plug writes (`fields` holds each persisted field as JSON text).
pub fn state_for(address: &str) -> Vec<u8> {
    let address_json = format!("{address:?}");
    format!(r#"{{"version":"0.1.0","params":{{}},"fields":{{"address":{:?},"mode":"\"Client\""}}}}"#, address_json)
        .into_bytes()
}

/// The plugin state of a client with protections: `protection` is the persisted `Protection`
/// as JSON (e.g. `{"token":"s3cret","tls_ca":"/path/ca.pem"}`).
pub fn state_with_protection(address: &str, protection: &str) -> Vec<u8> {
    format!(
        r#"{{"version":"0.1.0","params":{{}},"fields":{{"address":{:?},"mode":"\"Client\"","protection":{:?}}}}}"#,
        format!("{address:?}"),
        protection
    )
    .into_bytes()
}

/// A loopback server that requires `token` and speaks TLS with a fresh self-signed certificate
/// for "localhost", and the state of a plugin that presents `client_token` and trusts that
/// certificate (its PEM file lives in a temporary folder, removed on drop).
pub struct ProtectedServer {
    pub server: PortServer,
    pub plugin_state: Vec<u8>,
    dir: PathBuf,
}

impl ProtectedServer {
    pub fn new(token: &str, client_token: &str) -> ProtectedServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let dir = std::env::temp_dir().join(format!(
            "midisock-plugin-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).expect("write the certificate");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write the key");
        let config = ServerConfig::default()
            .token(token)
            .expect("token")
            .tls(TlsServer::from_pem_files(&cert, &key).expect("TLS server"));
        let server = PortServer::bind_with("127.0.0.1:0", config).expect("bind a protected loopback server");
        // The plugin checks the certificate against "localhost", not the 127.0.0.1 it connects to.
        let protection = format!(
            r#"{{"token":{client_token:?},"tls_ca":{:?},"tls_server_name":"localhost"}}"#,
            cert.display().to_string()
        );
        let plugin_state = state_with_protection(&server.local_addr().to_string(), &protection);
        ProtectedServer { server, plugin_state, dir }
    }
}

impl Drop for ProtectedServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback server on a free port.
pub fn server() -> PortServer {
    PortServer::bind("127.0.0.1:0").expect("bind a loopback server")
}

/// Binds a server on `port` again after the previous one closed (retrying while the port is
/// still held by the old socket).
pub fn rebind(port: u16) -> PortServer {
    let start = Instant::now();
    loop {
        match PortServer::bind(("127.0.0.1", port)) {
            Ok(server) => return server,
            Err(e) if start.elapsed() < DEADLINE => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot bind 127.0.0.1:{port} again: {e}"),
        }
    }
}

/// Receives from `server` until `want` messages arrived (or the deadline passes: panics with
/// what came).
pub fn receive_n(server: &PortServer, want: usize) -> Vec<Message> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want {
        let left = DEADLINE.checked_sub(start.elapsed()).unwrap_or_else(|| panic!("timed out; got {got:?}"));
        if let Some(m) = server.receive_timeout(left.min(Duration::from_millis(100))).expect("server receive") {
            got.push(m);
        }
    }
    got
}

/// The raw bytes of `m`.
pub fn bytes(m: &Message) -> Vec<u8> {
    m.to_bytes()
}

/// The jitter buffer, end to end: the network's messages reach the plugin through a proxy that
/// holds each chunk 5–25 ms (in order, like TCP over a jittery link), and the plugin (with a
/// fixed 40 ms buffer, set in its saved state) must put the notes into the track with the
/// spacing they were sent with, to within a millisecond, instead of the network's ±10 ms.
///
/// - [`JitterRun::client`]: the plugin is a client; a `PortServer` sends.
/// - [`JitterRun::server`]: the plugin is a server; a midisock client sends.
pub struct JitterRun {
    /// The test's end of the link.
    pub sender: JitterSender,
    /// The state that sets the plugin's mode, address and buffer.
    pub state: Vec<u8>,
    proxy: midisock_testkit::JitterProxy,
}

pub enum JitterSender {
    /// The plugin connects (through the proxy) to this server.
    Server(PortServer),
    /// The plugin listens on `plugin`; the client connects through the proxy once it does.
    Client { plugin: std::net::SocketAddr, proxy: std::net::SocketAddr, port: Option<midisock::SocketPort> },
}

const JITTER: midisock_testkit::DelayDistribution = midisock_testkit::DelayDistribution::Uniform {
    centre: Duration::from_millis(15),
    spread: Duration::from_millis(10),
};
const BUFFER: &str = r#"{"Fixed":{"ms":40}}"#;

fn jitter_state(mode: &str, address: &str) -> Vec<u8> {
    format!(
        r#"{{"version":"0.1.0","params":{{}},"fields":{{"address":{:?},"mode":{:?},"jitter_buffer":{:?}}}}}"#,
        format!("{address:?}"),
        format!("{mode:?}"),
        BUFFER
    )
    .into_bytes()
}

impl JitterRun {
    /// 10 ms blocks at 48 kHz.
    pub const FRAMES: u32 = 480;
    const NOTES: u8 = 12;
    const SPACING: Duration = Duration::from_millis(15);

    /// The plugin as a client of a server that sends.
    pub fn client() -> JitterRun {
        use midisock_testkit::{DelayDistribution, JitterProxy, ProxyConfig};
        let server = server();
        let mut config = ProxyConfig::new(server.local_addr(), DelayDistribution::Fixed(Duration::ZERO));
        config.to_client = JITTER;
        let proxy = JitterProxy::start(config).expect("start the jitter proxy");
        let state = jitter_state("Client", &proxy.local_addr().to_string());
        JitterRun { sender: JitterSender::Server(server), state, proxy }
    }

    /// The plugin as a server; a client sends to it.
    pub fn server() -> JitterRun {
        use midisock_testkit::{JitterProxy, ProxyConfig};
        // A port nobody listens on now, for the plugin to listen on.
        let plugin = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let proxy = JitterProxy::start(ProxyConfig::new(plugin, JITTER)).expect("start the jitter proxy");
        let state = jitter_state("Server", &plugin.to_string());
        JitterRun { sender: JitterSender::Client { plugin, proxy: proxy.local_addr(), port: None }, state, proxy }
    }

    /// Processes blocks (`process`, as in [`JitterRun::check`]) until the plugin's peer is
    /// connected: the plugin has connected to the server, or the client to the plugin.
    pub fn connect(&mut self, mut process: impl FnMut() -> Vec<u32>) {
        let start = Instant::now();
        loop {
            match &mut self.sender {
                JitterSender::Server(server) if server.client_count() == 1 => return,
                JitterSender::Client { port: Some(_), .. } => return,
                JitterSender::Client { plugin, proxy, port } => {
                    // The proxy accepts at once and only then connects to the plugin: connect
                    // through it once the plugin listens (this probe is a client that leaves).
                    if std::net::TcpStream::connect(*plugin).is_ok() {
                        *port = Some(midisock::connect(*proxy).expect("connect through the proxy"));
                    }
                }
                JitterSender::Server(_) => {}
            }
            process();
            assert!(start.elapsed() < DEADLINE, "the plugin and its peer never connected");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn send(&self, message: &Message) {
        match &self.sender {
            JitterSender::Server(server) => server.send(message).unwrap(),
            JitterSender::Client { port: Some(port), .. } => port.send(message).unwrap(),
            JitterSender::Client { port: None, .. } => panic!("not connected"),
        }
    }

    /// Runs blocks in real time (block k at start + k × 10 ms; `process` runs one and returns the
    /// sample offsets of the note-ons that came out), sends the notes at measured instants after
    /// a warm-up, and checks the spacing.
    pub fn check(&self, mut process: impl FnMut() -> Vec<u32>) {
        let start = Instant::now();
        let mut block = 0u64;
        let mut sent_at = Vec::new(); // midpoint of each send call, ns since start
        let mut out_at = Vec::new(); // absolute sample of each note-on out of the plugin
                                     // The first 600 ms warm up: the server reads the plugin's stamp request, and the buffer
                                     // sees a few quarter-second windows of arrivals for its estimate of the link's floor.
        let warm_up = Duration::from_millis(600);
        let mut next_send = warm_up;
        while out_at.len() < usize::from(Self::NOTES) {
            let now = start.elapsed();
            assert!(now < DEADLINE, "timed out: {} of {} notes came out", out_at.len(), Self::NOTES);
            if now < warm_up {
                self.send(&Message::control_change(0, 1, 0).unwrap());
            }
            if now >= next_send && sent_at.len() < usize::from(Self::NOTES) {
                let before = start.elapsed();
                self.send(&Message::note_on(0, 60 + sent_at.len() as u8, 100).unwrap());
                sent_at.push(((before + start.elapsed()) / 2).as_nanos() as f64);
                next_send += Self::SPACING;
            }
            for offset in process() {
                out_at.push((block * u64::from(Self::FRAMES) + u64::from(offset)) as f64);
            }
            block += 1;
            if let Some(wait) = Duration::from_millis(10 * block).checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        assert!(self.proxy.stats().chunks > 0, "the messages did not go through the proxy");
        // Spacing error of each consecutive pair, in ms.
        let errors: Vec<f64> = (1..usize::from(Self::NOTES))
            .map(|i| {
                let sent = (sent_at[i] - sent_at[i - 1]) / 1e6;
                let out = (out_at[i] - out_at[i - 1]) / 48.0;
                (out - sent).abs()
            })
            .collect();
        let close = errors.iter().filter(|&&e| e <= 1.0).count();
        let mut sorted = errors.clone();
        sorted.sort_by(f64::total_cmp);
        // Without the buffer the proxy's holds move nearly every note by milliseconds (up to 20).
        // With it, a thread held up for a whole block under heavy CPU load can still miss its
        // block now and then: each such note spoils two spacings, so two such notes are allowed.
        assert!(
            close + 4 >= errors.len() && sorted[errors.len() / 2] <= 1.0,
            "spacing errors (ms) out of the plugin: {errors:.2?}"
        );
        eprintln!("spacing errors (ms): {errors:.2?}");
    }
}
