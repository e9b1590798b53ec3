//! The refusal notice: how a server tells a client, in words, why it closed the connection.
//!
//! A server that refuses a connection (allowlist, token, lockout, too many clients, a hello that
//! came too slowly, the wrong transport) writes one notice, best effort, as the first and only
//! bytes of the connection, then closes it: `F4`, `refused: <cause>` as 7-bit ASCII, `F7`.
//! Like the token hello ([`crate::auth`]), the bytes are ignored by any MIDI parser — `F4` is an
//! undefined status byte, the ASCII bytes are data bytes with no status, `F7` outside a sysex
//! only cancels a partial message — so a mido client that is refused sees exactly what it saw
//! before: a connection that ends. A midisock client recognises the notice when it is the first
//! thing the connection delivers, and reports the cause instead of a bare "closed".

use std::fmt;

const NOTICE_START: u8 = 0xF4;
const NOTICE_END: u8 = 0xF7;
const PREFIX: &[u8] = b"refused: ";
/// The longest notice on the wire (start, prefix, cause, end): a client reads at most this many
/// bytes looking for one.
pub(crate) const MAX_NOTICE_LEN: usize = 128;

/// Why a server refused a connection. The wire form is the `Display` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalCause {
    /// The client's address is not in the server's allowlist.
    NotAllowed,
    /// The client sent no token, or the wrong one.
    InvalidToken,
    /// The client's address failed authentication too often and is locked out for a while.
    LockedOut,
    /// The server already serves its maximum number of clients.
    TooManyClients,
    /// The client did not finish its hello (or TLS handshake) within the server's deadline.
    TooSlow,
    /// The server requires TLS and the client spoke plain MIDI.
    TlsRequired,
    /// The client started a TLS handshake and the server speaks plain MIDI.
    TlsNotOffered,
    /// The server has no file descriptor left for the connection.
    OutOfResources,
}

impl RefusalCause {
    /// Every cause, for tests and for mapping the wire text back.
    pub const ALL: [RefusalCause; 8] = [
        RefusalCause::NotAllowed,
        RefusalCause::InvalidToken,
        RefusalCause::LockedOut,
        RefusalCause::TooManyClients,
        RefusalCause::TooSlow,
        RefusalCause::TlsRequired,
        RefusalCause::TlsNotOffered,
        RefusalCause::OutOfResources,
    ];

    /// The cause as it travels: lower-case words, printable ASCII.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCause::NotAllowed => "address not allowed",
            RefusalCause::InvalidToken => "missing or wrong token",
            RefusalCause::LockedOut => "too many failed attempts from this address, locked out for a while",
            RefusalCause::TooManyClients => "too many clients",
            RefusalCause::TooSlow => "hello not finished in time",
            RefusalCause::TlsRequired => "this server requires TLS",
            RefusalCause::TlsNotOffered => "this server does not speak TLS",
            RefusalCause::OutOfResources => "server out of file descriptors",
        }
    }
}

impl fmt::Display for RefusalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bytes a server writes before closing a connection it refuses.
pub(crate) fn notice(cause: RefusalCause) -> Vec<u8> {
    let text = cause.as_str().as_bytes();
    let mut bytes = Vec::with_capacity(text.len() + PREFIX.len() + 2);
    bytes.push(NOTICE_START);
    bytes.extend_from_slice(PREFIX);
    bytes.extend_from_slice(text);
    bytes.push(NOTICE_END);
    debug_assert!(bytes.len() <= MAX_NOTICE_LEN);
    bytes
}

/// What the first bytes a client received say about a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NoticeScan {
    /// Not a notice: the bytes are the MIDI stream (or whatever the peer sent).
    NotANotice,
    /// A prefix of a notice; read more (up to [`MAX_NOTICE_LEN`]) before deciding.
    NeedMore,
    /// A whole notice: the cause text as sent (a known [`RefusalCause`] or a newer server's
    /// words), and the number of bytes it took.
    Refused { cause: String, len: usize },
}

/// Looks for a notice at the start of `received` (the first bytes of a connection).
pub(crate) fn scan(received: &[u8]) -> NoticeScan {
    let expected_head = [&[NOTICE_START][..], PREFIX].concat();
    let head_len = received.len().min(expected_head.len());
    if received[..head_len] != expected_head[..head_len] {
        return NoticeScan::NotANotice;
    }
    if received.len() <= expected_head.len() {
        return NoticeScan::NeedMore;
    }
    // Only the first MAX_NOTICE_LEN bytes decide, so the verdict never depends on how the
    // stream was cut into reads.
    let window = &received[expected_head.len()..received.len().min(MAX_NOTICE_LEN)];
    let printable = |bytes: &[u8]| bytes.iter().all(|b| (0x20..=0x7E).contains(b));
    match window.iter().position(|&b| b == NOTICE_END) {
        // A server always says why: an empty cause is not a notice.
        Some(0) => NoticeScan::NotANotice,
        Some(end) if printable(&window[..end]) => NoticeScan::Refused {
            cause: String::from_utf8_lossy(&window[..end]).into_owned(),
            len: expected_head.len() + end + 1,
        },
        Some(_) => NoticeScan::NotANotice,
        None if received.len() >= MAX_NOTICE_LEN || !printable(window) => NoticeScan::NotANotice,
        None => NoticeScan::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;

    #[test]
    fn every_notice_scans_back_to_its_cause() {
        for cause in RefusalCause::ALL {
            let bytes = notice(cause);
            assert!(bytes.len() <= MAX_NOTICE_LEN);
            assert_eq!(scan(&bytes), NoticeScan::Refused { cause: cause.as_str().into(), len: bytes.len() });
            for cut in 0..bytes.len() {
                assert_eq!(scan(&bytes[..cut]), NoticeScan::NeedMore, "{cause:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn midi_streams_are_not_notices() {
        assert_eq!(scan(&[0x90, 60, 64]), NoticeScan::NotANotice);
        assert_eq!(scan(&[0xF4, b'x']), NoticeScan::NotANotice);
        assert_eq!(scan(b"\xF4refused: \x90"), NoticeScan::NotANotice);
        assert_eq!(scan(b"\xF4refused: \xF7"), NoticeScan::NotANotice, "no cause");
    }

    #[test]
    fn only_the_first_bytes_decide_whatever_the_reads() {
        // A notice whose end lies past MAX_NOTICE_LEN is MIDI (ignored bytes), in one read or many.
        let mut long = b"\xF4refused: ".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_NOTICE_LEN));
        long.push(NOTICE_END);
        assert_eq!(scan(&long), NoticeScan::NotANotice);
        assert_eq!(scan(&long[..MAX_NOTICE_LEN]), NoticeScan::NotANotice);
        assert_eq!(scan(&long[..MAX_NOTICE_LEN - 1]), NoticeScan::NeedMore);
    }

    #[test]
    fn a_midi_parser_ignores_a_notice() {
        let mut parser = Parser::new();
        let mut bytes = notice(RefusalCause::InvalidToken);
        bytes.extend_from_slice(&[0x90, 60, 64]);
        let mut messages = Vec::new();
        parser.feed(&bytes, |m| messages.push(m));
        assert_eq!(messages.len(), 1, "only the note after the notice: {messages:?}");
    }
}
