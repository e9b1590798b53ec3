//! The stamped wire form: each message preceded by its sender's monotonic time.
//!
//! After its [`STAMP_ANSWER`](super::STAMP_ANSWER), a stamping sender writes every message as
//!
//! ```text
//! F5 <1-8 stamp bytes, 00-7F> <the message, encoded as today (full status byte, sysex F0 … F7)>
//! ```
//!
//! The stamp is the sender's `CLOCK_MONOTONIC` in microseconds, 7 bits per byte, least
//! significant first. Eight bytes carry the whole value (56 bits: two thousand years of
//! uptime); fewer bytes carry only its low `7 × n` bits, and the receiver takes the first value
//! at or after the previous stamp with those low bits (sender time never goes backwards). The
//! sender picks the fewest bytes that make this exact, and writes a full stamp first and at least
//! every [`FULL_STAMP_EVERY_US`], so a receiver that lost track recovers within that time. A
//! 1 kHz stream costs 3 bytes per message (`F5` and two stamp bytes): 6 bytes per note.
//!
//! Why this shape: every stamp byte is a data byte, so the only status bytes in a stamped stream
//! are `F5` and the messages' own. A receiver that sees garbage skips to the next `F5` and is in
//! step again; the decoder needs no buffer beyond the parser's (whose sysex limit bounds it).
//! `F5` is an undefined status byte in MIDI 1.0, so no message a sender writes contains one.

use super::hello::{classify, Hello, HelloMatch, MAX_HELLO_LEN, STAMP_VERSION};
use crate::encode::{BufferTooSmall, MAX_SHORT_MESSAGE_LEN};
use crate::message::Message;
use crate::parser::Parser;

/// Marks the start of a stamp.
const STAMP_START: u8 = 0xF5;
/// The start of a hello (request or answer).
const HELLO_START: u8 = 0xF4;
/// Bytes of a full stamp.
const FULL_STAMP_BYTES: u8 = 8;
/// The longest stamp on the wire: `F5` and a full stamp.
pub const MAX_STAMP_LEN: usize = 1 + FULL_STAMP_BYTES as usize;
/// The longest stamped message other than a sysex.
pub const MAX_STAMPED_SHORT_LEN: usize = MAX_STAMP_LEN + MAX_SHORT_MESSAGE_LEN;
/// A sender writes a full stamp at least this often (microseconds of its clock).
pub const FULL_STAMP_EVERY_US: u64 = 250_000;
/// Microseconds a full stamp can carry.
const FULL_STAMP_MASK: u64 = (1 << (7 * FULL_STAMP_BYTES as u32)) - 1;

/// Writes stamps: remembers the last one so the next can be short.
#[derive(Clone, Debug, Default)]
pub struct StampEncoder {
    /// The last stamp written (µs), `None` before the first.
    last_us: Option<u64>,
    last_full_us: u64,
}

impl StampEncoder {
    /// An encoder whose first stamp is a full one.
    pub fn new() -> StampEncoder {
        StampEncoder::default()
    }

    /// Writes the stamp for a message sent at `now_ns` (`CLOCK_MONOTONIC`, [`crate::monotonic_ns`])
    /// into `out` and returns its length. A time before the previous stamp is written as the
    /// previous stamp (the wire promises a clock that never goes backwards).
    pub fn write_stamp(&mut self, now_ns: u64, out: &mut [u8; MAX_STAMP_LEN]) -> usize {
        let (us, bytes) = self.plan(now_ns);
        if bytes == FULL_STAMP_BYTES {
            self.last_full_us = us;
        }
        self.last_us = Some(us);
        out[0] = STAMP_START;
        for i in 0..usize::from(bytes) {
            out[1 + i] = ((us >> (7 * i)) & 0x7F) as u8;
        }
        1 + usize::from(bytes)
    }

