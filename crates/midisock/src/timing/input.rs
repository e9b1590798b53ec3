//! [`TimedInput`]: the receiving half of the timing extension, as ports and servers use it.
//!
//! One connection's incoming bytes go through a [`StampDecoder`] (built on the core's
//! [`Parser`], so the sysex limit and the parser's counters are exactly those of a plain
//! connection) and, when the user turned a jitter buffer on, through a [`PlayoutBuffer`]:
//!
//! - a message that came **unstamped** (every message from mido, and from any peer before its
//!   answer) is delivered at once, stamped with its arrival time, exactly as without the
//!   extension — unless stamped messages are still queued ahead of it, in which case it waits its
//!   turn behind them (due on arrival, so it comes out with the first `pop_due`), so sender order
//!   holds;
//! - a **stamped** message goes into the playout buffer when there is one (it comes out of
//!   [`TimedInput::pop_due`] at its played-out time), and is delivered at once, carrying its
//!   `sender_ns`, when there is none. The buffer is built when the first stamped message
//!   arrives, not before: a peer that never stamps (mido) costs what it would without one;
//! - the peer's **request** for stamps is latched ([`TimedInput::stamps_requested`]): the owner
//!   then answers on its output ([`super::TimedOutput::answer_stamps`]).
//!
//! The owner drives it like the playout buffer: `feed` what the socket gave, wait for the socket
//! or until [`TimedInput::next_deadline`], whichever is first, and `pop_due` when woken.
//!
//! Every delivered message is a [`Received`]: `timestamp_ns` is when it was delivered on the
//! receiver's clock (its arrival without a buffer; its played-out time with one, see
//! [`played_timestamp`]), `sender_ns` the stamp it carried.

use super::playout::{Played, PlayoutBuffer, PlayoutConfig, PlayoutStats};
use super::wire::{Decoded, DecoderStats, StampDecoder};
use crate::message::{Message, Received};
use crate::parser::{Parser, ParserStats};

/// The receiving state of one connection: decoder, optional playout buffer, and whether the peer
/// asked for stamps. Single-threaded, like the parser; allocates nothing per message beyond what
/// the parser does (a sysex payload), what the caller's `deliver` does, and the playout queue's
/// growth (amortized, up to its capacity).
#[derive(Debug)]
pub(crate) struct TimedInput {
    decoder: StampDecoder,
    playout: Playout,
    stamps_requested: bool,
    /// The last `timestamp_ns` the buffer delivered: played-out timestamps never go backwards.
    last_played_ns: u64,
}

/// The `timestamp_ns` a played-out message is delivered with, delivered at `now_ns` after a
/// message delivered at `last_ns`: its due time, but never before it arrived (a late message is
/// delivered on arrival), never after `now_ns` (a message pushed out early by a full buffer is
/// delivered now), and never before the message delivered ahead of it (an unstamped message
/// that waited behind stamped ones comes out with them).
fn played_timestamp(played: &Played, now_ns: u64, last_ns: u64) -> u64 {
    played.due_ns.min(now_ns).max(played.arrival_ns).max(last_ns).min(now_ns.max(played.arrival_ns))
}

/// The jitter buffer of a connection, if one was asked for.
#[derive(Debug)]
enum Playout {
    Off,
    /// Asked for, not built yet: no stamped message has arrived. A buffer's state (about 8 KiB)
    /// and its queue are spent only on a peer that stamps; a server may have a thousand that
    /// never do.
    Unbuilt(PlayoutConfig),
    Built(Box<PlayoutBuffer>),
}

impl Playout {
    fn new(config: Option<PlayoutConfig>) -> Playout {
        config.map_or(Playout::Off, Playout::Unbuilt)
    }

    /// The buffer, built now if it was not yet.
    fn build(&mut self) -> Option<&mut PlayoutBuffer> {
        if let Playout::Unbuilt(config) = *self {
            *self = Playout::Built(Box::new(PlayoutBuffer::new(config)));
        }
        self.built_mut()
    }

    fn built(&self) -> Option<&PlayoutBuffer> {
        match self {
            Playout::Built(buffer) => Some(buffer),
            Playout::Off | Playout::Unbuilt(_) => None,
        }
    }

    fn built_mut(&mut self) -> Option<&mut PlayoutBuffer> {
        match self {
            Playout::Built(buffer) => Some(buffer),
            Playout::Off | Playout::Unbuilt(_) => None,
        }
    }

