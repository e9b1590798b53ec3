//! [`Arrivals`]: what reads from one client gave, on its two ways out — to `receive()` (now, or
//! later through the client's jitter buffer) and, when relaying, to the other clients at once.

use super::outgoing::Span;
use crate::message::{Message, Received};
use crate::timing::Played;

#[derive(Default)]
pub(crate) struct Arrivals {
    /// For `receive()` now, in the client's order: what no jitter buffer holds back, and what a
    /// full buffer pushed out early.
    pub(crate) to_inbox: Vec<Received>,
    /// When relaying: every message that arrived, encoded plain, on arrival (not on playout:
    /// the final receiver's own buffer removes the jitter of both legs at once).
    pub(crate) relay_plain: Vec<u8>,
    /// Each relayed message's end and time on the server's clock (the sender's stamp moved to
    /// our clock by the client's estimated offset, or the arrival time when it came unstamped).
    pub(crate) relay_spans: Vec<Span>,
}

impl Arrivals {
    pub(crate) fn clear(&mut self) {
        self.to_inbox.clear();
        self.relay_plain.clear();
        self.relay_spans.clear();
    }

    /// Gives back what a burst made the buffers grow to (one 64 KiB read of one-byte messages
    /// takes 2.5 MiB as `Received`), once the client has nothing more to read: a flood must not
    /// pin its peak for ever.
    pub(crate) fn shrink(&mut self) {
        const KEEP: usize = 1024;
        self.to_inbox.shrink_to(KEEP);
        self.relay_plain.shrink_to(KEEP * 3);
        self.relay_spans.shrink_to(KEEP);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.to_inbox.is_empty() && self.relay_spans.is_empty()
    }

    /// Copies `message` for the other clients; `time_ns` is filled in by [`Arrivals::set_relay_times`]
    /// once the read is complete (until then it holds the sender's stamp, if any).
    pub(crate) fn relay(&mut self, message: &Message, sender_ns: Option<u64>) {
        message.encode_to_vec(&mut self.relay_plain);
        self.relay_spans.push(Span { end: self.relay_plain.len(), time_ns: sender_ns });
    }

    /// Moves the stamps of the relay copies from `first` on to the server's clock: sender time
    /// plus `offset_ns` (receiver clock − sender clock, as the client's jitter buffer estimates
    /// it); messages with no stamp, or no estimate yet, take `arrival_ns`.
    pub(crate) fn set_relay_times(&mut self, first: usize, offset_ns: Option<i64>, arrival_ns: u64) {
        for span in &mut self.relay_spans[first..] {
            let translated = match (span.time_ns, offset_ns) {
                (Some(sender), Some(offset)) => sender.checked_add_signed(offset),
                _ => None,
            };
            span.time_ns = Some(translated.unwrap_or(arrival_ns));
        }
    }

    /// Copies of `messages` for the other clients, sent now (the notes a departing client left
    /// held).
    pub(crate) fn relay_now(&mut self, messages: &[Message]) {
        for message in messages {
            message.encode_to_vec(&mut self.relay_plain);
            self.relay_spans.push(Span { end: self.relay_plain.len(), time_ns: None });
        }
    }
}

/// A message coming out of a jitter buffer, as `receive()` gives it: stamped with the time it was
/// played out — its due time when it came out on schedule, its arrival when it came late, and
/// never a time still to come (a full buffer, or a departing client, lets messages out early).
pub(crate) fn played_out(played: Played, now_ns: u64) -> Received {
    let timestamp_ns = played.due_ns.max(played.arrival_ns).min(now_ns);
    Received { message: played.message, timestamp_ns, sender_ns: played.sender_ns }
}
