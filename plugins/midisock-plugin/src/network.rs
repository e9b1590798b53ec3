//! The network thread ("midisock-plugin-net"): owns the socket (client) or the server, the
//! reconnection with backoff, the wall clock ([`crate::timing`]) and the notes the plugin holds
//! down on the network. It talks to the audio thread only through two lock-free channels of small
//! `Copy` events with a sysex byte lane ([`crate::ring`]), and never waits on the audio thread.

use crate::event::{Midi, ToNetwork, ToTrack, SYSEX_BUFFER_LEN};
use crate::ring::{Receiver, Sender};
use crate::shared::{JitterBuffer, LinkState, Mode, PeerPlayout, Protection, Setting, Status};
use crate::timing::SampleClock;
use midisock::{
    monotonic_ns, ConnectOptions, HeldNotes, Message, PortServer, Received, ServerConfig, SocketPort, TlsClient,
    TlsServer,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the thread waits between two looks at the ring from the audio thread.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// How long a client waits for a server to accept (the thread is busy meanwhile; events from the
/// track are dropped while there is no connection anyway).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The first wait after a failed attempt or a lost connection; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(50);
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A link counts as working (problems cleared, backoff reset) once it has stayed up this long: a
/// server that accepts and then refuses (wrong token, not on the allowlist) must not look fixed,
/// nor be reconnected to at the shortest backoff forever.
pub const STABLE_AFTER: Duration = Duration::from_millis(1000);
/// Messages played out by the jitter buffer go into the track this much after their played-out
/// time (see [`Worker::deliver`]).
pub const PLAYOUT_LEAD_NS: u64 = 2_000_000;
/// How often the jitter buffers' stats are copied for the GUI.
const PLAYOUT_STATS_INTERVAL: Duration = Duration::from_millis(100);
/// Events from the track waiting for their send time; beyond this they are sent at once.
const MAX_SCHEDULED: usize = 4096;

/// The settings the network thread follows (shared with the plugin's persisted parameters).
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub mode: Setting<Mode>,
    pub address: Setting<String>,
    pub protection: Setting<Protection>,
    pub jitter_buffer: Setting<JitterBuffer>,
    /// Bumped on every change of `mode`, `address`, `protection` or `jitter_buffer`.
    pub generation: Arc<AtomicU64>,
}

/// The running network thread; dropping it stops the thread (sending note-offs for every note the
/// plugin holds down on the network first) and waits for it.
#[derive(Debug)]
pub struct NetworkThread {
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NetworkThread {
    pub fn spawn(
        settings: NetworkSettings,
        status: Arc<Status>,
        from_audio: Receiver<ToNetwork>,
        to_audio: Sender<ToTrack>,
    ) -> std::io::Result<NetworkThread> {
        let quit = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            settings,
            status,
            from_audio,
            to_audio,
            quit: Arc::clone(&quit),
            link: Link::Down,
            up_since: None,
            seen_generation: u64::MAX,
            retry_at: Instant::now(),
            backoff: MIN_BACKOFF,
            clock: SampleClock::default(),
            scheduled: VecDeque::new(),
            held_on_network: HeldNotes::default(),
            release_received_pending: false,
            playout_published_at: Instant::now(),
        };
        let thread = std::thread::Builder::new().name("midisock-plugin-net".into()).spawn(move || worker.run())?;
        Ok(NetworkThread { quit, thread: Some(thread) })
    }
}

