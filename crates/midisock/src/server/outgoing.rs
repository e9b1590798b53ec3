//! What a broadcast or a relay writes to the clients: the messages encoded plain once, and for
//! each client that asked for stamps, the same messages stamped with that client's own encoder.
//!
//! A client that asked (it wrote [`crate::timing::STAMP_REQUEST`]) gets
//! [`crate::timing::STAMP_ANSWER`] once, then every message as `F5 <stamp> <message>`. Each
//! stamped client needs its own [`StampEncoder`]: a short stamp counts from the last stamp *that
//! client* received, and its first stamp must be a full one. The plain bytes are shared by every
//! other client, byte for byte what mido sends, so a broadcast to plain clients costs what it
//! did before the extension (the clock is not even read unless some client is stamped).

use crate::clock::monotonic_ns;
use crate::message::{InvalidValue, Message};
use crate::timing::{StampEncoder, MAX_STAMPED_SHORT_LEN, MAX_STAMP_LEN};
use std::cell::OnceCell;

/// One message inside [`Outgoing::plain`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    /// Where the message's bytes end in `plain` (it starts where the previous one ended).
    pub(crate) end: usize,
    /// Its time on the server's clock (`CLOCK_MONOTONIC` ns) for stamped clients; `None`: the
    /// time the broadcast is written (read once, when the first stamped client is met).
    pub(crate) time_ns: Option<u64>,
}

/// Messages on their way to every client.
pub(crate) struct Outgoing<'a> {
    plain: &'a [u8],
    spans: &'a [Span],
    now: OnceCell<u64>,
}

impl<'a> Outgoing<'a> {
    pub(crate) fn new(plain: &'a [u8], spans: &'a [Span]) -> Outgoing<'a> {
        debug_assert_eq!(spans.last().map_or(0, |s| s.end), plain.len());
        Outgoing { plain, spans, now: OnceCell::new() }
    }

    /// The messages as mido writes them.
    pub(crate) fn plain(&self) -> &'a [u8] {
        self.plain
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }

    /// The messages stamped by `encoder`: written into `stack` when they fit (one short message:
    /// the common case, no allocation), else into `scratch` (kept by the caller, so its
    /// allocation is reused).
    pub(crate) fn stamped<'b>(
        &self,
        encoder: &mut StampEncoder,
        stack: &'b mut [u8; MAX_STAMPED_SHORT_LEN],
        scratch: &'b mut Vec<u8>,
    ) -> &'b [u8] {
        let mut stamp = [0u8; MAX_STAMP_LEN];
        let mut start = 0;
        if let [span] = self.spans {
            if MAX_STAMP_LEN + span.end <= stack.len() {
                let stamp_len = encoder.write_stamp(self.time_of(span), &mut stamp);
                stack[..stamp_len].copy_from_slice(&stamp[..stamp_len]);
                stack[stamp_len..stamp_len + span.end].copy_from_slice(self.plain);
                return &stack[..stamp_len + span.end];
            }
        }
        scratch.clear();
        for span in self.spans {
            let stamp_len = encoder.write_stamp(self.time_of(span), &mut stamp);
            scratch.extend_from_slice(&stamp[..stamp_len]);
            scratch.extend_from_slice(&self.plain[start..span.end]);
            start = span.end;
        }
        scratch
    }

    fn time_of(&self, span: &Span) -> u64 {
        span.time_ns.unwrap_or_else(|| *self.now.get_or_init(monotonic_ns))
    }
}

/// The buffers a broadcasting thread encodes into, kept under [`super::shared::Shared::broadcast`]
/// so their allocations are reused.
#[derive(Default)]
pub(crate) struct BroadcastScratch {
    pub(crate) plain: Vec<u8>,
    pub(crate) spans: Vec<Span>,
    /// Stamped bytes for one client at a time, when they do not fit on the stack.
    pub(crate) stamped: Vec<u8>,
}