    /// The time and stamp length the next stamp at `now_ns` would have.
    fn plan(&self, now_ns: u64) -> (u64, u8) {
        let now_us = (now_ns / 1_000) & FULL_STAMP_MASK;
        match self.last_us {
            Some(last) if now_us >= last && now_us - self.last_full_us < FULL_STAMP_EVERY_US => {
                let delta = now_us - last;
                // The fewest 7-bit groups whose range holds the step from the last stamp.
                let short = (1..FULL_STAMP_BYTES).find(|&n| delta < 1 << (7 * u32::from(n)));
                (now_us, short.unwrap_or(FULL_STAMP_BYTES))
            }
            // Earlier than the last stamp: repeat it (rare: only a caller mixing clocks).
            Some(last) if now_us < last => (last, self.short_or_full(last)),
            _ => (now_us, FULL_STAMP_BYTES),
        }
    }

    fn short_or_full(&self, us: u64) -> u8 {
        if us - self.last_full_us < FULL_STAMP_EVERY_US {
            1
        } else {
            FULL_STAMP_BYTES
        }
    }

    /// Writes `message` stamped with `now_ns` into `out`; returns the length. Allocates nothing.
    /// A buffer too small changes nothing (the next stamp is planned as if this call never
    /// happened).
    pub fn encode(&mut self, now_ns: u64, message: &Message, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = 1 + usize::from(self.plan(now_ns).1) + message.encoded_len();
        if out.len() < needed {
            return Err(BufferTooSmall { needed });
        }
        let mut stamp = [0; MAX_STAMP_LEN];
        let stamp_len = self.write_stamp(now_ns, &mut stamp);
        out[..stamp_len].copy_from_slice(&stamp[..stamp_len]);
        let written = message.encode(&mut out[stamp_len..])?;
        Ok(stamp_len + written)
    }

    /// Appends `message` stamped with `now_ns` to `out`.
    pub fn encode_to_vec(&mut self, now_ns: u64, message: &Message, out: &mut Vec<u8>) {
        let mut stamp = [0; MAX_STAMP_LEN];
        let stamp_len = self.write_stamp(now_ns, &mut stamp);
        out.extend_from_slice(&stamp[..stamp_len]);
        message.encode_to_vec(out);
    }
}

/// What a [`StampDecoder`] finds in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A message; `sender_ns` is its sender's clock in nanoseconds (microsecond resolution), or
    /// `None` when it came unstamped (before the peer's answer, or when a garbled stream left the
    /// decoder without a full stamp to count from).
    Message { sender_ns: Option<u64>, message: Message },
    /// The peer asks us to stamp what we send it: answer with [`super::STAMP_ANSWER`] and stamp
    /// every message written after it. Reported only for requests that list our version.
    StampsRequested,
    /// The peer's answer: it stamps every message after this point (the decoder has switched).
    StampsStart,
}

/// Counters of stamped input the decoder skipped; the stream has no error channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Bytes skipped while looking for the next stamp (garbage, or a message with no stamp).
    pub garbage_bytes: u64,
    /// Times the decoder lost step and had to look for the next stamp.
    pub resyncs: u64,
    /// Stamps that were malformed (empty, too long, or with no message after them).
    pub bad_stamps: u64,
    /// Stamped messages cut short by the next stamp or hello (dropped).
    pub truncated_messages: u64,
    /// Full stamps earlier than the decoder's running time (a garbled stamp was followed, or the
    /// sender restarted); the full stamp wins.
    pub clock_steps_back: u64,
    /// Short stamps received with no full stamp to count from; their messages come unstamped.
    pub unanchored_stamps: u64,
    /// Requests for versions this decoder does not speak (left unanswered).
    pub unsupported_requests: u64,
    /// Answers naming a version this decoder does not read (the stream is then skipped as
    /// garbage up to the next hello; a conforming peer never sends one unasked).
    pub unsupported_answers: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Plain MIDI (before the peer's answer): bytes go to the parser, unstamped.
    Plain,
    /// Stamped, between messages: the next byte should be `F5`.
    AwaitStamp,
    /// Stamped, skipping bytes until the next `F5` (or hello).
    Resync,
    /// Reading stamp bytes.
    Stamp { low: u64, len: u8 },
    /// Reading the message a stamp belongs to; `sysex` when it began with `F0`.
    Message { sender_us: Option<u64>, sysex: bool },
    /// The peer answered with a version we cannot read: skip until another hello.
    Unreadable,
}