impl Drop for NetworkThread {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Link {
    Down,
    Client(SocketPort),
    Server(PortServer),
}

struct Worker {
    settings: NetworkSettings,
    status: Arc<Status>,
    from_audio: Receiver<ToNetwork>,
    to_audio: Sender<ToTrack>,
    quit: Arc<AtomicBool>,
    link: Link,
    /// When the link came up; `None` when down or once it counts as stable.
    up_since: Option<Instant>,
    seen_generation: u64,
    retry_at: Instant,
    backoff: Duration,
    clock: SampleClock,
    /// Track events and their send time (wall ns), in order.
    scheduled: VecDeque<(u64, Message)>,
    /// Notes this plugin has sent to the network and not released.
    held_on_network: HeldNotes,
    /// A ReleaseReceived did not fit in the ring: retry.
    release_received_pending: bool,
    /// When the jitter buffers' stats were last copied for the GUI.
    playout_published_at: Instant,
}

impl Worker {
    fn run(mut self) {
        while !self.quit.load(Ordering::Acquire) {
            let generation = self.settings.generation.load(Ordering::Acquire);
            if generation != self.seen_generation {
                self.seen_generation = generation;
                self.tear_down();
                // New settings: the old ones' problems are no longer news.
                self.status.clear_problem();
                self.retry_at = Instant::now();
                self.backoff = MIN_BACKOFF;
            }
            if self.up_since.is_some_and(|since| since.elapsed() >= STABLE_AFTER) {
                self.up_since = None;
                self.status.clear_problem();
                self.backoff = MIN_BACKOFF;
            }
            if matches!(self.link, Link::Down) && Instant::now() >= self.retry_at {
                self.open();
            }
            self.drain_audio();
            self.send_due();
            self.flush_release_received();
            self.publish_playout();
            self.wait_and_receive();
        }
        self.tear_down();
        self.status.set_state(LinkState::Idle);
    }

    /// Connects (client) or binds (server) with the current settings.
    fn open(&mut self) {
        let mode = self.settings.mode.get();
        let address = self.settings.address.get();
        let protection = self.settings.protection.get();
        let jitter_buffer = self.settings.jitter_buffer.get();
        let result = match mode {
            Mode::Client => {
                self.status.set_state(LinkState::Connecting);
                connect_options(&protection, jitter_buffer)
                    .and_then(|options| midisock::connect_with(address.as_str(), &options))
                    .map(Link::Client)
            }
            Mode::Server => server_config(&protection, jitter_buffer)
                .and_then(|config| PortServer::bind_with(address.as_str(), config))
                .map(Link::Server),
        };
        match result {
            Ok(link) => {
                self.status.set_state(match link {
                    Link::Server(_) => LinkState::Listening,
                    _ => LinkState::Connected,
                });
                self.status.peers.store(usize::from(matches!(link, Link::Client(_))), Ordering::Release);
                self.link = link;
                self.up_since = Some(Instant::now());
            }
            Err(e) => {
                self.status.set_attempt_error(reason_first(&e));
                self.status.failed_attempts.fetch_add(1, Ordering::AcqRel);
                self.retry_later();
            }
        }
    }

    /// Copies the jitter buffers' stats for the GUI, a few times a second.
    fn publish_playout(&mut self) {
        if self.playout_published_at.elapsed() < PLAYOUT_STATS_INTERVAL {
            return;
        }
        self.playout_published_at = Instant::now();
        match &self.link {
            Link::Down => self.status.set_playout([]),
            Link::Client(port) => {
                self.status.set_playout(port.playout_stats().map(|stats| PeerPlayout { peer: None, stats }))
            }
            Link::Server(server) => self.status.set_playout(
                server.playout_stats().into_iter().map(|(peer, stats)| PeerPlayout { peer: Some(peer), stats }),
            ),
        }
    }