    /// True when nothing waits in a buffer (none built counts as empty).
    fn is_empty(&self) -> bool {
        self.built().is_none_or(PlayoutBuffer::is_empty)
    }
}

fn received(played: Played, now_ns: u64, last_ns: &mut u64) -> Received {
    let timestamp_ns = played_timestamp(&played, now_ns, *last_ns);
    *last_ns = timestamp_ns;
    Received { message: played.message, timestamp_ns, sender_ns: played.sender_ns }
}

impl TimedInput {
    /// Input parsed with `parser` (its limits apply), played out through a buffer built from
    /// `playout` when given, delivered on arrival otherwise.
    pub(crate) fn new(parser: Parser, playout: Option<PlayoutConfig>) -> TimedInput {
        TimedInput {
            decoder: StampDecoder::new(parser),
            playout: Playout::new(playout),
            stamps_requested: false,
            last_played_ns: 0,
        }
    }

    /// Decodes `bytes`, read at `arrival_ns` (on the clock later given to `pop_due`, normally
    /// [`crate::monotonic_ns`]). `deliver` gets, in order, every message that is due now:
    /// everything when there is no playout buffer; with one, unstamped messages, messages
    /// already late, and the oldest queued ones a full buffer pushes out. The rest waits for
    /// [`TimedInput::pop_due`].
    #[inline]
    pub(crate) fn feed(&mut self, bytes: &[u8], arrival_ns: u64, deliver: impl FnMut(Received)) {
        self.feed_observed(bytes, arrival_ns, |_, _| {}, deliver);
    }

    /// [`TimedInput::feed`], showing `arrived` each message as it arrives, with its stamp, before
    /// a playout buffer holds it back: a relaying server forwards on arrival, so the jitter of
    /// both legs is removed once, by the final receiver's buffer.
    #[inline]
    pub(crate) fn feed_observed(
        &mut self,
        bytes: &[u8],
        arrival_ns: u64,
        arrived: impl FnMut(&Message, Option<u64>),
        deliver: impl FnMut(Received),
    ) {
        self.take(Some(bytes), arrival_ns, arrived, deliver);
    }

    /// The stream ended at `now_ns`: what the decoder held back while deciding whether bytes
    /// start a hello is decoded as what it is (a message it completes is delivered like any
    /// other), so the end of a stream never swallows its last message.
    pub(crate) fn end(
        &mut self,
        now_ns: u64,
        arrived: impl FnMut(&Message, Option<u64>),
        deliver: impl FnMut(Received),
    ) {
        self.take(None, now_ns, arrived, deliver);
    }

    /// True while the decoder holds bytes back that [`TimedInput::end`] would still decode.
    pub(crate) fn holds_bytes(&self) -> bool {
        self.decoder.holds_bytes()
    }

    /// Decodes `bytes`, or the end of the stream (`None`), and routes what comes out.
    #[inline]
    fn take(
        &mut self,
        bytes: Option<&[u8]>,
        arrival_ns: u64,
        mut arrived: impl FnMut(&Message, Option<u64>),
        mut deliver: impl FnMut(Received),
    ) {
        let TimedInput { decoder, playout, stamps_requested, last_played_ns } = self;
        match playout {
            // NOTE: `move`: the closure owns `deliver` instead of reaching it through a
            // reference, one indirection less per message on every port's receive path.
            Playout::Off => Self::decode(decoder, bytes, move |decoded| match decoded {
                Decoded::Message { sender_ns, message } => {
                    arrived(&message, sender_ns);
                    deliver(Received { message, timestamp_ns: arrival_ns, sender_ns })
                }
                Decoded::StampsRequested => *stamps_requested = true,
                Decoded::StampsStart => {}
            }),
            Playout::Unbuilt(_) | Playout::Built(_) => {
                Self::decode(decoder, bytes, |decoded| match decoded {
                    Decoded::Message { sender_ns: None, message } if playout.is_empty() => {
                        arrived(&message, None);
                        *last_played_ns = arrival_ns.max(*last_played_ns);
                        deliver(Received::unstamped(message, *last_played_ns))
                    }
                    Decoded::Message { sender_ns, message } => {
                        arrived(&message, sender_ns);
                        // The first stamped message builds the buffer; an unstamped one only gets
                        // here behind queued ones, so the buffer exists then.
                        let buffer = playout.build().expect("a buffer was asked for");
                        buffer.push(sender_ns, arrival_ns, message, |played| {
                            deliver(received(played, arrival_ns, last_played_ns))
                        })
                    }
                    Decoded::StampsRequested => *stamps_requested = true,
                    Decoded::StampsStart => {}
                });
                // Late arrivals and unstamped ones queued behind others are due now.
                if let Some(buffer) = playout.built_mut() {
                    buffer.pop_due(arrival_ns, |played| deliver(received(played, arrival_ns, last_played_ns)));
                }
            }
        }
    }

