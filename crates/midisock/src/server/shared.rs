//! State shared between the event loop thread and the threads that use a [`super::PortServer`].
//!
//! # Lock order
//! Deadlock-free because every thread takes these locks in this order, skipping any, never an
//! earlier one while holding a later one:
//!
//! 1. `Shared::broadcast` — a user thread's whole `send`/`send_all`;
//! 2. `Shared::clients` (read or write);
//! 3. a client's `output` ([`Client`]);
//! 4. a client's `reader`;
//! 5. a client's `tls` session;
//! 6. `Shared::state` (inbox, lobby, flags);
//! 7. `Shared::failed`.
//!
//! Client locks are taken only inside `Client`'s methods. The event hook runs with none held.
//!
//! # Who drops clients
//! Only the I/O thread. A broadcaster whose write fails marks the client failed (it is no longer
//! written to), lists it in `failed` and wakes the I/O thread, which reads everything the client
//! still sent, delivers it, then drops the client and releases its held notes. So no byte a
//! client sent is lost to a failed write, and its notes are released after its last note_on.

use super::client::{Client, Delivery};
use super::config::ServerConfig;
use super::events::DisconnectCause;
use super::inbox::Inbox;
use super::outgoing::{BroadcastScratch, Outgoing};
use crate::doorbell::{Doorbell, Woken};
use crate::message::Received;
use crate::net::OnSignal;
use crate::poll_fd::PollFd;
use mio::unix::SourceFd;
use mio::Token;
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) registry: mio::Registry,
    pub(crate) waker: mio::Waker,
    /// Every connection the server still sends to (lobby and served), by token.
    pub(crate) clients: RwLock<HashMap<Token, Arc<Client>>>,
    pub(crate) state: Mutex<State>,
    /// Rung (with `state` locked) when the inbox or lobby gains an entry, and when the server
    /// stops. A doorbell rather than a condition variable so that the interruptible receive and
    /// accept can give up on a signal.
    pub(crate) changed: Doorbell,
    /// Serializes broadcasts (so two sending threads never interleave bytes) and holds the
    /// scratch buffers they encode into.
    pub(crate) broadcast: Mutex<BroadcastScratch>,
    /// Clients a writer marked failed, for the I/O thread to drain and drop.
    pub(crate) failed: Mutex<Vec<Arc<Client>>>,
    pub(crate) stats: Counters,
    /// The earliest playout deadline of any client's jitter buffer (`CLOCK_MONOTONIC` ns;
    /// `u64::MAX`: none), published by the I/O thread each time it arms its timer, for
    /// [`super::PortServer::next_due_ns`].
    pub(crate) next_due: AtomicU64,
    /// The poller's descriptor ([`super::PortServer::poll_fd`]), once asked for: signalled with
    /// `changed`, cleared by a receive that finds the inbox empty. Set under the state lock.
    pub(crate) poll_fd: OnceLock<PollFd>,
}

/// What a server has refused or dropped, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and served (or handed to `accept()`).
    pub connections_accepted: u64,
    /// Connections refused (each told why, see [`crate::RefusalCause`]): not on the allowlist,
    /// over `max_clients`, locked out after failed hellos, out of file descriptors, or speaking
    /// the wrong transport (a TLS handshake to a plain server, plain MIDI to a TLS server).
    pub connections_refused: u64,
    /// Clients disconnected because their outgoing queue passed `max_client_queue` (what they
    /// sent before is still delivered).
    pub slow_clients_dropped: u64,
    /// Sysex messages from clients dropped by [`super::SysexPolicy::Deny`].
    pub sysex_denied: u64,
    /// Sysex messages from clients dropped for exceeding `max_sysex_len`.
    pub sysex_oversized: u64,
    /// Note-offs (and sustain-offs) generated for clients that left with notes held.
    pub notes_released: u64,
    /// Connections closed for a wrong, missing or late hello (see `ServerConfig::token`), a TLS
    /// handshake that failed or came too late: each counts towards the address's lockout.
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
    /// Received messages waiting for `receive()`, bounded by `max_inbox_bytes` of memory.
    pub(crate) inbox: Inbox,
    /// Connections not yet read, oldest first, waiting for `accept()` or the first `receive()`.
    pub(crate) lobby: VecDeque<Arc<Client>>,
    /// Threads blocked in `accept()`; while any waits, new connections go to the lobby.
    pub(crate) accept_waiters: usize,
    /// Set by the first receive: from then on every connection is read into the inbox.
    pub(crate) reads_claimed: bool,
    /// The event loop stopped reading because the inbox is full.
    pub(crate) reading_paused: bool,
    /// What the jitter buffers hold, as the I/O thread last saw it (counted in the bound; a
    /// reader may be a little behind, and the I/O thread decides with its own count).
    pub(crate) held_bytes: usize,
    /// The user asked the loop to stop.
    pub(crate) stopping: bool,
    /// The loop has stopped; every connection is closed.
    pub(crate) stopped: bool,
    /// The most memory the inbox and the jitter buffers took together, as seen before reads.
    #[cfg(test)]
    pub(crate) peak_bytes: usize,
    /// A callback takes every message ([`super::PortServer::set_callback`]): the receive methods
    /// refuse.
    pub(crate) callback_installed: bool,
    /// Which callback thread may deliver: each runs while this holds the number it started with.
    pub(crate) callback_generation: u64,
}