    /// Schedules the next attempt with exponential backoff.
    fn retry_later(&mut self) {
        self.status.set_state(LinkState::Retrying);
        self.status.peers.store(0, Ordering::Release);
        self.retry_at = Instant::now() + self.backoff;
        self.status.retry_at_ns.store(monotonic_ns() + self.backoff.as_nanos() as u64, Ordering::Release);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The connection broke: the notes the network put into the track must stop, and the notes we
    /// held on the far side died with it (a midisock server releases them itself).
    fn lost(&mut self, error: &midisock::Error) {
        self.link = Link::Down;
        self.status.set_playout([]);
        self.up_since = None;
        self.held_on_network = HeldNotes::default();
        self.scheduled.clear();
        self.release_received_pending = true;
        self.flush_release_received();
        self.status.set_lost(if error.is_closed() {
            "the server closed the connection".to_string()
        } else {
            reason_first(error)
        });
        if matches!(error, midisock::Error::Refused { .. }) {
            // Asking again at once gets the same answer: wait the longest.
            self.backoff = MAX_BACKOFF;
        }
        self.retry_later();
    }

    /// Closes the link on purpose (settings changed, plugin removed): note-offs for everything we
    /// hold on the network go out first, and the track releases what the network holds there.
    fn tear_down(&mut self) {
        self.release_sent();
        match std::mem::replace(&mut self.link, Link::Down) {
            Link::Down => return,
            Link::Client(port) => port.close(),
            Link::Server(server) => server.close(),
        }
        self.up_since = None;
        self.scheduled.clear();
        self.release_received_pending = true;
        self.flush_release_received();
        self.status.peers.store(0, Ordering::Release);
        self.status.set_playout([]);
    }

    fn drain_audio(&mut self) {
        let now = monotonic_ns();
        let mut buffer = [0; SYSEX_BUFFER_LEN];
        while let Some((event, sysex)) = self.from_audio.pop_into(&mut buffer) {
            match event {
                ToNetwork::Block { start, len, sample_rate } => self.clock.observe_block(start, len, sample_rate, now),
                ToNetwork::Midi { sample, midi } => {
                    let Some(message) = midi.to_message(sysex).filter(|_| !matches!(self.link, Link::Down)) else {
                        self.status.count_dropped(1);
                        continue;
                    };
                    if self.scheduled.len() >= MAX_SCHEDULED {
                        // Should never happen (the host would have to run far ahead of real
                        // time); sending early beats dropping a note-off.
                        self.scheduled.push_back((0, message));
                    } else {
                        let due = self.clock.wall_time_of(sample).unwrap_or(0);
                        self.scheduled.push_back((due, message));
                    }
                }
                ToNetwork::ReleaseSent => {
                    // Everything scheduled goes first so the note-offs come last.
                    while let Some((_, message)) = self.scheduled.pop_front() {
                        self.send(&message);
                    }
                    self.release_sent();
                }
            }
        }
    }

    fn send_due(&mut self) {
        let now = monotonic_ns();
        while let Some(&(due, _)) = self.scheduled.front() {
            if due > now {
                break;
            }
            if let Some((_, message)) = self.scheduled.pop_front() {
                self.send(&message);
            }
        }
    }

    fn send(&mut self, message: &Message) {
        let result = match &self.link {
            Link::Down => {
                self.status.count_dropped(1);
                return;
            }
            Link::Client(port) => port.send(message),
            Link::Server(server) => server.send(message),
        };
        match result {
            Ok(()) => {
                self.held_on_network.observe(message);
                self.status.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.lost(&e),
        }
    }

    /// Note-offs (and sustain-offs) for every note this plugin holds down on the network.
    fn release_sent(&mut self) {
        let mut releases = Vec::new();
        self.held_on_network.release_all(|m| releases.push(m));
        if releases.is_empty() {
            return;
        }
        let result = match &self.link {
            Link::Down => return,
            Link::Client(port) => port.send_all(&releases),
            Link::Server(server) => server.send_all(&releases),
        };
        match result {
            Ok(()) => {
                self.status.sent.fetch_add(releases.len() as u64, Ordering::Relaxed);
            }
            Err(e) => self.lost(&e),
        }
    }

    fn flush_release_received(&mut self) {
        if self.release_received_pending {
            let sample = self.clock.target_sample(monotonic_ns(), monotonic_ns());
            if self.to_audio.push(ToTrack::ReleaseReceived { sample }, &[]).is_ok() {
                self.release_received_pending = false;
            }
        }
    }

    /// Waits for a message from the network until the next scheduled send (at most
    /// [`POLL_INTERVAL`]), and takes every message that has arrived.
    fn wait_and_receive(&mut self) {
        let now = monotonic_ns();
        let timeout = match self.scheduled.front() {
            Some(&(due, _)) => Duration::from_nanos(due.saturating_sub(now)).min(POLL_INTERVAL),
            None => POLL_INTERVAL,
        };
        let first = match &self.link {
            Link::Down => {
                std::thread::sleep(timeout);
                return;
            }
            Link::Client(port) => port.receive_timeout_stamped(timeout),
            Link::Server(server) => {
                self.status.peers.store(server.client_count(), Ordering::Release);
                let stats = server.stats();
                self.status.refused_clients.store(stats.connections_refused + stats.auth_failures, Ordering::Relaxed);
                server.receive_timeout_stamped(timeout)
            }
        };
        let mut next = first;
        loop {
            match next {
                Ok(Some(received)) => self.deliver(received),
                Ok(None) => return,
                Err(e) => {
                    self.lost(&e);
                    return;
                }
            }
            next = match &self.link {
                Link::Down => return,
                Link::Client(port) => port.try_receive_stamped(),
                Link::Server(server) => server.try_receive_stamped(),
            };
        }
    }

    /// Hands a message from the network to the audio thread, stamped with its play sample.
    fn deliver(&mut self, received: Received) {
        self.status.received.fetch_add(1, Ordering::Relaxed);
        let mut buffer = [0; SYSEX_BUFFER_LEN];
        let Some((midi, sysex)) = Midi::encode(&received.message, &mut buffer) else {
            self.status.count_dropped(1);
            return;
        };
        // A played-out message goes into the next block at the offset of its played-out time, so
        // it must reach the audio thread before that block starts: between 0 and one block
        // after its time, depending on where in a block it falls. The lead keeps a late wake-up
        // of this thread from missing the block (at the cost of that much latency).
        let lead = if received.sender_ns.is_some() { PLAYOUT_LEAD_NS } else { 0 };
        let sample = self.clock.target_sample(received.timestamp_ns + lead, monotonic_ns());
        if self.to_audio.push(ToTrack::Midi { sample, midi }, sysex).is_err() {
            self.status.count_dropped(1);
        }
    }
}

/// A client's options from the GUI's protections and jitter buffer: the same core calls as the
/// CLI's `--token`, `--tls-ca`, `--tls-name` and `--jitter-buffer`.
pub fn connect_options(protection: &Protection, jitter_buffer: JitterBuffer) -> midisock::Result<ConnectOptions> {
    let mut options = ConnectOptions::default().timeout(CONNECT_TIMEOUT);
    if let Some(mode) = jitter_buffer.delay_mode() {
        options = options.jitter_buffer(mode);
    }
    // The token is taken as typed (spaces are valid token characters); the core checks it.
    if !protection.token.is_empty() {
        options = options.token(protection.token.as_str());
    }
    let ca = protection.tls_ca.trim();
    if !ca.is_empty() {
        let mut tls = TlsClient::with_ca_file(ca)?;
        let name = protection.tls_server_name.trim();
        if !name.is_empty() {
            tls = tls.server_name(name);
        }
        options = options.tls(tls);
    }
    Ok(options)
}

/// A server's configuration from the GUI's protections and jitter buffer: the same core calls as
/// the CLI's `--token`, `--tls-cert`/`--tls-key`, `--allow` and `--jitter-buffer`.
pub fn server_config(protection: &Protection, jitter_buffer: JitterBuffer) -> midisock::Result<ServerConfig> {
    let mut config = ServerConfig::default();
    if let Some(mode) = jitter_buffer.delay_mode() {
        config = config.jitter_buffer(mode);
    }
    if !protection.token.is_empty() {
        config = config.token(protection.token.as_str())?;
    }
    match (protection.tls_cert.trim(), protection.tls_key.trim()) {
        ("", "") => {}
        ("", _) => return Err(midisock::Error::Tls("a key without a certificate: set both, or neither".into())),
        (_, "") => return Err(midisock::Error::Tls("a certificate without its key: set both, or neither".into())),
        (cert, key) => config = config.tls(TlsServer::from_pem_files(cert, key)?),
    }
    for entry in protection.allow_entries() {
        config = config.allow(entry)?;
    }
    Ok(config)
}

/// An error as the GUI shows it: the reason first, then what it concerns, so the part that matters
/// is read first and survives wrapping (the core's text puts the address first, which can be long).
pub fn reason_first(error: &midisock::Error) -> String {
    use midisock::Error;
    match error {
        Error::AddressSyntax { address, reason } => format!("{reason}: invalid address {address:?}"),
        Error::Resolve { host, source } => format!("{source}: cannot resolve host {host:?}"),
        Error::Connect { address, source } => format!("{source}: cannot connect to {address}"),
        Error::Bind { address, source } => format!("{source}: cannot listen on {address}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_protection_is_plain_tcp_without_a_token() {
        let options = connect_options(&Protection::default(), JitterBuffer::Off).unwrap();
        assert_eq!(options.token, None);
        assert!(options.tls.is_none());
        assert_eq!(options.timeout, Some(CONNECT_TIMEOUT));
        let config = server_config(&Protection::default(), JitterBuffer::Off).unwrap();
        assert!(config.token.is_none() && config.tls.is_none() && config.allow.is_empty());
    }

    #[test]
    fn the_allowlist_takes_commas_and_spaces_and_rejects_nonsense() {
        let protection = Protection { allow: " 192.168.1.0/24,::1  10.0.0.7 ".into(), ..Protection::default() };
        let config = server_config(&protection, JitterBuffer::Off).unwrap();
        assert_eq!(config.allow.len(), 3);
        assert!(config.allows("10.0.0.7".parse().unwrap()));
        assert!(!config.allows("10.0.0.8".parse().unwrap()));
        let bad = Protection { allow: "192.168.1.0/99".into(), ..Protection::default() };
        let error = server_config(&bad, JitterBuffer::Off).unwrap_err();
        assert!(reason_first(&error).contains("192.168.1.0/99"), "{error}");
    }

    #[test]
    fn tls_needs_both_files_in_server_mode_and_a_readable_ca_in_client_mode() {
        let only_cert = Protection { tls_cert: "cert.pem".into(), ..Protection::default() };
        assert!(server_config(&only_cert, JitterBuffer::Off).unwrap_err().to_string().contains("without its key"));
        let only_key = Protection { tls_key: "key.pem".into(), ..Protection::default() };
        assert!(server_config(&only_key, JitterBuffer::Off).unwrap_err().to_string().contains("without a certificate"));
        let missing_ca = Protection { tls_ca: "/nonexistent/ca.pem".into(), ..Protection::default() };
        assert!(connect_options(&missing_ca, JitterBuffer::Off)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn the_jitter_buffer_goes_to_the_core_as_the_clis_would() {
        use midisock::timing::DelayMode;
        let off = connect_options(&Protection::default(), JitterBuffer::Off).unwrap();
        assert!(off.jitter_buffer.is_none());
        let fixed = connect_options(&Protection::default(), JitterBuffer::Fixed { ms: 15 }).unwrap();
        assert_eq!(fixed.jitter_buffer.map(|c| c.mode), Some("15".parse::<DelayMode>().unwrap()));
        let auto = server_config(&Protection::default(), JitterBuffer::Auto).unwrap();
        assert_eq!(auto.jitter_buffer.map(|c| c.mode), Some("auto".parse::<DelayMode>().unwrap()));
        // A project edited by hand beyond the limit gets the limit.
        assert_eq!(JitterBuffer::Fixed { ms: u32::MAX }.delay_mode(), Some("10000".parse::<DelayMode>().unwrap()));
    }

    #[test]
    fn a_bad_token_is_an_error_in_server_mode() {
        let protection = Protection { token: "tab\there".into(), ..Protection::default() };
        assert!(matches!(server_config(&protection, JitterBuffer::Off), Err(midisock::Error::InvalidToken)));
    }

    #[test]
    fn errors_read_reason_first() {
        let error = midisock::connect("127.0.0.1:notaport").unwrap_err();
        let text = reason_first(&error);
        assert!(text.ends_with(r#"invalid address "127.0.0.1:notaport""#), "{text}");
        assert!(!text.starts_with("invalid address"), "{text}");
    }

    #[test]
    fn the_jitter_buffer_is_saved_and_loaded() {
        for setting in [JitterBuffer::Off, JitterBuffer::Fixed { ms: 12 }, JitterBuffer::Auto] {
            let json = serde_json::to_string(&setting).unwrap();
            assert_eq!(serde_json::from_str::<JitterBuffer>(&json).unwrap(), setting, "{json}");
        }
        assert!(serde_json::from_str::<JitterBuffer>(r#"{"Fixed":{"ms":-3}}"#).is_err());
    }

    #[test]
    fn a_project_saved_before_the_protections_loads_with_none() {
        let protection: Protection = serde_json::from_str("{}").unwrap();
        assert_eq!(protection, Protection::default());
        let partial: Protection = serde_json::from_str(r#"{"token":"t"}"#).unwrap();
        assert_eq!(partial.token, "t");
    }
}
