//! The negotiation of sender timestamps: a request and an answer, both ignored by MIDI parsers.
//!
//! The side that wants stamps (its user turned a jitter buffer on) writes [`STAMP_REQUEST`] at the
//! start of its outgoing stream — after the token hello if it has one, so a server's token check
//! still sees the token first. A peer that understands the request and agrees writes
//! [`STAMP_ANSWER`] into its own outgoing stream, between two messages, and stamps every message
//! it writes after it. The answer marks the exact byte where stamps begin, so nothing races: the
//! asking side parses plain MIDI until it reads the answer and stamped messages after it.
//!
//! A peer that does not understand the request (mido, aseqnet, an older midisock) never answers,
//! so it never writes a stamp, and the asking side keeps receiving today's plain stream (its
//! messages are delivered at arrival). The bytes are chosen so such a peer ignores the request:
//! `F4` is an undefined status byte (ignored), the following bytes are data bytes with no status
//! in effect at the start of a stream (ignored), and `F7` outside a sysex only cancels a partial
//! message — the same reasoning as the token hello and the refusal notice.
//!
//! Both start `F4 00`: a token is printable ASCII and a refusal notice starts `F4 'r'`, so neither
//! can be mistaken for a timing hello, and a timing hello can never pass a server's token check.
//!
//! ```text
//! request: F4 00 's' 't' 'a' 'm' 'p' 's' '?' <versions: 1-8 bytes, 01-7F> F7
//! answer:  F4 00 's' 't' 'a' 'm' 'p' 's' '!' <version: 1 byte>            F7
//! ```
//! This crate speaks version 1; a newer requester lists every version it speaks and the answer
//! names the one chosen.

const START: u8 = 0xF4;
const END: u8 = 0xF7;
/// The bytes after `F4` common to both hellos (the `00` keeps them apart from tokens and notices).
const TAG: &[u8] = b"\x00stamps";
/// The stamp wire form this crate writes and reads.
pub const STAMP_VERSION: u8 = 1;
/// Most versions a request may list.
const MAX_VERSIONS: usize = 8;
/// The longest hello: start, tag, `?`/`!`, versions, end. A decoder holds at most this many
/// bytes while it decides whether an `F4` starts a hello.
pub(crate) const MAX_HELLO_LEN: usize = 1 + TAG.len() + 1 + MAX_VERSIONS + 1;

/// What the side that wants stamps writes first (after any token hello).
pub const STAMP_REQUEST: &[u8] = b"\xF4\x00stamps?\x01\xF7";
/// What the stamping side writes, between two messages, right before its first stamped message.
pub const STAMP_ANSWER: &[u8] = b"\xF4\x00stamps!\x01\xF7";

/// A complete hello recognised in a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hello {
    /// The peer asks for stamps; `speaks_ours` is true when it lists [`STAMP_VERSION`] (answer
    /// only then: a request for versions we do not speak is left unanswered).
    Request { speaks_ours: bool },
    /// The peer stamps every message after this hello, in the given wire version.
    Answer { version: u8 },
}

/// Whether bytes collected since an `F4` are a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HelloMatch {
    /// A proper prefix of a hello: read more.
    Prefix,
    /// A complete hello.
    Complete(Hello),
    /// Not a hello (the last byte broke the pattern).
    No,
}

