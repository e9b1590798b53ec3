//! The one error type of the port and server API.

use crate::message::InvalidValue;
use crate::text::ParseMessageError;
use std::fmt;
use std::io;

/// Everything that can go wrong with a port or server.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address text is not `host:port` / `[v6addr]:port`.
    AddressSyntax { address: String, reason: &'static str },
    /// The host name did not resolve to any address.
    Resolve { host: String, source: io::Error },
    /// No address of the host accepted the connection (refused, unreachable, timed out).
    Connect { address: String, source: io::Error },
    /// The server could not listen on the address (in use, permission, no such interface).
    Bind { address: String, source: io::Error },
    /// The port or server is closed: closed locally, or the peer closed the connection and every
    /// message it sent has been received.
    Closed,
    /// A message field is outside its range (nothing was sent).
    InvalidMessage(InvalidValue),
    /// Message text could not be parsed.
    MessageText(ParseMessageError),
    /// The port delivers messages to a callback, so it cannot be read directly.
    CallbackInstalled,
    /// A signal handler ran on the waiting thread and an interruptible wait
    /// ([`crate::SocketPort::receive_interruptible`], [`crate::PortServer::receive_interruptible`],
    /// [`crate::PortServer::accept_interruptible`]) gave up so that its caller can act on the
    /// signal (a Ctrl-C flag, say) before waiting again. Nothing was received or accepted, and
    /// nothing was lost: the next call goes on where this one stopped. The other methods never
    /// return it.
    Interrupted,
    /// A TLS certificate, key or handshake problem.
    Tls(String),
    /// An authentication token is empty, longer than 128 bytes, or not printable ASCII.
    InvalidToken,
    /// The server refused the connection and said why (see [`crate::RefusalCause`]; a newer
    /// server may send a cause this version does not know, kept here as its text).
    Refused { cause: String },
    /// A [`crate::ReconnectingPort`]'s connection is down and it is reconnecting: nothing was
    /// sent. `reason` is why the last connection or attempt failed.
    Disconnected { reason: String },
    /// A [`crate::ReconnectingPort`] gave up after `attempts` consecutive failed attempts (its
    /// [`crate::Reconnect::max_attempts`]); the last failed for `reason`. The port is closed.
    GaveUp { attempts: u32, reason: String },
    /// Any other I/O failure of an established connection.
    Io(io::Error),
}

/// The result type of the port and server API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True for [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AddressSyntax { address, reason } => {
                write!(f, "invalid address {address:?}: {reason}")
            }
            Error::Resolve { host, source } => write!(f, "cannot resolve host {host:?}: {source}"),
            Error::Connect { address, source } => {
                write!(f, "cannot connect to {address}: {source}")
            }
            Error::Bind { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Error::Closed => f.write_str("port is closed"),
            Error::InvalidMessage(e) => write!(f, "invalid message: {e}"),
            Error::MessageText(e) => write!(f, "invalid message text: {e}"),
            Error::CallbackInstalled => f.write_str("port delivers messages to a callback; it cannot be read directly"),
            Error::Interrupted => f.write_str("the wait was interrupted by a signal"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::InvalidToken => f.write_str("invalid token: use 1 to 128 printable ASCII characters"),
            Error::Refused { cause } => write!(f, "the server refused the connection: {cause}"),
            Error::Disconnected { reason } => write!(f, "not connected, reconnecting ({reason}); nothing was sent"),
            Error::GaveUp { attempts, reason } => {
                write!(f, "gave up reconnecting after {attempts} failed attempts; the last: {reason}")
            }
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { source, .. } | Error::Connect { source, .. } | Error::Bind { source, .. } => Some(source),
            Error::InvalidMessage(e) => Some(e),
            Error::MessageText(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<InvalidValue> for Error {
    fn from(e: InvalidValue) -> Self {
        Error::InvalidMessage(e)
    }
}

impl From<ParseMessageError> for Error {
    fn from(e: ParseMessageError) -> Self {
        Error::MessageText(e)
    }
}

/// Maps an I/O error on an established connection: the ways a peer can vanish become `Closed`.
pub(crate) fn from_stream_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io(e),
    }
}

/// Maps an error of a wait ([`crate::net::wait_readable`], [`crate::net::sleep_until`]): one that
/// gave up on a signal is [`Error::Interrupted`].
pub(crate) fn from_wait_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::Interrupted => Error::Interrupted,
        _ => Error::Io(e),
    }
}
