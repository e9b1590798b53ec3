//! Test and benchmark support for midisock (not published).
//!
//! - [`JitterProxy`]: a loopback TCP proxy that holds each chunk for a random delay while keeping
//!   the stream in order — a jittery link for tests and benchmarks on a machine without `netem`.
//! - [`DelayDistribution`] and [`SplitMix64`]: the delays it draws, reproducible from a seed.
//! - [`latency`]: one-way latency of a 1 kHz stream through the proxy, received by plain TCP or
//!   by a midisock port with or without its jitter buffer (the real API).
//!
//! The `midisock-jitter-proxy` binary runs the proxy by hand; the `playout_latency` example
//! prints [`latency`]'s measurements with and without the playout buffer.

mod jitter_proxy;
pub mod latency;
pub mod mido_peer;
mod random;

pub use jitter_proxy::{JitterProxy, ProxyConfig, ProxyStats};
pub use mido_peer::MidoPeer;
pub use random::{DelayDistribution, ParseDelayError, SplitMix64};