/// Classifies `bytes`, which start with `F4`, against both hellos.
pub(crate) fn classify(bytes: &[u8]) -> HelloMatch {
    debug_assert_eq!(bytes.first(), Some(&START));
    let after_start = &bytes[1..];
    let tag_seen = after_start.len().min(TAG.len());
    if after_start[..tag_seen] != TAG[..tag_seen] {
        return HelloMatch::No;
    }
    let Some((&kind, rest)) = after_start[TAG.len().min(after_start.len())..].split_first() else {
        return HelloMatch::Prefix;
    };
    if after_start.len() < TAG.len() {
        return HelloMatch::Prefix;
    }
    let max_versions = match kind {
        b'?' => MAX_VERSIONS,
        b'!' => 1,
        _ => return HelloMatch::No,
    };
    let versions_len = rest.iter().position(|&b| b == END).unwrap_or(rest.len());
    let versions = &rest[..versions_len];
    if versions.len() > max_versions || versions.iter().any(|&v| v == 0 || v > 0x7F) {
        return HelloMatch::No;
    }
    if versions_len == rest.len() {
        return HelloMatch::Prefix;
    }
    if versions.is_empty() || versions_len + 1 != rest.len() {
        return HelloMatch::No;
    }
    HelloMatch::Complete(match kind {
        b'?' => Hello::Request { speaks_ours: versions.contains(&STAMP_VERSION) },
        _ => Hello::Answer { version: versions[0] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;

    fn classify_stream(bytes: &[u8]) -> HelloMatch {
        let mut last = HelloMatch::No;
        for end in 1..=bytes.len() {
            last = classify(&bytes[..end]);
            if end < bytes.len() {
                assert_eq!(last, HelloMatch::Prefix, "{bytes:02X?} cut at {end}");
            }
        }
        last
    }

    #[test]
    fn both_hellos_are_recognised_byte_by_byte() {
        assert_eq!(classify_stream(STAMP_REQUEST), HelloMatch::Complete(Hello::Request { speaks_ours: true }));
        assert_eq!(classify_stream(STAMP_ANSWER), HelloMatch::Complete(Hello::Answer { version: 1 }));
        assert!(STAMP_REQUEST.len() <= MAX_HELLO_LEN);
    }

    #[test]
    fn a_newer_request_lists_versions() {
        let newer = b"\xF4\x00stamps?\x02\x01\xF7";
        assert_eq!(classify(newer), HelloMatch::Complete(Hello::Request { speaks_ours: true }));
        let only_newer = b"\xF4\x00stamps?\x02\xF7";
        assert_eq!(classify(only_newer), HelloMatch::Complete(Hello::Request { speaks_ours: false }));
    }

    #[test]
    fn near_misses_are_not_hellos() {
        for bytes in [
            &b"\xF4secret\xF7"[..],
            b"\xF4refused: too many clients\xF7",
            b"\xF4\x00stamps?\xF7",
            b"\xF4\x00stamps!\x01\x01\xF7",
            b"\xF4\x00stamps?\x01\x01\x01\x01\x01\x01\x01\x01\x01\xF7",
            b"\xF4\x00stamps?\x00\xF7",
            b"\xF4\x00stamps=\x01\xF7",
            b"\xF4\x00stamps?\x01\x90",
        ] {
            let verdict = (1..=bytes.len()).map(|end| classify(&bytes[..end])).find(|m| *m != HelloMatch::Prefix);
            assert_eq!(verdict, Some(HelloMatch::No), "{bytes:02X?}");
        }
    }

    #[test]
    fn a_midi_parser_ignores_a_request_at_a_stream_start_or_after_a_token_hello() {
        // Where a request is written: the first bytes of a stream, or right after the token hello.
        for prefix in [&b""[..], b"\xF4token\xF7"] {
            let mut stream = prefix.to_vec();
            stream.extend_from_slice(STAMP_REQUEST);
            stream.extend_from_slice(&[0x90, 60, 64]);
            let mut parser = Parser::new();
            let mut messages = Vec::new();
            parser.feed(&stream, |m| messages.push(m));
            assert_eq!(messages, [crate::Message::NoteOn { channel: 0, note: 60, velocity: 64 }]);
            assert_eq!(parser.stats().partial_messages_dropped, 0);
        }
    }

    #[test]
    fn a_hello_is_never_a_valid_token() {
        assert!(crate::auth::validate_token(std::str::from_utf8(&STAMP_REQUEST[1..STAMP_REQUEST.len() - 1]).unwrap())
            .is_err());
    }
}
