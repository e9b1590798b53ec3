//! The receiving side: a push parser for a MIDI 1.0 byte stream.
//!
//! Feed it whatever chunks the socket returns; it calls you back once per complete message. Its
//! behaviour is the parser table of docs/protocol.md, row by row (each branch of
//! `Parser::feed_byte` says which row it implements and why). The invariant every row respects:
//! any split of the input into chunks yields the same messages — the parser keeps all state in
//! this one small struct and never looks ahead.
//!
//! Memory is bounded: a sysex longer than [`Parser::max_sysex_len`] is dropped while it streams in
//! (its bytes are counted and forgotten, never buffered whole), so no input can grow the parser
//! past that limit.

use crate::message::Message;
use crate::short_message::{build, build_realtime, build_two, data_len};
use std::fmt;

/// The default sysex payload limit: 1 MiB.
pub const DEFAULT_MAX_SYSEX_LEN: usize = 1 << 20;

/// Counters of input the parser ignored or dropped; the stream itself carries no error channel,
/// so this is how a user learns that a peer sent garbage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParserStats {
    /// Data bytes that arrived with no status in effect (ignored).
    pub stray_data_bytes: u64,
    /// Sysex messages dropped because they exceeded the size limit.
    pub sysex_overflows: u64,
    /// Sysex messages cut short by a status byte before their `F7` (dropped).
    pub sysex_aborted: u64,
    /// Channel or system common messages cut short by a status byte or `F7` (dropped).
    pub partial_messages_dropped: u64,
    /// Undefined status bytes (`F4`, `F5`, `F9`, `FD`) ignored.
    pub undefined_status_bytes: u64,
}

/// A MIDI 1.0 byte-stream push parser. See the module docs.
#[derive(Debug, Clone)]
pub struct Parser {
    max_sysex_len: usize,
    /// Status of the message in progress, or the running status between channel messages;
    /// 0 when none is in effect.
    status: u8,
    /// Data bytes collected for `status`.
    data: [u8; 2],
    have: u8,
    /// A status byte arrived and none of its data yet: a message is in progress even though
    /// `have` is 0 (unlike the quiet state between messages under running status).
    fresh_status: bool,
    in_sysex: bool,
    /// The current sysex passed the limit: its remaining bytes are skipped until `F7`.
    sysex_overflowed: bool,
    sysex: Vec<u8>,
    stats: ParserStats,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser with the default 1 MiB sysex limit.
    pub fn new() -> Parser {
        Parser::with_max_sysex_len(DEFAULT_MAX_SYSEX_LEN)
    }

    /// A parser that drops sysex messages whose payload (without `F0`/`F7`) exceeds `max` bytes.
    pub fn with_max_sysex_len(max: usize) -> Parser {
        Parser {
            max_sysex_len: max,
            status: 0,
            data: [0; 2],
            have: 0,
            fresh_status: false,
            in_sysex: false,
            sysex_overflowed: false,
            sysex: Vec::new(),
            stats: ParserStats::default(),
        }
    }

    /// The sysex payload limit.
    pub fn max_sysex_len(&self) -> usize {
        self.max_sysex_len
    }

    /// What the parser has ignored or dropped so far.
    pub fn stats(&self) -> ParserStats {
        self.stats
    }

    /// True when a message is partly received (its remaining bytes are still to come).
    pub fn is_mid_message(&self) -> bool {
        self.in_sysex || self.fresh_status || self.have > 0
    }

    /// Forgets any message in progress and the running status (counters are kept).
    pub fn reset(&mut self) {
        self.status = 0;
        self.have = 0;
        self.fresh_status = false;
        self.abort_sysex_silently();
    }

