//! `connect`'s connection: a plain port, which ends when the server goes away, or (with
//! `--reconnect`) the core's reconnecting port, which keeps coming back with backoff.

use midisock::{Message, ReconnectingPort, SocketPort};

pub enum Client {
    Plain(SocketPort),
    Reconnecting(ReconnectingPort),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple(if matches!(self, Client::Plain(_)) { "Plain" } else { "Reconnecting" })
            .field(&self.name())
            .finish()
    }
}

impl Client {
    pub fn name(&self) -> &str {
        match self {
            Client::Plain(port) => port.name(),
            Client::Reconnecting(port) => port.name(),
        }
    }

    /// The next message; across reconnects for a reconnecting port (note-offs for the notes the
    /// server left sounding come first after a drop).
    pub fn receive(&self) -> midisock::Result<Message> {
        match self {
            Client::Plain(port) => port.receive(),
            Client::Reconnecting(port) => port.receive(),
        }
    }

    /// The jitter buffer's state (a reconnecting port's: its current connection's); None
    /// without one.
    pub fn playout_stats(&self) -> Option<midisock::timing::PlayoutStats> {
        match self {
            Client::Plain(port) => port.playout_stats(),
            Client::Reconnecting(port) => port.playout_stats(),
        }
    }

    pub fn close(&self) {
        match self {
            Client::Plain(port) => port.close(),
            Client::Reconnecting(port) => port.close(),
        }
    }
}

impl crate::held::Destination for Client {
    fn send_all(&self, messages: &[Message]) -> midisock::Result<()> {
        match self {
            Client::Plain(port) => port.send_all(messages),
            Client::Reconnecting(port) => port.send_all(messages),
        }
    }
}
