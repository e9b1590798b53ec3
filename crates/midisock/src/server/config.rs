//! [`ServerConfig`]: the server's limits, each with a documented default.

use crate::parser::DEFAULT_MAX_SYSEX_LEN;

/// Limits that keep a server's memory bounded whatever its clients do.
///
/// ```
/// let config = midisock::ServerConfig::default().max_clients(64).max_client_queue(256 * 1024);
/// assert_eq!(config.max_clients, 64);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Longest sysex payload accepted from a client; longer ones are dropped while they stream in.
    /// Default: 1 MiB.
    pub max_sysex_len: usize,
    /// Bytes of broadcast output that may wait for one client. A client that falls further behind
    /// has stopped reading and is disconnected, so it can never stall the server or the others.
    /// Default: 1 MiB.
    pub max_client_queue: usize,
    /// Connections served at once; a connection over the limit is closed as soon as it is
    /// accepted. Default: 1,024.
    pub max_clients: usize,
    /// Bytes of received messages waiting for `receive()`. When the program reads slower than
    /// clients send, the server stops reading sockets (TCP pushes back on the clients) instead of
    /// buffering without bound; nothing is dropped. Default: 16 MiB.
    pub max_inbox_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_sysex_len: DEFAULT_MAX_SYSEX_LEN,
            max_client_queue: 1 << 20,
            max_clients: 1024,
            max_inbox_bytes: 16 << 20,
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::max_sysex_len`].
    pub fn max_sysex_len(mut self, bytes: usize) -> Self {
        self.max_sysex_len = bytes;
        self
    }

    /// Sets [`ServerConfig::max_client_queue`].
    pub fn max_client_queue(mut self, bytes: usize) -> Self {
        self.max_client_queue = bytes;
        self
    }

    /// Sets [`ServerConfig::max_clients`].
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients;
        self
    }

    /// Sets [`ServerConfig::max_inbox_bytes`].
    pub fn max_inbox_bytes(mut self, bytes: usize) -> Self {
        self.max_inbox_bytes = bytes;
        self
    }
}
