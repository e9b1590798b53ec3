//! State shared between the event loop thread and the threads that use a [`super::PortServer`].
//!
//! Lock order, to keep it deadlock-free: `clients`, then a client's `output`, then its `parser`,
//! then `state`. A thread may skip levels but never takes an earlier lock while holding a later
//! one.

use super::client::{lock, Client};
use super::config::ServerConfig;
use crate::message::Received;
use mio::unix::SourceFd;
use mio::Token;
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, RwLock};

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
        self.clients
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn clients_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<Token, Arc<Client>>> {
        self.clients
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
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

    /// Ends a client's connection and forgets it.
    pub(crate) fn drop_client(&self, client: &Client) {
        client.shut_down();
        self.forget(client);
    }

    /// Wakes the event loop to look at `state` again.
    pub(crate) fn wake_loop(&self) {
        // A failed wake means the loop's poll is gone, i.e. the server is stopping anyway.
        let _ = self.waker.wake();
    }
}