impl BroadcastScratch {
    /// Validates and encodes `messages` plain, one span each, all sent "now". Nothing is kept
    /// when one is invalid.
    pub(crate) fn encode(&mut self, messages: &[Message]) -> Result<(), InvalidValue> {
        self.plain.clear();
        self.spans.clear();
        Message::encode_all_checked(messages, &mut self.plain)?;
        let mut end = 0;
        self.spans.extend(messages.iter().map(|m| {
            end += m.encoded_len();
            Span { end, time_ns: None }
        }));
        Ok(())
    }

    /// Gives memory back after a large broadcast (a big sysex), so one does not pin it for ever.
    pub(crate) fn shrink(&mut self) {
        const KEEP: usize = 64 * 1024;
        if self.plain.capacity() > KEEP {
            self.plain = Vec::new();
        }
        if self.stamped.capacity() > KEEP {
            self.stamped = Vec::new();
        }
        if self.spans.capacity() > KEEP / std::mem::size_of::<Span>() {
            self.spans = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::{Decoded, StampDecoder, STAMP_ANSWER};

    fn decode(bytes: &[u8]) -> Vec<(Option<u64>, Message)> {
        let mut decoder = StampDecoder::default();
        let mut out = Vec::new();
        decoder.feed(STAMP_ANSWER, |_| {});
        decoder.feed(bytes, |d| {
            if let Decoded::Message { sender_ns, message } = d {
                out.push((sender_ns, message));
            }
        });
        out
    }

    #[test]
    fn one_short_message_is_stamped_on_the_stack_and_many_in_the_scratch() {
        let note = Message::NoteOn { channel: 1, note: 60, velocity: 100 };
        let mut scratch = BroadcastScratch::default();
        scratch.encode(std::slice::from_ref(&note)).unwrap();
        let outgoing = Outgoing::new(&scratch.plain, &scratch.spans);
        let mut encoder = StampEncoder::new();
        let mut stack = [0; MAX_STAMPED_SHORT_LEN];
        let mut heap = Vec::new();
        let bytes = outgoing.stamped(&mut encoder, &mut stack, &mut heap).to_vec();
        assert!(heap.is_empty(), "one short message needs no heap buffer");
        assert_eq!(bytes.len(), 1 + 8 + 3, "the first stamp is a full one");
        let decoded = decode(&bytes);
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].1, note);
        assert!(decoded[0].0.is_some());

        let batch = [note.clone(), Message::SysEx { data: vec![1, 2, 3] }, Message::Clock];
        scratch.encode(&batch).unwrap();
        let outgoing = Outgoing::new(&scratch.plain, &scratch.spans);
        let bytes = outgoing.stamped(&mut encoder, &mut stack, &mut heap).to_vec();
        let decoded: Vec<Message> = decode(&bytes).into_iter().map(|(_, m)| m).collect();
        assert_eq!(decoded, batch);
        assert_eq!(outgoing.plain(), &scratch.plain[..]);
    }

    #[test]
    fn given_times_are_stamped_and_never_go_backwards() {
        let plain = [0x90, 60, 1, 0x90, 61, 1, 0x90, 62, 1];
        let spans = [
            Span { end: 3, time_ns: Some(5_000_000) },
            Span { end: 6, time_ns: Some(4_000_000) },
            Span { end: 9, time_ns: Some(7_000_000) },
        ];
        let outgoing = Outgoing::new(&plain, &spans);
        let mut stack = [0; MAX_STAMPED_SHORT_LEN];
        let mut heap = Vec::new();
        let bytes = outgoing.stamped(&mut StampEncoder::new(), &mut stack, &mut heap).to_vec();
        let times: Vec<Option<u64>> = decode(&bytes).into_iter().map(|(t, _)| t).collect();
        assert_eq!(times, [Some(5_000_000), Some(5_000_000), Some(7_000_000)]);
    }

    #[test]
    fn an_invalid_message_keeps_nothing() {
        let mut scratch = BroadcastScratch::default();
        let bad = [Message::Clock, Message::NoteOn { channel: 16, note: 0, velocity: 0 }];
        assert!(scratch.encode(&bad).is_err());
        assert!(scratch.plain.is_empty() && scratch.spans.is_empty());
    }
}