impl Shared {
    /// Reads the client list; broadcasters and the event loop share it.
    pub(crate) fn clients(&self) -> RwLockReadGuard<'_, HashMap<Token, Arc<Client>>> {
        self.clients.read()
    }

    pub(crate) fn clients_mut(&self) -> RwLockWriteGuard<'_, HashMap<Token, Arc<Client>>> {
        self.clients.write()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Releases `state` and waits until `changed` rings, the monotonic clock reaches `deadline`
    /// (`None`: no deadline) or, with [`OnSignal::Return`], a signal handler runs; then locks
    /// `state` again. The caller looks at the state again after [`Woken::Rang`] (a wake may be
    /// spurious) and gives up after the others.
    pub(crate) fn wait_changed(
        &self,
        state: &mut MutexGuard<'_, State>,
        deadline: Option<u64>,
        on_signal: OnSignal,
    ) -> Woken {
        if deadline.is_some_and(|d| crate::clock::monotonic_ns() >= d) {
            return Woken::TimedOut;
        }
        let ticket = self.changed.ticket();
        MutexGuard::unlocked(state, || self.changed.wait(ticket, deadline, on_signal))
    }

    /// The next message of the inbox, if any; wakes the event loop when taking it makes room for
    /// reading again.
    pub(crate) fn take_next(&self, state: &mut State) -> Option<Received> {
        let received = state.inbox.pop()?;
        if state.reading_paused && state.inbox.may_resume_reading(self.config.max_inbox_bytes, state.held_bytes) {
            self.wake_loop();
        }
        Some(received)
    }

    /// Takes a client out of the server: no more broadcasts, no more events. The caller decides
    /// whether the connection itself ends (`Client::close`) or lives on (handed to accept()).
    pub(crate) fn forget(&self, client: &Client) {
        self.clients_mut().remove(&client.token);
        let fd = client.stream.as_raw_fd();
        // Deregistering can only fail if the descriptor is already gone from the poll set.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.state().lobby.retain(|c| c.token != client.token);
    }

    /// Writes `outgoing` to every client except `skip` (plain, or stamped for the clients that
    /// asked; `stamped` is the scratch buffer for that). A client whose write fails or whose
    /// queue would pass its limit is only marked failed here and handed to the I/O thread, which
    /// drops it (see the module docs): a broadcast never drops, releases or relays.
    pub(crate) fn broadcast(&self, outgoing: &Outgoing<'_>, skip: Option<Token>, stamped: &mut Vec<u8>) {
        if outgoing.is_empty() {
            return;
        }
        let mut failed: Vec<Arc<Client>> = Vec::new();
        for client in self.clients().values() {
            if Some(client.token) == skip {
                continue;
            }
            if let Delivery::Failed(cause) = client.write_or_queue(outgoing, self.config.max_client_queue, stamped) {
                if cause == DisconnectCause::TooSlow {
                    Counters::add(&self.stats.slow_clients_dropped, 1);
                }
                failed.push(Arc::clone(client));
            }
        }
        if !failed.is_empty() {
            self.hand_to_io_thread(failed);
        }
    }

    /// Lists clients marked failed for the I/O thread and wakes it.
    pub(crate) fn hand_to_io_thread(&self, clients: Vec<Arc<Client>>) {
        self.failed.lock().extend(clients);
        self.wake_loop();
    }

    /// The clients marked failed since the last call.
    pub(crate) fn take_failed(&self) -> Vec<Arc<Client>> {
        std::mem::take(&mut *self.failed.lock())
    }

    /// Signals `changed` (call with the state lock held): the inbox or lobby gained an entry, or
    /// the server stops. A poller waiting on the poll descriptor wakes too.
    pub(crate) fn notify_changed(&self) {
        self.changed.ring();
        if let Some(poll) = self.poll_fd.get() {
            poll.signal();
        }
    }

    /// Wakes the event loop to look at `state` again.
    pub(crate) fn wake_loop(&self) {
        // A failed wake means the loop's poll is gone, i.e. the server is stopping anyway.
        let _ = self.waker.wake();
    }
}
