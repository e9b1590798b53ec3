//! [`ServerEvent`]: what happens to connections, for a program to log or count.
//!
//! The hook set with [`crate::ServerConfig::on_event`] runs on the server's I/O thread
//! ("midisock-server"), one event at a time, in the order things happened, with no server lock
//! held: it may call the [`crate::PortServer`] methods that do not wait for the server (`send`,
//! `try_receive`, `try_accept`, `stats`, `client_count`, ...), but not `close` or a blocking
//! `receive`/`accept`, which would wait for this very thread. It should return quickly — the
//! thread serves every client — so a program that does slow work per event should hand the event
//! to its own thread. A hook that panics is caught; the server goes on.

use crate::refusal::RefusalCause;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Something that happened to one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client is in: accepted, and past the TLS handshake and token check when those are set.
    /// It is sent broadcasts from now on (or handed to `accept()`).
    Connected { peer: SocketAddr },
    /// A client the server served is gone. Everything it sent before has been delivered, and the
    /// notes it held have been released. Not reported for connections handed to `accept()`.
    Disconnected { peer: SocketAddr, cause: DisconnectCause },
    /// The server turned a connection away, after writing it a notice with the cause (see
    /// [`RefusalCause`]). Most refusals come before [`ServerEvent::Connected`]; a TLS handshake
    /// sent to a plain server without a token is noticed only when its first bytes arrive, after
    /// the connection was reported connected.
    Refused { peer: SocketAddr, cause: RefusalCause },
}

/// Why a served client's connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectCause {
    /// The client closed its connection (or its sending half) in order.
    ClosedByPeer,
    /// The connection failed: reset by the client or a write to it failed.
    Reset,
    /// The client read too slowly: its outgoing queue passed `max_client_queue`.
    TooSlow,
    /// The client stopped acknowledging what was sent to it within the write deadline
    /// ([`crate::WRITE_DEADLINE`]), or stopped answering keepalive probes.
    WriteDeadline,
    /// The server was closed.
    ServerClosing,
}

impl DisconnectCause {
    /// The cause in a few words.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectCause::ClosedByPeer => "closed by the client",
            DisconnectCause::Reset => "connection reset",
            DisconnectCause::TooSlow => "client too slow to read (queue over its limit)",
            DisconnectCause::WriteDeadline => "client stopped acknowledging (write deadline)",
            DisconnectCause::ServerClosing => "server closing",
        }
    }

    /// The cause of a failed socket operation.
    pub(crate) fn of_error(e: &std::io::Error) -> DisconnectCause {
        match e.raw_os_error() {
            Some(libc::ETIMEDOUT) => DisconnectCause::WriteDeadline,
            _ => DisconnectCause::Reset,
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            DisconnectCause::ClosedByPeer => 1,
            DisconnectCause::Reset => 2,
            DisconnectCause::TooSlow => 3,
            DisconnectCause::WriteDeadline => 4,
            DisconnectCause::ServerClosing => 5,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<DisconnectCause> {
        Some(match code {
            1 => DisconnectCause::ClosedByPeer,
            2 => DisconnectCause::Reset,
            3 => DisconnectCause::TooSlow,
            4 => DisconnectCause::WriteDeadline,
            5 => DisconnectCause::ServerClosing,
            _ => return None,
        })
    }
}

impl fmt::Display for DisconnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ServerEvent {
    /// One line a log can print: `connected 127.0.0.1:5000`, `disconnected 127.0.0.1:5000:
    /// connection reset`, `refused 10.0.0.9:4711: address not allowed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEvent::Connected { peer } => write!(f, "connected {peer}"),
            ServerEvent::Disconnected { peer, cause } => write!(f, "disconnected {peer}: {cause}"),
            ServerEvent::Refused { peer, cause } => write!(f, "refused {peer}: {cause}"),
        }
    }
}

/// The user's event hook, as kept in [`crate::ServerConfig`]: compared by identity.
#[derive(Clone)]
pub struct EventHook(Arc<dyn Fn(&ServerEvent) + Send + Sync + 'static>);

impl EventHook {
    pub(crate) fn new(hook: impl Fn(&ServerEvent) + Send + Sync + 'static) -> EventHook {
        EventHook(Arc::new(hook))
    }

    /// Runs the hook; a panic in it is reported once and otherwise ignored, so user code cannot
    /// take the I/O thread down.
    pub(crate) fn call(&self, event: &ServerEvent) {
        static REPORTED: AtomicBool = AtomicBool::new(false);
        if catch_unwind(AssertUnwindSafe(|| (self.0)(event))).is_err() && !REPORTED.swap(true, Ordering::Relaxed) {
            eprintln!("midisock: the server's event hook panicked (on {event}); further panics are not reported");
        }
    }
}

impl fmt::Debug for EventHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventHook(..)")
    }
}

impl PartialEq for EventHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for EventHook {}
