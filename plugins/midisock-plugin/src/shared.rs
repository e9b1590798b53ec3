//! What the GUI, the host's state save/load and the network thread share: the connection settings
//! (saved with the project) and the connection status (shown in the GUI). Neither is ever touched
//! by the audio thread, except the lock-free drop counter.

use nice_plug::params::persist::PersistentField;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The default address: a midisock or mido server on this machine.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";

/// Client: connect to a server (and reconnect). Server: listen and serve any number of clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[default]
    Client,
    Server,
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
        lock(&self.value).clone()
    }

    /// Changes the value and tells the network thread.
    pub fn set(&self, value: T) {
        *lock(&self.value) = value;
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
        f(&lock(&self.value))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain data, consistent between operations: poisoning means nothing.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// Waiting before the next attempt (see `last_error`).
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
    last_error: Mutex<String>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: AtomicU8::new(LinkState::Idle as u8),
            peers: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
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

    /// The last error, empty if none yet (network thread and GUI only: takes a lock).
    pub fn last_error(&self) -> String {
        lock(&self.last_error).clone()
    }

    pub fn set_last_error(&self, error: String) {
        *lock(&self.last_error) = error;
    }

    /// Counts dropped messages (lock-free: the audio thread calls it).
    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
}
