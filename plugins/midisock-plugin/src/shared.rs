//! What the GUI, the host's state save/load and the network thread share: the connection settings
//! (saved with the project) and the connection status (shown in the GUI). Neither is ever touched
//! by the audio thread, except the lock-free drop counter.

use midisock::timing::PlayoutStats;
use nice_plug::params::persist::PersistentField;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// The default address: a midisock or mido server on this machine.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";

/// Client: connect to a server (and reconnect). Server: listen and serve any number of clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[default]
    Client,
    Server,
}

/// The protections of a connection, as the GUI edits them and the project saves them (the same
/// choices as the CLI's `--token`, `--tls-*` and `--allow`). Empty text means "not used".
/// [`crate::network`] turns them into the core's `ConnectOptions` / `ServerConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Protection {
    /// Shared secret: a client presents it, a server requires it (1–128 printable ASCII).
    pub token: String,
    /// Client: PEM file of the CA (or the server's self-signed certificate) to trust; TLS is on
    /// when set.
    pub tls_ca: String,
    /// Client, with `tls_ca`: the name the server's certificate must carry, when not the host.
    pub tls_server_name: String,
    /// Server: PEM certificate chain (leaf first); TLS is on when this and `tls_key` are set.
    pub tls_cert: String,
    /// Server: the PEM private key of `tls_cert`.
    pub tls_key: String,
    /// Server: addresses or CIDR ranges allowed to connect, separated by commas or spaces; empty:
    /// everyone.
    pub allow: String,
}

impl Protection {
    /// The allowlist entries, as typed.
    pub fn allow_entries(&self) -> impl Iterator<Item = &str> {
        self.allow.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty())
    }
}

/// The jitter buffer on what the plugin receives, as the GUI edits it and the project saves it
/// (the same choices as the CLI's `--jitter-buffer off|MS|auto`). With it on, the plugin asks its
/// peers to stamp their messages with their own clock, and the core plays each message out at
/// its sender time + the link's usual delay + this delay, which turns network jitter into a fixed
/// latency; [`crate::timing`] then places it in the block at that time. Peers that do not speak
/// the extension (mido) are received on arrival, as with it off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JitterBuffer {
    /// Every message goes into the track when it arrives.
    #[default]
    Off,
    /// A fixed delay on top of the link's usual delay, in milliseconds (0 to
    /// [`JitterBuffer::MAX_FIXED_MS`]).
    Fixed { ms: u32 },
    /// The smallest delay that keeps all but 0.1 % of messages on time, measured continuously.
    Auto,
}

impl JitterBuffer {
    /// The longest fixed delay (the core's limit for every front end).
    pub const MAX_FIXED_MS: u32 = midisock::timing::MAX_FIXED_DELAY_MS as u32;
    /// What choosing Fixed in the GUI starts from: above typical Wi-Fi jitter.
    pub const DEFAULT_FIXED_MS: u32 = 20;

    /// The core's playout mode; `None` when off. A delay beyond the limit (an edited project
    /// file) is taken as the limit.
    pub fn delay_mode(self) -> Option<midisock::timing::DelayMode> {
        use midisock::timing::DelayMode;
        match self {
            JitterBuffer::Off => None,
            JitterBuffer::Fixed { ms } => Some(DelayMode::fixed(u64::from(ms.min(Self::MAX_FIXED_MS)) * 1_000_000)),
            JitterBuffer::Auto => Some(DelayMode::adaptive()),
        }
    }
}

/// A setting saved with the project (`#[persist]`) that the network thread follows: every change
/// — from the GUI or from the host loading a project — bumps a shared generation counter, which
/// the network thread polls to reconnect with the new value.
///
/// Cloning gives another handle on the same value.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    value: Arc<Mutex<T>>,
    generation: Arc<AtomicU64>,
}

impl<T: Clone> Setting<T> {
    pub fn new(value: T, generation: Arc<AtomicU64>) -> Setting<T> {
        Setting { value: Arc::new(Mutex::new(value)), generation }
    }

    /// The current value (GUI and network thread only: takes a lock).
    pub fn get(&self) -> T {
        self.value.lock().clone()
    }

