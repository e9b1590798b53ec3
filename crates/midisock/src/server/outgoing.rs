//! What a broadcast or a relay writes to the clients: the messages encoded plain once, and for
//! each client that asked for stamps, the same messages encoded by that client's own
//! [`TimedOutput`].
//!
//! A client that asked (it wrote [`crate::timing::STAMP_REQUEST`]) gets the answer before the
//! next message it is sent, then every message as `F5 <stamp> <message>`. Each stamped client
//! needs its own encoder: a short stamp counts from the last stamp *that client* received, and
//! its first stamp must be a full one. The plain bytes are shared by every other client, byte for
//! byte what mido sends, so a broadcast to plain clients costs what it did before the extension
//! (the clock is not even read unless some client is stamped).

use crate::clock::monotonic_ns;
use crate::message::{InvalidValue, Message};
use crate::timing::{TimedOutput, MAX_TIMED_SHORT_LEN};
use std::cell::OnceCell;

/// Messages on their way to every client.
pub(crate) struct Outgoing<'a> {
    /// The messages as mido writes them.
    plain: &'a [u8],
    messages: &'a [Message],
    /// Each message's time on the server's clock (`CLOCK_MONOTONIC` ns) for stamped clients;
    /// `None`: the time the broadcast is written, read once, when the first stamped client is met.
    times: Option<&'a [u64]>,
    now: OnceCell<u64>,
}

impl<'a> Outgoing<'a> {
    /// `messages` sent now; `plain` is their plain encoding.
    pub(crate) fn now(plain: &'a [u8], messages: &'a [Message]) -> Outgoing<'a> {
        Outgoing { plain, messages, times: None, now: OnceCell::new() }
    }

    /// `messages` sent at `times` (one each), for a relay.
    pub(crate) fn at(plain: &'a [u8], messages: &'a [Message], times: &'a [u64]) -> Outgoing<'a> {
        debug_assert_eq!(messages.len(), times.len());
        Outgoing { plain, messages, times: Some(times), now: OnceCell::new() }
    }

    pub(crate) fn plain(&self) -> &'a [u8] {
        self.plain
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages as `output` encodes them for its client (the answer first when one is due):
    /// into `stack` for one message other than a sysex — the common case, no allocation — else
    /// into `scratch` (kept by the caller, so its allocation is reused).
    pub(crate) fn encode_for<'b>(
        &self,
        output: &mut TimedOutput,
        stack: &'b mut [u8; MAX_TIMED_SHORT_LEN],
        scratch: &'b mut Vec<u8>,
    ) -> &'b [u8] {
        if let [message] = self.messages {
            // Only a sysex is too long for the stack; a failed encode changes nothing.
            if let Ok(len) = output.encode(self.time_of(0), message, stack) {
                return &stack[..len];
            }
        }
        scratch.clear();
        for (i, message) in self.messages.iter().enumerate() {
            output.encode_to_vec(self.time_of(i), message, scratch);
        }
        scratch
    }

    fn time_of(&self, index: usize) -> u64 {
        match self.times {
            Some(times) => times[index],
            None => *self.now.get_or_init(monotonic_ns),
        }
    }
}

/// The buffers a broadcasting thread encodes into, kept under [`super::shared::Shared::broadcast`]
/// so their allocations are reused.
#[derive(Default)]
pub(crate) struct BroadcastScratch {
    pub(crate) plain: Vec<u8>,
    /// One stamped client's bytes at a time, when they do not fit on the stack.
    pub(crate) stamped: Vec<u8>,
}

