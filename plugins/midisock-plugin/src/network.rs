//! The network thread ("midisock-plugin-net"): owns the socket (client) or the server, the
//! reconnection with backoff, the wall clock ([`crate::timing`]) and the notes the plugin holds
//! down on the network. It talks to the audio thread only through two lock-free channels of small
//! `Copy` events with a sysex byte lane ([`crate::ring`]), and never waits on the audio thread.

use crate::event::{Midi, ToNetwork, ToTrack, MAX_SYSEX_LEN};
use crate::ring::{Receiver, Sender};
use crate::shared::{LinkState, Mode, Setting, Status};
use crate::timing::SampleClock;
use midisock::{monotonic_ns, HeldNotes, Message, PortServer, Received, SocketPort};
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
/// Events from the track waiting for their send time; beyond this they are sent at once.
const MAX_SCHEDULED: usize = 4096;

/// The settings the network thread follows (shared with the plugin's persisted parameters).
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub mode: Setting<Mode>,
    pub address: Setting<String>,
    /// Bumped on every change of `mode` or `address`.
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
            seen_generation: u64::MAX,
            retry_at: Instant::now(),
            backoff: MIN_BACKOFF,
            clock: SampleClock::default(),
            scheduled: VecDeque::new(),
            held_on_network: HeldNotes::default(),
            release_received_pending: false,
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
}

impl Worker {
    fn run(mut self) {
        while !self.quit.load(Ordering::Acquire) {
            let generation = self.settings.generation.load(Ordering::Acquire);
            if generation != self.seen_generation {
                self.seen_generation = generation;
                self.tear_down();
                self.retry_at = Instant::now();
                self.backoff = MIN_BACKOFF;
            }
            if matches!(self.link, Link::Down) && Instant::now() >= self.retry_at {
                self.open();
            }
            self.drain_audio();
            self.send_due();
            self.flush_release_received();
            self.wait_and_receive();
        }
        self.tear_down();
        self.status.set_state(LinkState::Idle);
    }

    /// Connects (client) or binds (server) with the current settings.
    fn open(&mut self) {
        let mode = self.settings.mode.get();
        let address = self.settings.address.get();
        let result = match mode {
            Mode::Client => {
                self.status.set_state(LinkState::Connecting);
                midisock::connect_timeout(address.as_str(), CONNECT_TIMEOUT).map(Link::Client)
            }
            Mode::Server => PortServer::bind(address.as_str()).map(Link::Server),
        };
        match result {
            Ok(link) => {
                self.status.set_state(match link {
                    Link::Server(_) => LinkState::Listening,
                    _ => LinkState::Connected,
                });
                self.status.peers.store(usize::from(matches!(link, Link::Client(_))), Ordering::Release);
                self.link = link;
                self.backoff = MIN_BACKOFF;
            }
            Err(e) => self.failed(format!("{e}")),
        }
    }

    /// Records an error and schedules the next attempt with exponential backoff.
    fn failed(&mut self, error: String) {
        self.status.set_last_error(error);
        self.status.set_state(LinkState::Retrying);
        self.status.peers.store(0, Ordering::Release);
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The connection broke: the notes the network put into the track must stop, and the notes we
    /// held on the far side died with it (a midisock server releases them itself).
    fn lost(&mut self, error: String) {
        self.link = Link::Down;
        self.held_on_network = HeldNotes::default();
        self.scheduled.clear();
        self.release_received_pending = true;
        self.flush_release_received();
        self.failed(error);
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
        self.scheduled.clear();
        self.release_received_pending = true;
        self.flush_release_received();
        self.status.peers.store(0, Ordering::Release);
    }

    fn drain_audio(&mut self) {
        let now = monotonic_ns();
        let mut buffer = [0; MAX_SYSEX_LEN];
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
            Err(e) => self.lost(format!("send: {e}")),
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
            Err(e) => self.lost(format!("send: {e}")),
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
                server.receive_timeout_stamped(timeout)
            }
        };
        let mut next = first;
        loop {
            match next {
                Ok(Some(received)) => self.deliver(received),
                Ok(None) => return,
                Err(e) => {
                    let error =
                        if e.is_closed() { "the server closed the connection".to_string() } else { format!("{e}") };
                    self.lost(error);
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
        let mut buffer = [0; MAX_SYSEX_LEN];
        let Some((midi, sysex)) = Midi::encode(&received.message, &mut buffer) else {
            self.status.count_dropped(1);
            return;
        };
        let sample = self.clock.target_sample(received.timestamp_ns, monotonic_ns());
        if self.to_audio.push(ToTrack::Midi { sample, midi }, sysex).is_err() {
            self.status.count_dropped(1);
        }
    }
}
