//! [`ServerConfig`]: the server's limits, each with a documented default.

use super::events::{EventHook, ServerEvent};
use crate::error::{Error, Result};
use crate::parser::DEFAULT_MAX_SYSEX_LEN;
use crate::timing::{DelayMode, PlayoutConfig};
use crate::tls::TlsServer;
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;

/// What the server does with sysex messages from clients.
///
/// A sysex from an untrusted peer can overwrite the patches stored in a synthesizer. Servers that
/// drive real instruments from untrusted peers should deny it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SysexPolicy {
    /// Deliver sysex up to `max_sysex_len` bytes (the default).
    #[default]
    Allow,
    /// Drop every sysex from clients (counted in [`crate::ServerStats::sysex_denied`]).
    Deny,
}

/// Limits that keep a server's memory bounded whatever its clients do.
///
/// ```
/// let config = midisock::ServerConfig::default().max_clients(64).max_client_queue(256 * 1024);
/// assert_eq!(config.max_clients, 64);
/// ```
#[derive(Clone, Debug, PartialEq)]
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
    /// Memory that received messages waiting for `receive()` may take: 48 bytes per queued
    /// message (a one-byte clock costs as much as a note), plus each sysex payload. When the
    /// program reads slower than clients send, the server stops reading sockets (TCP pushes back
    /// on the clients) instead of buffering without bound; nothing is dropped. The queue may pass
    /// the bound by at most one sysex message (whose bytes were read before it completed) and the
    /// few note-offs released for a departing client. Its memory is given back once the program
    /// has read everything. The queue allocates in 96 KiB blocks, so a bound below 192 KiB acts
    /// as 192 KiB.
    ///
    /// With [`ServerConfig::jitter_buffer`], messages waiting in the clients' jitter buffers
    /// count too, at the same cost each. When the buffers hold more than half the bound and a
    /// read has no room, the buffers holding the most deliver their oldest messages early (to
    /// the queue, never dropped; counted in each client's
    /// [`crate::timing::PlayoutStats::delivered_early_full`]) until they hold a quarter of it;
    /// moving them may pass the bound by one 96 KiB block. Default: 16 MiB.
    pub max_inbox_bytes: usize,
    /// Sysex from clients: allowed (up to `max_sysex_len`) or denied. Default: allowed.
    pub sysex: SysexPolicy,
    /// Peer addresses allowed to connect (addresses and CIDR ranges; IPv4-mapped IPv6 peers are
    /// matched as IPv4). A denied peer is closed before any byte is read. Empty (the default)
    /// allows everyone.
    pub allow: Vec<IpNet>,
    /// Forward every message from a client to every other client (a hub), as well as to
    /// `receive()`. Default: off.
    pub relay: bool,
    /// Shared token clients must present (see [`crate::ConnectOptions::token`]): a connection whose
    /// first bytes are not the right hello within `auth_timeout` is closed, and an address that
    /// fails 5 times within a minute is refused for the rest of that minute. Default: none (no
    /// authentication; a hello sent anyway is ignored).
    pub token: Option<String>,
    /// How long a new connection has to finish its TLS handshake and send its hello, when TLS or
    /// a token is set. Default: 5 s.
    pub auth_timeout: Duration,
    /// TLS for every connection (see [`crate::TlsServer`]). Default: none — plain TCP, which is
    /// what mido speaks.
    pub tls: Option<TlsServer>,
    /// On close, how long the server may spend writing what it still has queued for clients
    /// before it closes their connections. Default: 1 s.
    pub shutdown_flush: Duration,
    /// Called for every connection that comes, goes or is refused (see [`ServerEvent`] for the
    /// thread it runs on and what it may do). Default: none.
    pub on_event: Option<EventHook>,
    /// A playout (jitter) buffer for what each client sends: the server asks every admitted
    /// client to stamp its messages, and delivers each one (to `receive()`) at its sender time
    /// plus that client's estimated offset plus the delay the config chooses; each client has
    /// its own buffer (see [`crate::timing`]). Clients that do not speak the extension (mido)
    /// ignore the request and are received on arrival, as without it, and cost no more memory:
    /// a client's buffer is built when its first stamped message arrives. Messages waiting in
    /// the buffers count in `max_inbox_bytes` (see there for what happens when they fill it);
    /// each buffer also holds at most its `capacity` messages and `max_sysex_bytes` of sysex.
    /// [`crate::PortServer::playout_stats`] reports each buffer. Default: none.
    pub jitter_buffer: Option<PlayoutConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_sysex_len: DEFAULT_MAX_SYSEX_LEN,
            max_client_queue: 1 << 20,
            max_clients: 1024,
            max_inbox_bytes: 16 << 20,
            sysex: SysexPolicy::Allow,
            allow: Vec::new(),
            relay: false,
            token: None,
            auth_timeout: Duration::from_secs(5),
            tls: None,
            shutdown_flush: Duration::from_secs(1),
            on_event: None,
            jitter_buffer: None,
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::jitter_buffer`] to `mode` with the other playout settings at their
    /// defaults ([`PlayoutConfig::new`]).
    pub fn jitter_buffer(mut self, mode: DelayMode) -> Self {
        self.jitter_buffer = Some(PlayoutConfig::new(mode));
        self
    }

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

    /// Sets [`ServerConfig::sysex`].
    pub fn sysex(mut self, policy: SysexPolicy) -> Self {
        self.sysex = policy;
        self
    }

    /// Adds an address or CIDR range (`"192.168.1.0/24"`, `"::1"`, `"10.0.0.7"`) to
    /// [`ServerConfig::allow`].
    pub fn allow(mut self, peer: &str) -> Result<Self> {
        self.allow.push(parse_peer_range(peer)?);
        Ok(self)
    }

    /// Sets [`ServerConfig::relay`].
    pub fn relay(mut self, on: bool) -> Self {
        self.relay = on;
        self
    }

    /// Sets [`ServerConfig::token`]: 1–128 printable ASCII characters.
    pub fn token(mut self, token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        crate::auth::validate_token(&token)?;
        self.token = Some(token);
        Ok(self)
    }

    /// Sets [`ServerConfig::tls`].
    pub fn tls(mut self, tls: TlsServer) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`ServerConfig::auth_timeout`].
    pub fn auth_timeout(mut self, limit: Duration) -> Self {
        self.auth_timeout = limit;
        self
    }

    /// Sets [`ServerConfig::shutdown_flush`].
    pub fn shutdown_flush(mut self, limit: Duration) -> Self {
        self.shutdown_flush = limit;
        self
    }

    /// Sets [`ServerConfig::on_event`]: `hook` runs on the server's I/O thread for each
    /// connection that comes, goes or is refused.
    ///
    /// ```
    /// let config = midisock::ServerConfig::default().on_event(|event| eprintln!("midisock: {event}"));
    /// # drop(config);
    /// ```
    pub fn on_event(mut self, hook: impl Fn(&ServerEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(EventHook::new(hook));
        self
    }

    /// True when `peer` may connect.
    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.allow.is_empty() || self.allow.iter().any(|range| range.contains(&peer))
    }
}