    /// Parses `bytes`, calling `emit` for every message they complete, in stream order.
    // NOTE: never inlined into the caller, so the hot loop is compiled the same way wherever it
    // is used (with `emit` inlined into it); inlined, its speed swung up to 2× with the caller's
    // surrounding code.
    #[inline(never)]
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Message)) {
        let mut at = 0;
        while at < bytes.len() {
            if !self.in_sysex && self.have == 0 && !self.fresh_status {
                // Between messages: take whole messages in one step for as long as they last.
                at = self.feed_whole_messages(bytes, at, &mut emit);
                let Some(&byte) = bytes.get(at) else { break };
                self.feed_byte(byte, &mut emit);
                at += 1;
            } else if self.in_sysex && bytes[at] < 0x80 {
                // Sysex payload: take the whole run of data bytes at once.
                let rest = &bytes[at..];
                let run = rest.iter().position(|&b| b >= 0x80).unwrap_or(rest.len());
                self.push_sysex_data(&rest[..run]);
                at += run;
            } else {
                self.feed_byte(bytes[at], &mut emit);
                at += 1;
            }
        }
    }

    /// The fast path, taken between messages: decodes whole channel messages — with their own
    /// status byte (as midisock and mido senders write them) or under running status — and
    /// real-time bytes, each in one step, until the input ends or holds something else (a
    /// message cut by the end of `bytes`, a sysex, system common, stray data). Returns where it
    /// stopped; the state it leaves is exactly what the byte-by-byte path would.
    #[inline(always)]
    fn feed_whole_messages(&mut self, bytes: &[u8], mut at: usize, emit: &mut impl FnMut(Message)) -> usize {
        // The running status lives in a register while the loop runs. Between messages it is a
        // channel status or 0 (system common messages clear it).
        // NOTE: every arm advances `at` by a constant. Computing the data position as a value
        // (own status or running status) made each message's loads wait on the previous one's
        // classification; branches let the CPU run ahead on its prediction.
        let mut status = self.status;
        while let Some(&first) = bytes.get(at) {
            match first {
                // A channel message with two data bytes, with its own status byte.
                0x80..=0xBF | 0xE0..=0xEF => {
                    let Some(&[a, b]) = bytes.get(at + 1..at + 3) else { break };
                    if (a | b) >= 0x80 {
                        break;
                    }
                    status = first;
                    emit(build_two(first, a, b));
                    at += 3;
                }
                // A channel message with one data byte, with its own status byte.
                0xC0..=0xDF => {
                    let Some(&a @ 0..=0x7F) = bytes.get(at + 1) else { break };
                    status = first;
                    emit(build(first, [a, 0]));
                    at += 2;
                }
                // Data bytes under running status.
                0x00..=0x7F => match status {
                    0x80..=0xBF | 0xE0..=0xEF => {
                        let Some(&b @ 0..=0x7F) = bytes.get(at + 1) else { break };
                        emit(build_two(status, first, b));
                        at += 2;
                    }
                    0xC0..=0xDF => {
                        emit(build(status, [first, 0]));
                        at += 1;
                    }
                    _ => break,
                },
                // NOTE: tested after the channel arms. Testing real-time bytes first parsed a
                // clock-only stream 2.5× faster but the message mix 18 % slower.
                0xF8 | 0xFA..=0xFC | 0xFE | 0xFF => {
                    emit(build_realtime(first));
                    at += 1;
                }
                // Sysex, system common, undefined bytes: the byte path's rows.
                _ => break,
            }
        }
        self.status = status;
        at
    }

    /// Parses one byte.
    #[inline(always)]
    fn feed_byte(&mut self, byte: u8, emit: &mut impl FnMut(Message)) {
        match byte {
            // Data byte.
            0x00..=0x7F => {
                if self.in_sysex {
                    self.push_sysex_data(&[byte]);
                } else if self.status == 0 {
                    // Row "data byte with no status in effect": ignored, counted.
                    self.stats.stray_data_bytes += 1;
                } else {
                    self.data[usize::from(self.have)] = byte;
                    self.have += 1;
                    if self.have == data_len(self.status) {
                        emit(build(self.status, self.data));
                        self.have = 0;
                        self.fresh_status = false;
                        if self.status >= 0xF0 {
                            // System common messages never set running status.
                            self.status = 0;
                        }
                        // Row "0x80–0xEF": a channel status stays in effect (running status).
                    }
                }
            }
            // Row "0x80–0xEF + data": a channel status starts a message and sets running status.
            0x80..=0xEF => {
                self.interrupt();
                self.status = byte;
                self.fresh_status = true;
            }
            // Row "0xF0 … 0xF7": sysex start.
            0xF0 => {
                self.interrupt();
                self.status = 0;
                self.in_sysex = true;
                self.sysex_overflowed = false;
                self.sysex.clear();
            }
            // Row "0xF1, 0xF2, 0xF3, 0xF6": system common; cancels running status.
            0xF1..=0xF3 => {
                self.interrupt();
                self.status = byte;
                self.fresh_status = true;
            }
            0xF6 => {
                self.interrupt();
                self.status = 0;
                emit(Message::TuneRequest);
            }
            // Row "0xF4, 0xF5 (undefined common)": ignored, no state change.
            0xF4 | 0xF5 => self.stats.undefined_status_bytes += 1,
            0xF7 => {
                if self.in_sysex {
                    self.in_sysex = false;
                    if self.sysex_overflowed {
                        self.sysex_overflowed = false;
                    } else {
                        // Hand the buffer over rather than copy it; the next sysex allocates anew.
                        emit(Message::SysEx { data: std::mem::take(&mut self.sysex) });
                    }
                } else {
                    // Row "0xF7 outside sysex": drops a partial message, cancels running status.
                    self.interrupt();
                    self.status = 0;
                }
            }
            // Row "0xF9, 0xFD (undefined real-time)": ignored, no state change.
            0xF9 | 0xFD => self.stats.undefined_status_bytes += 1,
            // Row "0xF8–0xFF (real-time)": emitted at once, anywhere, without disturbing the
            // message in progress — a clock byte inside a note_on or a sysex is legal MIDI.
            0xF8 | 0xFA..=0xFC | 0xFE | 0xFF => emit(build_realtime(byte)),
        }
    }

    /// A non-real-time status byte arrived: whatever was in progress is cut short and dropped.
    fn interrupt(&mut self) {
        if self.in_sysex {
            if !self.sysex_overflowed {
                self.stats.sysex_aborted += 1;
            }
            self.abort_sysex_silently();
        }
        if self.have > 0 || self.fresh_status {
            self.stats.partial_messages_dropped += 1;
            self.have = 0;
            self.fresh_status = false;
        }
    }

    fn abort_sysex_silently(&mut self) {
        self.in_sysex = false;
        self.sysex_overflowed = false;
        self.sysex.clear();
    }

    fn push_sysex_data(&mut self, run: &[u8]) {
        if self.sysex_overflowed {
            return;
        }
        if self.sysex.len() + run.len() > self.max_sysex_len {
            // Row "sysex over the size limit": count it once and forget what we had. The capacity
            // is released too, so one flood does not pin a megabyte per connection.
            self.stats.sysex_overflows += 1;
            self.sysex_overflowed = true;
            self.sysex = Vec::new();
            return;
        }
        self.sysex.extend_from_slice(run);
    }
}