    /// Changes the value and tells the network thread.
    pub fn set(&self, value: T) {
        self.store(value);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes the value without telling the network thread: for changing several settings at
    /// once, followed by one [`Setting::notify`], so the thread never connects with half of them.
    pub fn store(&self, value: T) {
        *self.value.lock() = value;
    }

    /// Tells the network thread that settings changed.
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl<'a, T> PersistentField<'a, T> for Setting<T>
where
    T: Serialize + Deserialize<'a> + Clone + Send,
    Arc<Mutex<T>>: Send + Sync,
{
    fn set(&self, new_value: T) {
        Setting::set(self, new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&T) -> R,
    {
        f(&self.value.lock())
    }
}

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Not activated yet: no network thread.
    Idle = 0,
    /// Client: trying to connect.
    Connecting = 1,
    /// Client: connected to the server.
    Connected = 2,
    /// Server: listening (see `peers` for the connected clients).
    Listening = 3,
    /// Waiting before the next attempt (see [`Status::problem`]).
    Retrying = 4,
}

impl LinkState {
    pub fn label(self) -> &'static str {
        match self {
            LinkState::Idle => "idle (not activated)",
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Listening => "listening",
            LinkState::Retrying => "waiting to retry",
        }
    }

    /// Connected or listening.
    pub fn is_up(self) -> bool {
        matches!(self, LinkState::Connected | LinkState::Listening)
    }
}

/// What went wrong, for the GUI: why the last link ended and why the latest attempt failed, kept
/// apart so the next attempt's error never hides the reason of a disconnect. Both are cleared once
/// a link is up and stays up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problem {
    /// Why the last connection (or server) ended, e.g. the server's refusal.
    pub lost: String,
    /// Why the latest attempt to connect or listen failed.
    pub attempt: String,
}

impl Problem {
    pub fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.attempt.is_empty()
    }
}

/// Connection status, written by the network thread, read by the GUI.
#[derive(Debug)]
pub struct Status {
    state: AtomicU8,
    /// Connected peers: 1 or 0 for a client, the number of clients for a server.
    pub peers: AtomicUsize,
    /// Messages written to the network.
    pub sent: AtomicU64,
    /// Messages received from the network.
    pub received: AtomicU64,
    /// Messages dropped: a ring was full, a sysex did not fit, or there was no connection.
    pub dropped: AtomicU64,
    /// Server: connections refused (not on the allowlist, too many, wrong or missing token).
    pub refused_clients: AtomicU64,
    /// Failed attempts in a row (0 once a link is up and stays up).
    pub failed_attempts: AtomicU32,
    /// When the next attempt starts ([`midisock::monotonic_ns`]); meaningful while retrying.
    pub retry_at_ns: AtomicU64,
    problem: Mutex<Problem>,
    /// The jitter buffers' stats, one per peer whose messages are played out (client: the
    /// server; server: each client). Empty with the buffer off or before any peer.
    playout: Mutex<Vec<PeerPlayout>>,
}

/// One peer's jitter buffer, as the GUI shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerPlayout {
    /// The client (server mode); `None` for the server a client is connected to.
    pub peer: Option<SocketAddr>,
    pub stats: PlayoutStats,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: AtomicU8::new(LinkState::Idle as u8),
            peers: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused_clients: AtomicU64::new(0),
            failed_attempts: AtomicU32::new(0),
            retry_at_ns: AtomicU64::new(0),
            problem: Mutex::new(Problem::default()),
            playout: Mutex::new(Vec::new()),
        }
    }
}

impl Status {
    pub fn state(&self) -> LinkState {
        match self.state.load(Ordering::Acquire) {
            1 => LinkState::Connecting,
            2 => LinkState::Connected,
            3 => LinkState::Listening,
            4 => LinkState::Retrying,
            _ => LinkState::Idle,
        }
    }

    pub fn set_state(&self, state: LinkState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// What went wrong (network thread and GUI only: takes a lock).
    pub fn problem(&self) -> Problem {
        self.problem.lock().clone()
    }

    /// The link ended: `reason` is why.
    pub fn set_lost(&self, reason: String) {
        let mut problem = self.problem.lock();
        problem.lost = reason;
        problem.attempt.clear();
    }

    /// An attempt to connect or listen failed.
    pub fn set_attempt_error(&self, error: String) {
        self.problem.lock().attempt = error;
    }

    /// A link is up and has stayed up: nothing is wrong any more.
    pub fn clear_problem(&self) {
        *self.problem.lock() = Problem::default();
        self.failed_attempts.store(0, Ordering::Release);
    }

    /// The jitter buffers' stats (network thread and GUI only: takes a lock).
    pub fn playout(&self) -> Vec<PeerPlayout> {
        self.playout.lock().clone()
    }

    /// Replaces the jitter buffers' stats (the network thread, a few times a second).
    pub fn set_playout(&self, peers: impl IntoIterator<Item = PeerPlayout>) {
        let mut playout = self.playout.lock();
        playout.clear();
        playout.extend(peers);
    }

    /// Counts dropped messages (lock-free: the audio thread calls it).
    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
}