    /// Feeds `bytes` to the decoder, or ends its stream (`None`); generic, so the per-message
    /// `emit` is inlined on the receive path.
    #[inline]
    fn decode(decoder: &mut StampDecoder, bytes: Option<&[u8]>, emit: impl FnMut(Decoded)) {
        match bytes {
            Some(bytes) => decoder.feed(bytes, emit),
            None => decoder.end(emit),
        }
    }

    /// When the next queued message is due (`None`: nothing queued, or no playout buffer).
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.playout.built().and_then(PlayoutBuffer::next_deadline)
    }

    /// Delivers, in order, every queued message due at or before `now_ns`.
    pub(crate) fn pop_due(&mut self, now_ns: u64, mut deliver: impl FnMut(Received)) {
        if let Some(buffer) = self.playout.built_mut() {
            let last = &mut self.last_played_ns;
            buffer.pop_due(now_ns, |played| deliver(received(played, now_ns, last)));
        }
    }

    /// Delivers everything queued at once, in order (nothing queued is ever lost).
    pub(crate) fn drain(&mut self, now_ns: u64, mut deliver: impl FnMut(Received)) {
        if let Some(buffer) = self.playout.built_mut() {
            let last = &mut self.last_played_ns;
            buffer.drain(now_ns, |played| deliver(received(played, now_ns, last)));
        }
    }

    /// Messages waiting to be played out, and their sysex payload bytes (`(0, 0)` without a
    /// buffer).
    pub(crate) fn held(&self) -> (usize, usize) {
        self.playout.built().map_or((0, 0), PlayoutBuffer::held)
    }

    /// Delivers the oldest waiting message now, before its time (counted in the buffer's
    /// `delivered_early_full`); false when nothing waits.
    pub(crate) fn deliver_early(&mut self, now_ns: u64, mut deliver: impl FnMut(Received)) -> bool {
        let last = &mut self.last_played_ns;
        self.playout
            .built_mut()
            .is_some_and(|buffer| buffer.deliver_early(now_ns, |played| deliver(received(played, now_ns, last))))
    }

    /// True when nothing waits to be played out.
    pub(crate) fn is_idle(&self) -> bool {
        self.playout.is_empty()
    }

    /// True once the peer's request for stamps was read (it stays true): answer it with
    /// [`super::TimedOutput::answer_stamps`].
    pub(crate) fn stamps_requested(&self) -> bool {
        self.stamps_requested
    }

    /// True when a playout buffer was asked for (built or not yet).
    pub(crate) fn has_playout(&self) -> bool {
        !matches!(self.playout, Playout::Off)
    }

    /// True once the playout buffer has been built: a stamped message has arrived.
    #[cfg(test)]
    pub(crate) fn playout_built(&self) -> bool {
        matches!(self.playout, Playout::Built(_))
    }

    /// True once the peer's answer was read: its messages carry stamps now.
    pub(crate) fn is_stamped(&self) -> bool {
        self.decoder.is_stamped()
    }

    /// The playout buffer's statistics, `None` without a buffer (before the first stamped
    /// message: the statistics of a buffer that has seen nothing).
    pub(crate) fn playout_stats(&self) -> Option<PlayoutStats> {
        match &self.playout {
            Playout::Off => None,
            Playout::Unbuilt(config) => Some(PlayoutBuffer::stats_before_data(config)),
            Playout::Built(buffer) => Some(buffer.stats()),
        }
    }

    /// What the stamp decoder skipped.
    pub(crate) fn decoder_stats(&self) -> DecoderStats {
        self.decoder.stats()
    }

    /// What the parser inside ignored or dropped (the same counters as a plain connection's).
    pub(crate) fn parser_stats(&self) -> ParserStats {
        self.decoder.parser_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::timing::{DelayMode, StampEncoder, STAMP_ANSWER, STAMP_REQUEST};

    fn note(n: u8) -> Message {
        Message::NoteOn { channel: 0, note: n, velocity: 100 }
    }

    fn feed(input: &mut TimedInput, bytes: &[u8], arrival_ns: u64) -> Vec<Received> {
        let mut out = Vec::new();
        input.feed(bytes, arrival_ns, |r| out.push(r));
        out
    }

    /// The answer, then `notes` stamped at the given sender times.
    fn stamped(times: &[(u8, u64)]) -> Vec<u8> {
        let mut encoder = StampEncoder::new();
        let mut bytes = STAMP_ANSWER.to_vec();
        for &(n, t) in times {
            encoder.encode_to_vec(t, &note(n), &mut bytes);
        }
        bytes
    }

    #[test]
    fn without_a_buffer_everything_is_delivered_on_arrival_with_its_stamp() {
        let mut input = TimedInput::new(Parser::new(), None);
        let mut bytes = vec![0x90, 1, 100];
        bytes.extend_from_slice(&stamped(&[(2, 5_000_000)]));
        let out = feed(&mut input, &bytes, 77);
        assert_eq!(
            out,
            [
                Received { message: note(1), timestamp_ns: 77, sender_ns: None },
                Received { message: note(2), timestamp_ns: 77, sender_ns: Some(5_000_000) },
            ]
        );
        assert!(input.is_idle() && input.next_deadline().is_none() && input.playout_stats().is_none());
        assert!(input.is_stamped() && !input.stamps_requested());
    }

    #[test]
    fn a_request_is_latched_and_parsing_goes_on() {
        let mut input = TimedInput::new(Parser::new(), None);
        let mut bytes = STAMP_REQUEST.to_vec();
        bytes.extend_from_slice(&[0x90, 1, 100]);
        let out = feed(&mut input, &bytes[..4], 0);
        assert!(out.is_empty() && !input.stamps_requested());
        let out = feed(&mut input, &bytes[4..], 0);
        assert_eq!(out, [Received::unstamped(note(1), 0)]);
        assert!(input.stamps_requested());
        assert_eq!(input.parser_stats(), ParserStats::default());
        assert_eq!(input.decoder_stats(), DecoderStats::default());
    }

    #[test]
    fn stamped_messages_are_played_out_at_sender_time_plus_offset_plus_delay() {
        let delay = 10_000_000;
        let mut input = TimedInput::new(Parser::new(), Some(PlayoutConfig::new(DelayMode::fixed(delay))));
        // Sender clock 1 s behind the receiver's, 2 ms of transit: the first message sets the floor.
        let out = feed(&mut input, &stamped(&[(1, 1_000_000_000)]), 2_002_000_000);
        assert!(out.is_empty(), "queued, not delivered: {out:?}");
        let due = 2_002_000_000 + delay;
        assert_eq!(input.next_deadline(), Some(due));
        let mut out = Vec::new();
        input.pop_due(due - 1, |r| out.push(r));
        assert!(out.is_empty());
        input.pop_due(due + 500, |r| out.push(r));
        assert_eq!(out, [Received { message: note(1), timestamp_ns: due, sender_ns: Some(1_000_000_000) }]);
        assert!(input.is_idle());
        let stats = input.playout_stats().unwrap();
        assert_eq!((stats.pushed, stats.delivered, stats.late, stats.delay_ns), (1, 1, 0, delay));
        assert_eq!(stats.offset_ns, Some(1_002_000_000));
    }

    #[test]
    fn an_unstamped_message_waits_behind_queued_stamped_ones() {
        let mut input = TimedInput::new(Parser::new(), Some(PlayoutConfig::new(DelayMode::fixed(5_000_000))));
        let bytes = stamped(&[(1, 1_000_000)]);
        assert!(feed(&mut input, &bytes, 1_000_000).is_empty());
        // A plain message cannot follow a stamped one on one stream, so push through the buffer
        // the way `feed` does for an unstamped arrival while others are queued.
        let buffer = input.playout.built_mut().unwrap();
        buffer.push(None, 2_000_000, note(2), |_| panic!("not full"));
        let mut out = Vec::new();
        input.pop_due(2_000_000, |r| out.push(r));
        assert!(out.is_empty(), "the stamped note is due at 6 ms and the plain one waits behind it");
        input.pop_due(6_000_000, |r| out.push(r));
        let notes: Vec<_> = out.iter().map(|r| (r.message.clone(), r.sender_ns, r.timestamp_ns)).collect();
        // The plain one is stamped when it came out, not before the one it waited behind.
        assert_eq!(notes, [(note(1), Some(1_000_000), 6_000_000), (note(2), None, 6_000_000)]);
    }

    #[test]
    fn plain_messages_pass_a_buffer_at_once() {
        let mut input = TimedInput::new(Parser::new(), Some(PlayoutConfig::new(DelayMode::adaptive())));
        assert_eq!(
            feed(&mut input, &[0x90, 1, 100, 0xF8], 9),
            [Received::unstamped(note(1), 9), Received::unstamped(Message::Clock, 9)]
        );
        assert!(input.is_idle());
        assert_eq!(input.playout_stats().unwrap().pushed, 0);
    }

    #[test]
    fn a_late_message_comes_out_of_feed_and_drain_empties_the_buffer() {
        let mut input = TimedInput::new(Parser::new(), Some(PlayoutConfig::new(DelayMode::fixed(1_000_000))));
        let mut encoder = StampEncoder::new();
        let mut bytes = STAMP_ANSWER.to_vec();
        encoder.encode_to_vec(0, &note(1), &mut bytes);
        assert!(feed(&mut input, &bytes, 1_000_000).is_empty());
        // Sent 1 ms later but arriving 50 ms later: late (due at 3 ms), delivered by `feed`
        // together with the first one, which is due too by then.
        let mut later = Vec::new();
        encoder.encode_to_vec(1_000_000, &Message::Stop, &mut later);
        let out = feed(&mut input, &later, 51_000_000);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].timestamp_ns, 51_000_000, "a late message is delivered on arrival");
        assert_eq!(input.playout_stats().unwrap().late, 1);
        let mut tail = Vec::new();
        encoder.encode_to_vec(60_000_000, &note(3), &mut tail);
        assert!(feed(&mut input, &tail, 60_000_000).is_empty());
        let mut out = Vec::new();
        input.drain(60_000_000, |r| out.push(r));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp_ns, 60_000_000, "drained now, before its time");
        assert!(input.is_idle());
    }

    #[test]
    fn the_buffer_is_built_by_the_first_stamped_message_not_before() {
        let mut input = TimedInput::new(Parser::new(), Some(PlayoutConfig::new(DelayMode::fixed(7_000_000))));
        assert!(input.has_playout() && !input.playout_built());
        let before = input.playout_stats().expect("asked for, so reported");
        assert_eq!((before.delay_ns, before.pushed, before.offset_ns), (7_000_000, 0, None));
        assert_eq!(feed(&mut input, &[0x90, 1, 100], 5), [Received::unstamped(note(1), 5)]);
        assert!(!input.playout_built(), "plain messages build nothing");
        assert!(feed(&mut input, STAMP_ANSWER, 6).is_empty());
        assert!(!input.playout_built(), "nor does the answer alone");
        assert_eq!(input.held(), (0, 0));
        let mut encoder = StampEncoder::new();
        let mut bytes = Vec::new();
        encoder.encode_to_vec(1_000, &note(2), &mut bytes);
        assert!(feed(&mut input, &bytes, 10).is_empty(), "queued in the buffer just built");
        assert!(input.playout_built());
        assert_eq!(input.held(), (1, 0));
        let mut out = Vec::new();
        assert!(input.deliver_early(11, |r| out.push(r)));
        assert_eq!(out, [Received { message: note(2), timestamp_ns: 11, sender_ns: Some(1_000) }]);
        assert!(!input.deliver_early(12, |r| out.push(r)), "nothing left");
        assert_eq!(input.playout_stats().unwrap().delivered_early_full, 1);
    }

    #[test]
    fn the_parser_limit_still_applies() {
        let mut input = TimedInput::new(Parser::with_max_sysex_len(4), None);
        let out = feed(&mut input, &[0xF0, 1, 2, 3, 4, 5, 6, 0xF7, 0xFA], 0);
        assert_eq!(out, [Received::unstamped(Message::Start, 0)]);
        assert_eq!(input.parser_stats().sysex_overflows, 1);
    }
}