/// Parses an allowlist entry: a CIDR range or a single address (a /32 or /128 range).
fn parse_peer_range(text: &str) -> Result<IpNet> {
    let text = text.trim();
    let bad = |reason| Error::AddressSyntax { address: text.to_owned(), reason };
    if text.contains('/') {
        let net: IpNet = text.parse().map_err(|_| bad("not an address range like 192.168.1.0/24 or fd00::/8"))?;
        Ok(net.trunc())
    } else {
        let ip: IpAddr = text.trim_matches(['[', ']']).parse().map_err(|_| bad("not an IP address"))?;
        Ok(IpNet::from(ip.to_canonical()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_matches_ranges_and_mapped_addresses() {
        let config = ServerConfig::default().allow("10.1.0.0/16").unwrap().allow("::1").unwrap();
        assert!(config.allows("10.1.2.3".parse().unwrap()));
        assert!(config.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(config.allows("::1".parse().unwrap()));
        assert!(!config.allows("10.2.0.1".parse().unwrap()));
        assert!(!config.allows("127.0.0.1".parse().unwrap()));
        assert!(ServerConfig::default().allows("203.0.113.9".parse().unwrap()));
        let mapped_entry = ServerConfig::default().allow("::ffff:127.0.0.1").unwrap();
        assert!(mapped_entry.allows("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", ""] {
            assert!(ServerConfig::default().allow(bad).is_err(), "{bad}");
        }
    }
}