/// Turns a byte stream — plain, then stamped after the peer's answer — into [`Decoded`] items.
///
/// Any split of the input into chunks gives the same items. The MIDI inside is parsed by the
/// core's [`Parser`], so the parser table applies unchanged (and its sysex limit bounds memory);
/// the decoder adds a fixed amount of state (at most one hello's bytes while it decides).
#[derive(Debug, Clone)]
pub struct StampDecoder {
    parser: Parser,
    state: State,
    /// The peer's answer was read.
    stamped: bool,
    /// The decoder's running sender time (µs), from the last stamp; `None` until a full stamp.
    sender_us: Option<u64>,
    /// Bytes held since an `F4`, while deciding whether they are a hello.
    hello: [u8; MAX_HELLO_LEN],
    hello_len: usize,
    /// The state to return to when the held bytes turn out not to be a hello.
    before_hello: State,
    stats: DecoderStats,
}

impl Default for StampDecoder {
    fn default() -> Self {
        StampDecoder::new(Parser::new())
    }
}

/// The index of the first `needle` in `haystack`, eight bytes at a time.
///
/// NOTE: a plain stream is scanned for the `F4` of a hello before the parser sees it, on the
/// receive path of every port: `iter().position` costs about 1 ns per 3-byte message, a third
/// of the parser's own cost; this word-at-a-time search a fraction of that.
#[inline]
fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([needle; 8]);
    let mut chunks = haystack.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("chunks of 8"));
        let x = word ^ pattern;
        // A zero byte in `x` (a match) sets its high bit here; no false negatives, and any
        // false positive is resolved by the exact search below.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return chunk.iter().position(|&b| b == needle).map(|i| at + i);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| at + i)
}

impl StampDecoder {
    /// A decoder for a stream that starts plain, parsing MIDI with `parser` (its sysex limit
    /// applies).
    pub fn new(parser: Parser) -> StampDecoder {
        StampDecoder {
            parser,
            state: State::Plain,
            stamped: false,
            sender_us: None,
            hello: [0; MAX_HELLO_LEN],
            hello_len: 0,
            before_hello: State::Plain,
            stats: DecoderStats::default(),
        }
    }

    /// True once the peer's answer was read: messages now carry stamps.
    pub fn is_stamped(&self) -> bool {
        self.stamped
    }

    /// What the decoder skipped so far.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// What the MIDI parser inside ignored or dropped so far.
    pub fn parser_stats(&self) -> crate::ParserStats {
        self.parser.stats()
    }