impl BroadcastScratch {
    /// Validates and encodes `messages` plain. Nothing is kept when one is invalid.
    pub(crate) fn encode(&mut self, messages: &[Message]) -> Result<(), InvalidValue> {
        self.plain.clear();
        Message::encode_all_checked(messages, &mut self.plain)
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::{Decoded, StampDecoder, STAMP_ANSWER};

    fn decode(bytes: &[u8]) -> Vec<Decoded> {
        let mut decoder = StampDecoder::default();
        let mut out = Vec::new();
        decoder.feed(bytes, |d| out.push(d));
        out
    }

    fn stamped_times(bytes: &[u8]) -> Vec<Option<u64>> {
        decode(bytes)
            .into_iter()
            .filter_map(|d| match d {
                Decoded::Message { sender_ns, .. } => Some(sender_ns),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn plain_clients_get_the_shared_bytes_and_a_stamped_one_its_own_on_the_stack() {
        let note = Message::NoteOn { channel: 1, note: 60, velocity: 100 };
        let mut scratch = BroadcastScratch::default();
        scratch.encode(std::slice::from_ref(&note)).unwrap();
        let outgoing = Outgoing::now(&scratch.plain, std::slice::from_ref(&note));
        assert_eq!(outgoing.plain(), [0x91, 60, 100]);
        let mut output = TimedOutput::new();
        output.answer_stamps();
        let mut stack = [0; MAX_TIMED_SHORT_LEN];
        let mut heap = Vec::new();
        let bytes = outgoing.encode_for(&mut output, &mut stack, &mut heap).to_vec();
        assert!(heap.is_empty(), "one short message needs no heap buffer");
        assert!(bytes.starts_with(STAMP_ANSWER), "the answer goes out with the first message after the request");
        let decoded = decode(&bytes);
        assert_eq!(decoded.len(), 2);
        assert!(matches!(&decoded[1], Decoded::Message { sender_ns: Some(_), message } if *message == note));
        // The next broadcast: a short stamp, no second answer.
        let bytes = outgoing.encode_for(&mut output, &mut stack, &mut heap).to_vec();
        assert_eq!(bytes.len(), 1 + 1 + 3);
    }

    #[test]
    fn a_batch_with_a_sysex_goes_through_the_scratch_buffer() {
        let batch = [Message::Clock, Message::SysEx { data: vec![1, 2, 3] }, Message::Stop];
        let mut scratch = BroadcastScratch::default();
        scratch.encode(&batch).unwrap();
        let outgoing = Outgoing::now(&scratch.plain, &batch);
        let mut output = TimedOutput::new();
        output.answer_stamps();
        let mut stack = [0; MAX_TIMED_SHORT_LEN];
        let mut heap = Vec::new();
        let bytes = outgoing.encode_for(&mut output, &mut stack, &mut heap).to_vec();
        let messages: Vec<Message> = decode(&bytes)
            .into_iter()
            .filter_map(|d| match d {
                Decoded::Message { message, .. } => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(messages, batch);
        let times = stamped_times(&bytes);
        assert!(times.iter().all(|t| *t == times[0] && t.is_some()), "one broadcast, one time: {times:?}");
    }

    #[test]
    fn relay_times_are_stamped_and_never_go_backwards() {
        let notes: Vec<Message> = (60..63).map(|n| Message::NoteOn { channel: 0, note: n, velocity: 1 }).collect();
        let mut plain = Vec::new();
        Message::encode_all(&notes, &mut plain);
        let times = [5_000_000, 4_000_000, 7_000_000];
        let outgoing = Outgoing::at(&plain, &notes, &times);
        let mut output = TimedOutput::new();
        output.answer_stamps();
        let mut stack = [0; MAX_TIMED_SHORT_LEN];
        let mut heap = Vec::new();
        let bytes = outgoing.encode_for(&mut output, &mut stack, &mut heap).to_vec();
        assert_eq!(stamped_times(&bytes), [Some(5_000_000), Some(5_000_000), Some(7_000_000)]);
    }

    #[test]
    fn an_invalid_message_keeps_nothing() {
        let mut scratch = BroadcastScratch::default();
        let bad = [Message::Clock, Message::NoteOn { channel: 16, note: 0, velocity: 0 }];
        assert!(scratch.encode(&bad).is_err());
        assert!(scratch.plain.is_empty());
    }
}
