//! Test and benchmark support for midisock (not published).
//!
//! - [`JitterProxy`]: a loopback TCP proxy that holds each chunk for a random delay while keeping
//!   the stream in order — a jittery link for tests and benchmarks on a machine without `netem`.
//! - [`DelayDistribution`] and [`SplitMix64`]: the delays it draws, reproducible from a seed.
//!
//! The `midisock-jitter-proxy` binary runs the proxy by hand; the `playout_latency` example
//! measures one-way latency through it with and without the playout buffer.

mod jitter_proxy;
mod random;

pub use jitter_proxy::{JitterProxy, ProxyConfig, ProxyStats};
pub use random::{DelayDistribution, ParseDelayError, SplitMix64};
