//! The connection behind a `midisock_port`: a plain `SocketPort` (connected without a reconnect
//! policy, or accepted by a server) or a core `ReconnectingPort`. The C functions speak to this
//! one type; each call goes to the core's own method, so no behaviour is written twice.

use midisock_core::timing::PlayoutStats;
use midisock_core::{
    panic_messages, reset_messages, Error, LinkState, Message, ParserStats, Received, ReconnectingPort, SocketPort,
};
use std::os::fd::RawFd;
use std::time::Duration;

#[derive(Debug)]
pub(crate) enum Link {
    Plain(SocketPort),
    Reconnecting(ReconnectingPort),
}

impl Link {
    pub(crate) fn send(&self, message: &Message) -> Result<(), Error> {
        match self {
            Link::Plain(p) => p.send(message),
            Link::Reconnecting(p) => p.send(message),
        }
    }

    pub(crate) fn send_all(&self, messages: &[Message]) -> Result<(), Error> {
        match self {
            Link::Plain(p) => p.send_all(messages),
            Link::Reconnecting(p) => p.send_all(messages),
        }
    }

    pub(crate) fn receive_stamped(&self) -> Result<Received, Error> {
        match self {
            Link::Plain(p) => p.receive_stamped(),
            Link::Reconnecting(p) => p.receive_stamped(),
        }
    }

    pub(crate) fn try_receive_stamped(&self) -> Result<Option<Received>, Error> {
        match self {
            Link::Plain(p) => p.try_receive_stamped(),
            Link::Reconnecting(p) => p.try_receive_stamped(),
        }
    }

    pub(crate) fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>, Error> {
        match self {
            Link::Plain(p) => p.receive_timeout_stamped(timeout),
            Link::Reconnecting(p) => p.receive_timeout_stamped(timeout),
        }
    }

    /// The plain port, for what only it can do (a receive callback).
    pub(crate) fn plain(&self) -> Option<&SocketPort> {
        match self {
            Link::Plain(p) => Some(p),
            Link::Reconnecting(_) => None,
        }
    }

    pub(crate) fn finish(&self, timeout: Duration) -> Result<(), Error> {
        match self {
            Link::Plain(p) => p.finish(timeout),
            Link::Reconnecting(p) => p.finish(timeout),
        }
    }

    pub(crate) fn close(&self) {
        match self {
            Link::Plain(p) => p.close(),
            Link::Reconnecting(p) => p.close(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Link::Plain(p) => p.is_closed(),
            Link::Reconnecting(p) => p.is_closed(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Link::Plain(p) => p.name(),
            Link::Reconnecting(p) => p.name(),
        }
    }

    pub(crate) fn reset(&self) -> Result<(), Error> {
        self.send_all(&reset_messages())
    }

    pub(crate) fn panic(&self) -> Result<(), Error> {
        self.send_all(&panic_messages())
    }

    pub(crate) fn set_autoreset(&self, on: bool) {
        match self {
            Link::Plain(p) => p.set_autoreset(on),
            Link::Reconnecting(p) => p.set_autoreset(on),
        }
    }

    pub(crate) fn parser_stats(&self) -> ParserStats {
        match self {
            Link::Plain(p) => p.parser_stats(),
            Link::Reconnecting(p) => p.parser_stats(),
        }
    }

    /// The jitter buffer's state (a reconnecting port: its current connection's); `None` when it
    /// is off, or while a reconnecting port is down.
    pub(crate) fn playout_stats(&self) -> Option<PlayoutStats> {
        match self {
            Link::Plain(p) => p.playout_stats(),
            Link::Reconnecting(p) => p.playout_stats(),
        }
    }

    /// When the next message held in the jitter buffer is due (a reconnecting port: its current
    /// connection's).
    pub(crate) fn next_due_ns(&self) -> Option<u64> {
        match self {
            Link::Plain(p) => p.next_due_ns(),
            Link::Reconnecting(p) => p.next_due_ns(),
        }
    }

    /// The poller's descriptor (made on first use).
    pub(crate) fn poll_fd(&self) -> Result<RawFd, Error> {
        match self {
            Link::Plain(p) => p.poll_fd(),
            Link::Reconnecting(p) => p.poll_fd(),
        }
    }

    /// The server's refusal, for a plain port that saw one (a reconnecting port reports
    /// refusals in its state and keeps trying).
    pub(crate) fn refusal(&self) -> Option<&str> {
        self.plain().and_then(SocketPort::refusal)
    }

    /// Where the connection stands: a plain port is connected until it is closed.
    pub(crate) fn state(&self) -> LinkState {
        match self {
            Link::Plain(p) if p.is_closed() => LinkState::Closed,
            Link::Plain(_) => LinkState::Connected,
            Link::Reconnecting(p) => p.state(),
        }
    }
}
