//! Addresses: `host:port` text, and what a host means for connecting and for listening.
//!
//! - `host:port` or `[v6addr]:port`; the port is 0–65535 (0 = any free port, for listening).
//! - host `""`, `0.0.0.0` and `::` mean "any address": `""` and `::` listen on every IPv4 and IPv6
//!   address (one dual-stack socket), `0.0.0.0` on every IPv4 address only.
//! - `localhost` (like any name) means every address it resolves to: a server listens on all of
//!   them (127.0.0.1 and ::1), a client tries them in order.

use crate::error::{Error, Result};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// A host and a port, as the user wrote them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Host name or IP address text, without brackets; empty for "any".
    pub host: String,
    pub port: u16,
}

impl Address {
    /// An address from its parts, like mido's `connect(host, port)`.
    pub fn new(host: impl Into<String>, port: u16) -> Address {
        let host = host.into();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).map(str::to_owned).unwrap_or(host);
        Address { host, port }
    }

    /// True when the host means "any address" (`""`, `0.0.0.0`, `::`).
    pub fn is_any(&self) -> bool {
        self.host.is_empty() || self.host == "0.0.0.0" || self.host == "::"
    }

    /// The addresses a client should try, in resolver order.
    pub(crate) fn resolve_for_connect(&self) -> Result<Vec<SocketAddr>> {
        // "Any" is not a destination; like most tools, treat it as this machine.
        let host = if self.is_any() { "localhost" } else { self.host.as_str() };
        self.resolve_host(host)
    }

    /// The addresses a server should listen on.
    pub(crate) fn resolve_for_bind(&self) -> Result<Vec<SocketAddr>> {
        match self.host.as_str() {
            // One dual-stack socket on :: receives IPv4 too (see `bind_listener`).
            "" | "::" => Ok(vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), self.port)]),
            "0.0.0.0" => Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.port)]),
            host => self.resolve_host(host),
        }
    }

    fn resolve_host(&self, host: &str) -> Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let mut addrs: Vec<SocketAddr> = (host, self.port)
            .to_socket_addrs()
            .map_err(|source| Error::Resolve { host: host.to_owned(), source })?
            .collect();
        // Resolvers list an address once per socket type; keep the first of each.
        let mut seen = Vec::new();
        addrs.retain(|a| {
            let fresh = !seen.contains(a);
            seen.push(*a);
            fresh
        });
        if addrs.is_empty() {
            return Err(Error::Resolve {
                host: host.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        Ok(addrs)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(text: &str) -> Result<Address> {
        let bad = |reason| Error::AddressSyntax { address: text.to_owned(), reason };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']' after IPv6 address"))?;
            let port = after.strip_prefix(':').ok_or_else(|| bad("expected ':port' after ']'"))?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address between the brackets"));
            }
            (host, port)
        } else {
            let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("expected host:port"))?;
            if host.contains(':') {
                return Err(bad("an IPv6 address needs brackets, as in [::1]:8080"));
            }
            (host, port)
        };
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("host contains white space"));
        }
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("port must be a number 0-65535"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("port must be a number 0-65535"))?;
        Ok(Address { host: host.to_owned(), port })
    }
}

/// Anything that names an address: `"host:port"`, `("host", port)`, an [`Address`] or a
/// `SocketAddr`.
pub trait IntoAddress {
    fn into_address(self) -> Result<Address>;
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address> {
        self.parse()
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address> {
        self.parse()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address> {
        self.parse()
    }
}

impl IntoAddress for (&str, u16) {
    fn into_address(self) -> Result<Address> {
        Ok(Address::new(self.0, self.1))
    }
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address> {
        Ok(self.clone())
    }
}

impl IntoAddress for SocketAddr {
    fn into_address(self) -> Result<Address> {
        Ok(Address::new(self.ip().to_string(), self.port()))
    }
}

/// `host:port` for a socket address, with brackets for IPv6 and IPv4-mapped addresses unmapped.
pub(crate) fn socket_addr_name(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", addr.port()),
            None => format!("[{v6}]:{}", addr.port()),
        },
        IpAddr::V4(v4) => format!("{v4}:{}", addr.port()),
    }
}