/// Why bytes that should be whole messages are not: the errors of [`decode_messages`],
/// [`Message::from_bytes`] and [`ShortMessage::from_bytes`](crate::ShortMessage::from_bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes hold no message at all (nothing, or only an `F7`).
    NoMessage,
    /// The bytes end inside a message (`[0x90, 60]`: a note_on needs two data bytes).
    Incomplete,
    /// The bytes hold stray data bytes, undefined status bytes or a message cut short by a
    /// status byte.
    Malformed,
    /// A single message was asked for and the bytes hold more, or it was not written canonically.
    NotSingleMessage,
    /// A short message was asked for and the bytes are a sysex.
    SysEx,
}

impl DecodeError {
    /// The error in words (what `Display` writes), without allocating.
    pub const fn as_str(&self) -> &'static str {
        match self {
            DecodeError::NoMessage => "the bytes hold no complete MIDI message",
            DecodeError::Incomplete => "the bytes end inside a message",
            DecodeError::Malformed => "the bytes hold stray data bytes, undefined status bytes or cut-off messages",
            DecodeError::NotSingleMessage => "the bytes are not exactly one MIDI message",
            DecodeError::SysEx => "the bytes are a sysex, which has no short form",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `bytes` that must be whole messages and nothing else — what a program hands a send
/// call — calling `emit` for each, in order, and returning how many there were. Running status
/// and real-time bytes inside a message are accepted, as the [`Parser`] accepts them; a sysex of
/// any length is kept whole. Anything the parser would drop or keep waiting for is an error:
/// a message cut off by the end of `bytes` ([`DecodeError::Incomplete`]), stray data bytes,
/// undefined status bytes or a message cut short ([`DecodeError::Malformed`]), nothing at all
/// ([`DecodeError::NoMessage`]).
///
/// `emit` may have been called for some messages when an error is returned: collect them and act
/// only on `Ok`. Allocates nothing but sysex payloads.
pub fn decode_messages(bytes: &[u8], mut emit: impl FnMut(Message)) -> Result<usize, DecodeError> {
    // The sysex limit is the input size: whatever sysex the caller wrote is kept whole.
    let mut parser = Parser::with_max_sysex_len(bytes.len());
    let mut count = 0usize;
    parser.feed(bytes, |message| {
        count += 1;
        emit(message);
    });
    if parser.is_mid_message() {
        Err(DecodeError::Incomplete)
    } else if parser.stats() != ParserStats::default() {
        Err(DecodeError::Malformed)
    } else if count == 0 {
        Err(DecodeError::NoMessage)
    } else {
        Ok(count)
    }
}

impl Message {
    /// Decodes exactly one message from its bytes (full status byte first, sysex with `F0`/`F7`,
    /// nothing else): [`decode_messages`] with one canonical message required. For a message
    /// other than a sysex, [`ShortMessage::from_bytes`](crate::ShortMessage::from_bytes) does the
    /// same without building a `Message`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut found = None;
        let count = decode_messages(bytes, |m| found = Some(m))?;
        match found {
            Some(message) if count == 1 && message.encoded_len() == bytes.len() => Ok(message),
            _ => Err(DecodeError::NotSingleMessage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
        let mut out = Vec::new();
        let count = decode_messages(bytes, |m| out.push(m))?;
        assert_eq!(count, out.len());
        Ok(out)
    }

    #[test]
    fn decode_messages_takes_whole_messages_only() {
        let on = Message::NoteOn { channel: 0, note: 60, velocity: 100 };
        assert_eq!(decode(&[0x90, 60, 100]), Ok(vec![on.clone()]));
        // Running status and a clock inside a message are whole messages too.
        assert_eq!(decode(&[0x90, 60, 100, 60, 100]), Ok(vec![on.clone(), on.clone()]));
        assert_eq!(decode(&[0x90, 60, 0xF8, 100]), Ok(vec![Message::Clock, on]));
        assert_eq!(decode(&[0xF0, 1, 2, 0xF7]), Ok(vec![Message::SysEx { data: vec![1, 2] }]));
        // A sysex longer than the parser's default limit is kept whole.
        let mut long = vec![0xF0];
        long.resize(DEFAULT_MAX_SYSEX_LEN + 2, 1);
        long.push(0xF7);
        assert_eq!(decode(&long).map(|m| m[0].encoded_len()), Ok(long.len()));

        assert_eq!(decode(&[0x90, 60]), Err(DecodeError::Incomplete));
        assert_eq!(decode(&[0x90, 60, 100, 0x80]), Err(DecodeError::Incomplete));
        assert_eq!(decode(&[0xF0, 1]), Err(DecodeError::Incomplete));
        assert_eq!(decode(&[60, 100]), Err(DecodeError::Malformed));
        assert_eq!(decode(&[0x90, 60, 0x80, 60, 0]), Err(DecodeError::Malformed));
        assert_eq!(decode(&[0xF4, 0xF8]), Err(DecodeError::Malformed));
        assert_eq!(decode(&[]), Err(DecodeError::NoMessage));
        assert_eq!(decode(&[0xF7]), Err(DecodeError::NoMessage));
    }

    #[test]
    fn from_bytes_wants_exactly_one_canonical_message() {
        assert_eq!(Message::from_bytes(&[0xF8]), Ok(Message::Clock));
        assert_eq!(Message::from_bytes(&[0x90, 60]), Err(DecodeError::Incomplete));
        assert_eq!(Message::from_bytes(&[0xF8, 0xF8]), Err(DecodeError::NotSingleMessage));
        assert_eq!(Message::from_bytes(&[0x90, 60, 0xF8, 100]), Err(DecodeError::NotSingleMessage));
    }
}
