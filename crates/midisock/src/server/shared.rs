//! State shared between the event loop thread and the threads that use a [`super::PortServer`].
//!
//! Lock order, to keep it deadlock-free: `clients`, then a client's `output`, then its `parser`,
//! then `state`. A thread may skip levels but never takes an earlier lock while holding a later
//! one.

use super::client::{lock, Client, Role, WriteFailure};
use super::config::ServerConfig;
use crate::clock::monotonic_ns;
use crate::message::Message;
use crate::message::Received;
use mio::unix::SourceFd;
use mio::Token;
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) registry: mio::Registry,
    pub(crate) waker: mio::Waker,
    /// Every connection the server still sends to (lobby and served), by token.
    pub(crate) clients: RwLock<HashMap<Token, Arc<Client>>>,
    pub(crate) state: Mutex<State>,
    /// Signalled when the inbox or lobby gains an entry, and when the server stops.
    pub(crate) changed: Condvar,
    /// Serializes broadcasts (so two sending threads never interleave bytes) and holds the
    /// scratch buffer they encode into.
    pub(crate) broadcast: Mutex<Vec<u8>>,
    pub(crate) stats: Counters,
}

/// What a server has refused or dropped, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and served (or handed to `accept()`).
    pub connections_accepted: u64,
    /// Connections closed at once: over `max_clients`, or not on the allowlist.
    pub connections_refused: u64,
    /// Clients disconnected because their outgoing queue passed `max_client_queue`.
    pub slow_clients_dropped: u64,
    /// Sysex messages from clients dropped by [`super::SysexPolicy::Deny`].
    pub sysex_denied: u64,
    /// Sysex messages from clients dropped for exceeding `max_sysex_len`.
    pub sysex_oversized: u64,
    /// Note-offs (and sustain-offs) generated for clients that left with notes held.
    pub notes_released: u64,
    /// Connections closed for a wrong, missing or late hello (see `ServerConfig::token`).
    pub auth_failures: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) slow_clients_dropped: AtomicU64,
    pub(crate) sysex_denied: AtomicU64,
    pub(crate) sysex_oversized: AtomicU64,
    pub(crate) notes_released: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: get(&self.connections_accepted),
            connections_refused: get(&self.connections_refused),
            slow_clients_dropped: get(&self.slow_clients_dropped),
            sysex_denied: get(&self.sysex_denied),
            sysex_oversized: get(&self.sysex_oversized),
            notes_released: get(&self.notes_released),
            auth_failures: get(&self.auth_failures),
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) inbox: VecDeque<Received>,
    /// Encoded size of what is in `inbox`, for `max_inbox_bytes`.
    pub(crate) inbox_bytes: usize,
    /// Connections not yet read, oldest first, waiting for `accept()` or the first `receive()`.
    pub(crate) lobby: VecDeque<Arc<Client>>,
    /// Threads blocked in `accept()`; while any waits, new connections go to the lobby.
    pub(crate) accept_waiters: usize,
    /// Set by the first receive: from then on every connection is read into the inbox.
    pub(crate) reads_claimed: bool,
    /// The event loop stopped reading because the inbox is full.
    pub(crate) reading_paused: bool,
    /// The user asked the loop to stop.
    pub(crate) stopping: bool,
    /// The loop has stopped; every connection is closed.
    pub(crate) stopped: bool,
}

impl Shared {
    /// Reads the client list; broadcasters and the event loop share it.
    pub(crate) fn clients(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Token, Arc<Client>>> {
        self.clients.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn clients_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Token, Arc<Client>>> {
        self.clients.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Waits until `changed` is signalled or `deadline` passes (`None`: no deadline). The bool is
    /// false when the deadline had passed, so the caller should give up.
    pub(crate) fn wait_changed<'a>(
        &self,
        state: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, State>, bool) {
        match deadline {
            None => (self.changed.wait(state).unwrap_or_else(PoisonError::into_inner), true),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return (state, false);
                }
                (self.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0, true)
            }
        }
    }

    /// Takes a client out of the server: no more broadcasts, no more events. The caller decides
    /// whether the connection itself ends (`Client::shut_down`) or lives on (handed to accept()).
    pub(crate) fn forget(&self, client: &Client) {
        self.clients_mut().remove(&client.token);
        let fd = client.stream.as_raw_fd();
        // Deregistering can only fail if the descriptor is already gone from the poll set.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.state().lobby.retain(|c| c.token != client.token);
    }

    /// Ends a client's connection and forgets it. Notes it held down are released: note-offs go
    /// to `receive()` and, when relaying, to every other client — no stuck notes.
    pub(crate) fn drop_client(&self, client: &Client) {
        let was_served = client.role() == Role::Served;
        client.shut_down();
        self.forget(client);
        if !was_served {
            return;
        }
        let mut releases = Vec::new();
        lock(&client.reader).held.release_all(|m| releases.push(m));
        if !releases.is_empty() {
            Counters::add(&self.stats.notes_released, releases.len() as u64);
            self.deliver(client, &mut releases, monotonic_ns());
        }
    }

    /// Hands messages from `source` to `receive()`, and relays them to the other clients when
    /// relaying is on. Called without any client lock held.
    /// Takes the messages out of `messages` (left empty, its capacity kept for reuse), so none is
    /// copied on the way to the inbox.
    pub(crate) fn deliver(&self, source: &Client, messages: &mut Vec<Message>, timestamp_ns: u64) {
        if messages.is_empty() {
            return;
        }
        // Encoded before the messages move into the inbox; written after, as before.
        let relayed = self.config.relay.then(|| {
            let mut bytes = Vec::new();
            Message::encode_all(messages, &mut bytes);
            bytes
        });
        {
            let mut state = self.state();
            for message in messages.drain(..) {
                state.inbox_bytes += message.encoded_len();
                state.inbox.push_back(Received { message, timestamp_ns });
            }
            self.changed.notify_all();
        }
        if let Some(bytes) = relayed {
            self.broadcast_bytes(&bytes, Some(source.token));
        }
    }

    /// Writes `bytes` to every client except `skip`; clients that fail or fall too far behind are
    /// disconnected (after the client list is released).
    pub(crate) fn broadcast_bytes(&self, bytes: &[u8], skip: Option<Token>) {
        let mut failed: Vec<Arc<Client>> = Vec::new();
        for client in self.clients().values() {
            if Some(client.token) == skip {
                continue;
            }
            match client.write_or_queue(bytes, self.config.max_client_queue) {
                Ok(()) => {}
                Err(WriteFailure::QueueFull) => {
                    Counters::add(&self.stats.slow_clients_dropped, 1);
                    failed.push(Arc::clone(client));
                }
                Err(WriteFailure::Broken) => failed.push(Arc::clone(client)),
            }
        }
        for client in failed {
            self.drop_client(&client);
        }
    }

    /// Wakes the event loop to look at `state` again.
    pub(crate) fn wake_loop(&self) {
        // A failed wake means the loop's poll is gone, i.e. the server is stopping anyway.
        let _ = self.waker.wake();
    }
}