    /// Decodes `bytes`, calling `emit` for every item they complete, in stream order.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Decoded)) {
        let mut at = 0;
        while at < bytes.len() {
            if self.hello_len > 0 {
                if self.feed_hello_byte(bytes[at], &mut emit) {
                    at += 1;
                }
                continue;
            }
            match self.state {
                State::Plain => {
                    // Plain MIDI up to the next possible hello, in one call to the parser.
                    let rest = &bytes[at..];
                    let run = find_byte(HELLO_START, rest).unwrap_or(rest.len());
                    self.parser.feed(&rest[..run], |message| emit(Decoded::Message { sender_ns: None, message }));
                    at += run;
                    if at < bytes.len() {
                        self.start_hello();
                        at += 1;
                    }
                }
                State::Message { sysex: true, .. } if bytes[at] < 0x80 => {
                    // A stamped sysex's payload: the whole run of data bytes at once.
                    let rest = &bytes[at..];
                    let run = rest.iter().position(|&b| b >= 0x80).unwrap_or(rest.len());
                    // NOTE: data bytes never end a sysex, so nothing is emitted here; should the
                    // parser disagree, its message still comes out rather than vanish.
                    self.parser.feed(&rest[..run], |message| emit(Decoded::Message { sender_ns: None, message }));
                    at += run;
                }
                _ => {
                    self.feed_stamped_byte(bytes[at], &mut emit);
                    at += 1;
                }
            }
        }
    }

    fn start_hello(&mut self) {
        self.before_hello = self.state;
        self.hello[0] = HELLO_START;
        self.hello_len = 1;
    }

    /// Takes one byte of a possible hello; false when the byte broke the pattern and must be
    /// read again in the state the decoder returned to (it may start a stamp or another hello).
    fn feed_hello_byte(&mut self, byte: u8, emit: &mut impl FnMut(Decoded)) -> bool {
        self.hello[self.hello_len] = byte;
        self.hello_len += 1;
        match classify(&self.hello[..self.hello_len]) {
            HelloMatch::Complete(hello) => {
                self.hello_len = 0;
                self.state = self.before_hello;
                match hello {
                    Hello::Request { speaks_ours: true } => emit(Decoded::StampsRequested),
                    Hello::Request { speaks_ours: false } => self.stats.unsupported_requests += 1,
                    Hello::Answer { version } => {
                        if self.parser.is_mid_message() {
                            // A sender writes its answer between messages; anything cut is lost.
                            self.stats.truncated_messages += 1;
                        }
                        self.parser.reset();
                        if version == STAMP_VERSION {
                            self.stamped = true;
                            self.state = State::AwaitStamp;
                            emit(Decoded::StampsStart);
                        } else {
                            self.stats.unsupported_answers += 1;
                            self.state = State::Unreadable;
                        }
                    }
                }
                true
            }
            HelloMatch::Prefix => true,
            HelloMatch::No => {
                // Not a hello: the held bytes go where they would have gone.
                let held = self.hello_len - 1;
                self.hello_len = 0;
                self.state = self.before_hello;
                let mut copy = [0; MAX_HELLO_LEN];
                copy[..held].copy_from_slice(&self.hello[..held]);
                match self.state {
                    State::Plain => {
                        self.parser.feed(&copy[..held], |message| emit(Decoded::Message { sender_ns: None, message }));
                    }
                    State::Unreadable => {}
                    _ => self.skip_garbage(held as u64),
                }
                false
            }
        }
    }

    /// True while bytes are held back to decide whether they start a hello ([`StampDecoder::end`]
    /// lets them go when the stream ends first).
    pub fn holds_bytes(&self) -> bool {
        self.hello_len > 0
    }

    /// The stream has ended. Bytes held while deciding whether they start a hello never will:
    /// they go where they would have gone (in the plain part, to the parser, so a message they
    /// complete is emitted, as a plain parser would have).
    pub fn end(&mut self, mut emit: impl FnMut(Decoded)) {
        if self.hello_len == 0 {
            return;
        }
        let held = self.hello_len;
        self.hello_len = 0;
        self.state = self.before_hello;
        let mut copy = [0; MAX_HELLO_LEN];
        copy[..held].copy_from_slice(&self.hello[..held]);
        match self.state {
            State::Plain => {
                self.parser.feed(&copy[..held], |message| emit(Decoded::Message { sender_ns: None, message }));
            }
            State::Unreadable => {}
            _ => self.skip_garbage(held as u64),
        }
    }

    fn skip_garbage(&mut self, count: u64) {
        if self.state != State::Resync {
            self.stats.resyncs += 1;
            self.state = State::Resync;
        }
        self.stats.garbage_bytes += count;
    }

    fn feed_stamped_byte(&mut self, byte: u8, emit: &mut impl FnMut(Decoded)) {
        match (self.state, byte) {
            (State::Message { .. }, STAMP_START | HELLO_START) => {
                // The message in progress never finished: drop it.
                self.stats.truncated_messages += 1;
                self.parser.reset();
                self.state = State::AwaitStamp;
                self.feed_stamped_byte(byte, emit);
            }
            (State::Stamp { .. }, STAMP_START | HELLO_START) => {
                self.stats.bad_stamps += 1;
                self.state = State::AwaitStamp;
                self.feed_stamped_byte(byte, emit);
            }
            (_, HELLO_START) => self.start_hello(),
            (State::Unreadable, _) => {}
            (_, STAMP_START) => self.state = State::Stamp { low: 0, len: 0 },
            (State::AwaitStamp | State::Resync, _) => self.skip_garbage(1),
            (State::Stamp { low, len }, 0x00..=0x7F) => {
                if len == FULL_STAMP_BYTES {
                    self.stats.bad_stamps += 1;
                    self.skip_garbage(u64::from(len) + 1);
                } else {
                    let low = low | (u64::from(byte) << (7 * u32::from(len)));
                    self.state = State::Stamp { low, len: len + 1 };
                }
            }
            (State::Stamp { low, len }, _) => {
                if len == 0 {
                    self.stats.bad_stamps += 1;
                    self.skip_garbage(1);
                    return;
                }
                let sender_us = self.resolve(low, len);
                self.state = State::Message { sender_us, sysex: byte == 0xF0 };
                self.feed_message_byte(byte, sender_us, emit);
            }
            (State::Message { sender_us, sysex }, _) => {
                // A status byte inside the message (garbage) starts another one: the sysex run
                // shortcut holds only while the parser is in the sysex the stamp began.
                let sysex = match byte {
                    0x80..=0xF7 => byte == 0xF0,
                    _ => sysex,
                };
                self.state = State::Message { sender_us, sysex };
                self.feed_message_byte(byte, sender_us, emit)
            }
            (State::Plain, _) => unreachable!("plain bytes are fed to the parser in runs"),
        }
    }

    fn feed_message_byte(&mut self, byte: u8, sender_us: Option<u64>, emit: &mut impl FnMut(Decoded)) {
        let mut done = false;
        self.parser.feed(&[byte], |message| {
            // One message per stamp: a second one from the same bytes cannot happen, because
            // the state leaves `Message` as soon as the first is out.
            emit(Decoded::Message { sender_ns: sender_us.map(|us| us.saturating_mul(1_000)), message });
            done = true;
        });
        if done {
            self.state = State::AwaitStamp;
            if self.parser.is_mid_message() {
                // A real-time byte inside a message completed first: the rest is dropped.
                self.stats.truncated_messages += 1;
            }
            // Running status must not carry over: every stamped message brings its status.
            self.parser.reset();
        } else if !self.parser.is_mid_message() {
            // The byte started nothing (an undefined status, a stray data byte): garbage.
            self.state = State::AwaitStamp;
            self.skip_garbage(1);
        }
    }

    /// The full sender time of a stamp with `len` bytes whose value is `low`.
    fn resolve(&mut self, low: u64, len: u8) -> Option<u64> {
        if len == FULL_STAMP_BYTES {
            if self.sender_us.is_some_and(|previous| low < previous) {
                self.stats.clock_steps_back += 1;
            }
            self.sender_us = Some(low);
            return self.sender_us;
        }
        let Some(previous) = self.sender_us else {
            self.stats.unanchored_stamps += 1;
            return None;
        };
        let mask = (1u64 << (7 * u32::from(len))) - 1;
        let now = previous + (low.wrapping_sub(previous) & mask);
        self.sender_us = Some(now);
        self.sender_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::{STAMP_ANSWER, STAMP_REQUEST};

    fn decode(bytes: &[u8]) -> (Vec<Decoded>, DecoderStats) {
        let mut decoder = StampDecoder::default();
        let mut items = Vec::new();
        decoder.feed(bytes, |item| items.push(item));
        (items, decoder.stats())
    }

    fn note(n: u8) -> Message {
        Message::NoteOn { channel: 0, note: n, velocity: 100 }
    }

    fn stamped(times_ns: &[u64]) -> Vec<u8> {
        let mut encoder = StampEncoder::new();
        let mut bytes = STAMP_ANSWER.to_vec();
        for (i, &t) in times_ns.iter().enumerate() {
            encoder.encode_to_vec(t, &note(i as u8), &mut bytes);
        }
        bytes
    }

    #[test]
    fn find_byte_finds_the_first_and_only_a_real_one() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes = vec![0x74u8; len];
                if at < len {
                    bytes[at] = 0xF4;
                    if at + 3 < len {
                        bytes[at + 3] = 0xF4;
                    }
                }
                let expected = bytes.iter().position(|&b| b == 0xF4);
                assert_eq!(find_byte(0xF4, &bytes), expected, "len {len} at {at}");
            }
        }
        // Bytes one borrow away from the needle must not match.
        assert_eq!(find_byte(0xF4, &[0xF5, 0xF3, 0x00, 0xFF, 0xF4 ^ 0x80, 0x74, 0xE4, 0xF0, 0x01]), None);
    }

    #[test]
    fn stamps_are_short_after_a_full_one() {
        let mut encoder = StampEncoder::new();
        let mut out = [0; MAX_STAMP_LEN];
        assert_eq!(encoder.write_stamp(5_000_000_000, &mut out), 9);
        assert_eq!(encoder.write_stamp(5_000_100_000, &mut out), 2, "100 µs later: one 7-bit byte");
        assert_eq!(encoder.write_stamp(5_001_100_000, &mut out), 3, "1 ms later: two bytes");
        assert_eq!(encoder.write_stamp(5_200_000_000, &mut out), 4, "200 ms later: three bytes");
        assert_eq!(encoder.write_stamp(5_300_000_000, &mut out), 9, "a full stamp every 250 ms");
        assert_eq!(encoder.write_stamp(9_300_000_000, &mut out), 9, "4 s later: full");
    }

    #[test]
    fn a_stamped_stream_decodes_to_its_times() {
        let times: Vec<u64> = (0..2_000).map(|i| 7_000_000_000 + i * 1_000_000 + (i % 7) * 13_000).collect();
        let (items, stats) = decode(&stamped(&times));
        assert_eq!(items[0], Decoded::StampsStart);
        let decoded: Vec<_> = items[1..]
            .iter()
            .map(|item| match item {
                Decoded::Message { sender_ns, .. } => sender_ns.unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<u64> = times.iter().map(|t| t / 1000 * 1000).collect();
        assert_eq!(decoded, expected);
        assert_eq!(stats, DecoderStats::default());
    }

    #[test]
    fn messages_before_the_answer_are_plain_and_a_request_is_reported() {
        let mut bytes = STAMP_REQUEST.to_vec();
        bytes.extend_from_slice(&[0x90, 1, 2]);
        bytes.extend_from_slice(&stamped(&[1_000_000]));
        let (items, _) = decode(&bytes);
        assert_eq!(
            items,
            [
                Decoded::StampsRequested,
                Decoded::Message { sender_ns: None, message: Message::NoteOn { channel: 0, note: 1, velocity: 2 } },
                Decoded::StampsStart,
                Decoded::Message { sender_ns: Some(1_000_000), message: note(0) },
            ]
        );
    }

    #[test]
    fn token_hellos_and_notices_in_a_plain_stream_are_ignored_as_a_parser_would() {
        let mut bytes = b"\xF4token\xF7\xF4\x00stamps\xF7".to_vec();
        bytes.extend_from_slice(&[0x90, 1, 2]);
        let (items, _) = decode(&bytes);
        assert_eq!(
            items,
            [Decoded::Message { sender_ns: None, message: Message::NoteOn { channel: 0, note: 1, velocity: 2 } }]
        );
    }

    #[test]
    fn garbage_is_skipped_counted_and_the_decoder_recovers_at_the_next_stamp() {
        let mut bytes = stamped(&[1_000_000, 2_000_000]);
        bytes.extend_from_slice(&[0x12, 0x34, 0x90, 0x01]); // junk, then a message with no stamp
        let mut tail = StampEncoder::new();
        tail.encode_to_vec(3_000_000, &note(9), &mut bytes);
        let (items, stats) = decode(&bytes);
        assert_eq!(items.len(), 4, "{items:?}");
        assert_eq!(items[3], Decoded::Message { sender_ns: Some(3_000_000), message: note(9) });
        assert_eq!(stats.garbage_bytes, 4);
        assert_eq!(stats.resyncs, 1);
    }

    #[test]
    fn a_cut_message_and_bad_stamps_are_counted() {
        let mut bytes = stamped(&[1_000_000]);
        bytes.extend_from_slice(&[0xF5, 0x01, 0x90, 0x01]); // cut by the next stamp
        bytes.extend_from_slice(&[0xF5, 0x90, 1, 1]); // empty stamp
        bytes.extend_from_slice(&[0xF5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0x90, 1, 1]); // 9 stamp bytes
        bytes.extend_from_slice(&[0xF5, 0x7F, 0xF5]); // a stamp with no message
        bytes.extend_from_slice(&[0x00, 0x90, 0x05, 0x06]); // resolves against 1 s
        let (items, stats) = decode(&bytes);
        assert_eq!(stats.truncated_messages, 1);
        assert_eq!(stats.bad_stamps, 3);
        let last = items.last().unwrap();
        assert_eq!(
            *last,
            Decoded::Message {
                // The cut message's stamp (1 µs low bits) still moved the running time to 1025 µs.
                sender_ns: Some(1_152_000),
                message: Message::NoteOn { channel: 0, note: 5, velocity: 6 },
            }
        );
    }

    #[test]
    fn an_answer_in_an_unknown_version_is_skipped_until_a_readable_one() {
        let mut bytes = b"\xF4\x00stamps!\x02\xF7\xF5\x01\x90\x01\x02".to_vec();
        let mut decoder = StampDecoder::default();
        let mut items = Vec::new();
        decoder.feed(&bytes, |item| items.push(item));
        assert!(items.is_empty() && !decoder.is_stamped());
        assert_eq!(decoder.stats().unsupported_answers, 1);
        bytes = STAMP_ANSWER.to_vec();
        StampEncoder::new().encode_to_vec(3_000, &Message::Stop, &mut bytes);
        decoder.feed(&bytes, |item| items.push(item));
        assert_eq!(items, [Decoded::StampsStart, Decoded::Message { sender_ns: Some(3_000), message: Message::Stop }]);
    }

    #[test]
    fn a_short_stamp_without_a_full_one_leaves_its_message_unstamped() {
        let mut bytes = STAMP_ANSWER.to_vec();
        bytes.extend_from_slice(&[0xF5, 0x05, 0xFA]);
        let (items, stats) = decode(&bytes);
        assert_eq!(items[1], Decoded::Message { sender_ns: None, message: Message::Start });
        assert_eq!(stats.unanchored_stamps, 1);
    }

    #[test]
    fn stamped_sysex_passes_through_and_keeps_the_parser_limit() {
        let mut encoder = StampEncoder::new();
        let mut bytes = STAMP_ANSWER.to_vec();
        encoder.encode_to_vec(1_000_000, &Message::sysex(vec![1; 300]).unwrap(), &mut bytes);
        encoder.encode_to_vec(2_000_000, &Message::sysex(vec![2; 3]).unwrap(), &mut bytes);
        let mut decoder = StampDecoder::new(Parser::with_max_sysex_len(100));
        let mut items = Vec::new();
        decoder.feed(&bytes, |item| items.push(item));
        assert_eq!(items.len(), 2, "the long one is dropped: {items:?}");
        assert_eq!(
            items[1],
            Decoded::Message { sender_ns: Some(2_000_000), message: Message::sysex(vec![2; 3]).unwrap() }
        );
        assert_eq!(decoder.parser_stats().sysex_overflows, 1);
    }

    #[test]
    fn encode_into_a_slice_matches_encode_to_vec_and_reports_short_buffers() {
        let mut a = StampEncoder::new();
        let mut b = StampEncoder::new();
        let mut out = [0; MAX_STAMPED_SHORT_LEN];
        let len = a.encode(42_000, &note(1), &mut out).unwrap();
        let mut vec = Vec::new();
        b.encode_to_vec(42_000, &note(1), &mut vec);
        assert_eq!(&out[..len], &vec[..]);
        assert_eq!(a.encode(43_000, &note(1), &mut [0; 3]), Err(BufferTooSmall { needed: 5 }));
    }

    #[test]
    fn an_earlier_time_repeats_the_previous_stamp() {
        let (items, _) = decode(&stamped(&[5_000_000, 4_000_000]));
        assert_eq!(items[2], Decoded::Message { sender_ns: Some(5_000_000), message: note(1) });
    }

    /// Found by the framing fuzzer: `F4 00` may start a hello, so the decoder holds it; when the
    /// stream ends there, the held `00` still completes the note a plain parser would emit.
    #[test]
    fn the_end_of_the_stream_lets_held_bytes_complete_a_message() {
        let mut decoder = StampDecoder::default();
        let mut items = Vec::new();
        decoder.feed(&[0x9A, 0x3B, 0xF4, 0xF4, 0xF4, 0x00], |item| items.push(item));
        assert!(items.is_empty() && decoder.holds_bytes());
        decoder.end(|item| items.push(item));
        let note = Message::NoteOn { channel: 10, note: 59, velocity: 0 };
        assert_eq!(items, vec![Decoded::Message { sender_ns: None, message: note }]);
        assert!(!decoder.holds_bytes());
    }
}
