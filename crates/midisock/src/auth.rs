//! Optional shared-token authentication.
//!
//! A client proves it knows the server's token by sending a hello as its very first bytes:
//! `F4`, the token as 7-bit ASCII, `F7`. The bytes are chosen so that a peer which does not
//! expect them ignores them: `F4` is an undefined status byte (ignored), the ASCII bytes are data
//! bytes with no status (ignored), and `F7` outside a sysex only cancels a partial message. So a
//! client with a token can talk to a mido server, or a midisock server without auth, unchanged.
//!
//! The token travels in clear text: it keeps strangers on a shared network from playing your
//! synths, not an eavesdropper from learning it. Use it on trusted networks.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const HELLO_START: u8 = 0xF4;
const HELLO_END: u8 = 0xF7;
/// The longest token accepted.
pub const MAX_TOKEN_LEN: usize = 128;

/// Checks that a token can travel in a hello: 1–128 printable ASCII characters.
pub fn validate_token(token: &str) -> Result<()> {
    let printable = token.bytes().all(|b| (0x20..=0x7E).contains(&b));
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || !printable {
        return Err(Error::InvalidToken);
    }
    Ok(())
}

/// The hello a client sends for `token` (already validated).
pub(crate) fn hello(token: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(token.len() + 2);
    bytes.push(HELLO_START);
    bytes.extend_from_slice(token.as_bytes());
    bytes.push(HELLO_END);
    bytes
}

/// Where a server's check of a client's hello stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    NeedMore,
    Accepted,
    Rejected,
}

/// Checks a hello byte by byte, so the server never reads past it: what follows belongs to the
/// MIDI stream (and to whoever the connection is handed to).
#[derive(Debug)]
pub(crate) struct HelloCheck {
    expected: Vec<u8>,
    seen: usize,
    /// Stays 0 while every byte matched; compared only at the end, so the time taken does not
    /// reveal where a wrong token first differs.
    mismatch: u8,
}

impl HelloCheck {
    pub(crate) fn new(token: &str) -> HelloCheck {
        HelloCheck { expected: hello(token), seen: 0, mismatch: 0 }
    }

    pub(crate) fn feed(&mut self, byte: u8) -> Verdict {
        let expected = self.expected.get(self.seen).copied();
        self.seen += 1;
        match expected {
            // Longer than the expected hello: wrong whatever follows.
            None => Verdict::Rejected,
            Some(expected) => {
                self.mismatch |= byte ^ expected;
                if byte == HELLO_END || self.seen == self.expected.len() {
                    if self.mismatch == 0 && self.seen == self.expected.len() {
                        Verdict::Accepted
                    } else {
                        Verdict::Rejected
                    }
                } else if self.seen == 1 && byte != HELLO_START {
                    Verdict::Rejected
                } else {
                    Verdict::NeedMore
                }
            }
        }
    }
}

/// Rate limit for failed hellos, per peer address: after `MAX_FAILURES` within `WINDOW`, the
/// address is refused at once (before any byte is read) until the window ends.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    by_peer: HashMap<IpAddr, (u32, Instant)>,
}

const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; a flood of addresses cannot grow the table without bound.
const MAX_TRACKED: usize = 4096;

impl FailureLimiter {
    pub(crate) fn is_blocked(&mut self, peer: IpAddr, now: Instant) -> bool {
        match self.by_peer.get(&peer.to_canonical()) {
            Some(&(count, since)) if now.duration_since(since) < WINDOW => count >= MAX_FAILURES,
            _ => false,
        }
    }

    pub(crate) fn record_failure(&mut self, peer: IpAddr, now: Instant) {
        if self.by_peer.len() >= MAX_TRACKED {
            self.by_peer.retain(|_, &mut (_, since)| now.duration_since(since) < WINDOW);
            if self.by_peer.len() >= MAX_TRACKED {
                // Still full of fresh entries: forget the oldest rather than grow.
                if let Some(oldest) = self.by_peer.iter().min_by_key(|(_, &(_, since))| since).map(|(ip, _)| *ip) {
                    self.by_peer.remove(&oldest);
                }
            }
        }
        let entry = self.by_peer.entry(peer.to_canonical()).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(token: &str, bytes: &[u8]) -> Verdict {
        let mut check = HelloCheck::new(token);
        let mut verdict = Verdict::NeedMore;
        for &b in bytes {
            verdict = check.feed(b);
            if verdict != Verdict::NeedMore {
                break;
            }
        }
        verdict
    }

    #[test]
    fn hello_checks() {
        assert_eq!(check("secret", &hello("secret")), Verdict::Accepted);
        assert_eq!(check("secret", &hello("secreT")), Verdict::Rejected);
        assert_eq!(check("secret", &hello("secre")), Verdict::Rejected);
        assert_eq!(check("secret", &hello("secrets")), Verdict::Rejected);
        assert_eq!(check("secret", &[0x90, 60, 64]), Verdict::Rejected);
        assert_eq!(check("secret", &hello("secret")[..4]), Verdict::NeedMore);
    }

    #[test]
    fn tokens_must_be_printable_ascii() {
        assert!(validate_token("a b~").is_ok());
        assert!(validate_token("").is_err());
        assert!(validate_token("é").is_err());
        assert!(validate_token("a\u{7f}").is_err());
        assert!(validate_token(&"x".repeat(129)).is_err());
    }

    #[test]
    fn limiter_blocks_after_repeated_failures_and_forgets_later() {
        let mut limiter = FailureLimiter::default();
        let peer: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(!limiter.is_blocked(peer, t0));
            limiter.record_failure(peer, t0);
        }
        assert!(limiter.is_blocked("10.0.0.1".parse().unwrap(), t0));
        assert!(!limiter.is_blocked("10.0.0.2".parse().unwrap(), t0));
        assert!(!limiter.is_blocked(peer, t0 + WINDOW));
    }
}
