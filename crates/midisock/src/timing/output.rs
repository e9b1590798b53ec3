//! [`TimedOutput`]: the sending half of the timing extension, as ports and servers use it.
//!
//! A connection's output starts **plain**: today's bytes, what mido reads. When the peer asks
//! for stamps (its [`STAMP_REQUEST`](super::STAMP_REQUEST), seen by the receiving side), the owner
//! calls [`TimedOutput::answer_stamps`]; the next message written is preceded by
//! [`STAMP_ANSWER`], in the same buffer, and every message after that is stamped
//! ([`StampEncoder`]). The answer therefore always sits between two whole messages, which is what
//! the peer's decoder expects; the owner only has to write each encoded buffer whole, in order
//! (a port does so under its send lock, a server per client queue).
//!
//! Nothing here allocates on the short-message path: [`TimedOutput::encode`] writes into a
//! caller's buffer of [`MAX_TIMED_SHORT_LEN`] bytes.

use super::hello::STAMP_ANSWER;
use super::wire::{StampEncoder, MAX_STAMPED_SHORT_LEN};
use crate::encode::BufferTooSmall;
use crate::message::{InvalidValue, Message};

/// The most bytes [`TimedOutput::encode`] writes for any message but a sysex: the answer and a
/// stamped message.
pub(crate) const MAX_TIMED_SHORT_LEN: usize = STAMP_ANSWER.len() + MAX_STAMPED_SHORT_LEN;

/// Where a connection's output stands.
#[derive(Clone, Debug, Default)]
enum State {
    /// Today's bytes (the peer did not ask, or does not speak the extension).
    #[default]
    Plain,
    /// The peer asked: the next message goes out after the answer, stamped.
    AnswerDue,
    /// The answer is out: every message is stamped.
    Stamping(StampEncoder),
}

/// One connection's outgoing encoder: plain until the peer asks, stamped after the answer.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimedOutput {
    state: State,
}

impl TimedOutput {
    /// Plain output.
    pub(crate) fn new() -> TimedOutput {
        TimedOutput::default()
    }

    /// The peer asked for stamps: the next message is preceded by the answer and stamped, and so
    /// is every one after it. Asking again changes nothing.
    pub(crate) fn answer_stamps(&mut self) {
        if matches!(self.state, State::Plain) {
            self.state = State::AnswerDue;
        }
    }

    /// True while messages go out as today's bytes (no answer due, none written).
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.state, State::Plain)
    }

    /// True once the answer has been written: messages carry stamps (the tests' view).
    #[cfg(test)]
    pub(crate) fn is_stamping(&self) -> bool {
        matches!(self.state, State::Stamping(_))
    }

    /// The answer, when one is due: moves to stamping and returns the bytes to write first.
    fn take_answer(&mut self) -> &'static [u8] {
        match self.state {
            State::AnswerDue => {
                self.state = State::Stamping(StampEncoder::new());
                STAMP_ANSWER
            }
            _ => &[],
        }
    }

    /// Writes `message`, sent at `now_ns` ([`crate::monotonic_ns`], or a relayed message's sender
    /// time on this clock), into `out` as this connection's output needs it: plain, or the answer
    /// first when due, then stamped. Returns the length. Allocates nothing; a buffer of
    /// [`MAX_TIMED_SHORT_LEN`] bytes holds any message but a sysex. A buffer too small changes
    /// nothing. The message is not validated (see [`Message::validate`]).
    pub(crate) fn encode(&mut self, now_ns: u64, message: &Message, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match &mut self.state {
            State::Plain => message.encode(out),
            State::Stamping(encoder) => encoder.encode(now_ns, message, out),
            State::AnswerDue => {
                let answer = STAMP_ANSWER.len();
                let mut encoder = StampEncoder::new();
                let rest = out.get_mut(answer..).ok_or(BufferTooSmall { needed: answer + MAX_STAMPED_SHORT_LEN })?;
                let written =
                    encoder.encode(now_ns, message, rest).map_err(|e| BufferTooSmall { needed: answer + e.needed })?;
                out[..answer].copy_from_slice(STAMP_ANSWER);
                self.state = State::Stamping(encoder);
                Ok(answer + written)
            }
        }
    }

    /// Appends `message`, sent at `now_ns`, to `out` (see [`TimedOutput::encode`]); for sysex and
    /// batches. Not validated.
    pub(crate) fn encode_to_vec(&mut self, now_ns: u64, message: &Message, out: &mut Vec<u8>) {
        out.extend_from_slice(self.take_answer());
        match &mut self.state {
            State::Stamping(encoder) => encoder.encode_to_vec(now_ns, message, out),
            _ => message.encode_to_vec(out),
        }
    }

    /// Checks every message, then appends them all, sent at `now_ns`, to `out`. On an invalid
    /// message nothing is appended and the state is unchanged (a batch is sent whole or not at
    /// all, and an answer must not be spent on a batch that is never written).
    pub(crate) fn encode_all_checked(
        &mut self,
        now_ns: u64,
        messages: &[Message],
        out: &mut Vec<u8>,
    ) -> Result<(), InvalidValue> {
        if self.is_plain() {
            return Message::encode_all_checked(messages, out);
        }
        for message in messages {
            message.validate()?;
        }
        for message in messages {
            self.encode_to_vec(now_ns, message, out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Parser;
    use crate::timing::{Decoded, StampDecoder, MAX_STAMP_LEN};

    fn note(n: u8) -> Message {
        Message::NoteOn { channel: 0, note: n, velocity: 100 }
    }

    fn decode(bytes: &[u8]) -> Vec<Decoded> {
        let mut decoder = StampDecoder::new(Parser::new());
        let mut items = Vec::new();
        decoder.feed(bytes, |item| items.push(item));
        items
    }

    #[test]
    fn plain_until_asked_then_the_answer_then_stamps() {
        let mut output = TimedOutput::new();
        let mut wire = Vec::new();
        let mut buf = [0; MAX_TIMED_SHORT_LEN];
        let n = output.encode(1_000_000, &note(1), &mut buf).unwrap();
        assert_eq!(&buf[..n], [0x90, 1, 100], "today's bytes");
        wire.extend_from_slice(&buf[..n]);
        output.answer_stamps();
        assert!(!output.is_plain() && !output.is_stamping());
        let n = output.encode(2_000_000, &note(2), &mut buf).unwrap();
        assert_eq!(&buf[..STAMP_ANSWER.len()], STAMP_ANSWER);
        assert_eq!(n, STAMP_ANSWER.len() + MAX_STAMP_LEN + 3, "the answer and a full first stamp");
        wire.extend_from_slice(&buf[..n]);
        output.answer_stamps();
        let n = output.encode(3_000_000, &note(3), &mut buf).unwrap();
        assert_eq!(n, 1 + 2 + 3, "a short stamp: asking again writes no second answer");
        wire.extend_from_slice(&buf[..n]);
        assert_eq!(
            decode(&wire),
            [
                Decoded::Message { sender_ns: None, message: note(1) },
                Decoded::StampsStart,
                Decoded::Message { sender_ns: Some(2_000_000), message: note(2) },
                Decoded::Message { sender_ns: Some(3_000_000), message: note(3) },
            ]
        );
    }

    #[test]
    fn the_longest_short_message_fits_and_a_short_buffer_changes_nothing() {
        let mut output = TimedOutput::new();
        output.answer_stamps();
        let mut small = [0; 12];
        assert!(output.encode(5, &note(1), &mut small).is_err());
        assert!(!output.is_stamping(), "the answer is still due");
        let mut buf = [0; MAX_TIMED_SHORT_LEN];
        let longest = Message::SongPos { pos: 0x3FFF };
        assert_eq!(output.encode(u64::MAX / 2, &longest, &mut buf), Ok(MAX_TIMED_SHORT_LEN));
        assert!(output.is_stamping());
    }

    #[test]
    fn vec_encoding_matches_slice_encoding_and_carries_sysex() {
        let messages = [note(1), Message::sysex(vec![1, 2, 3]).unwrap(), Message::Clock];
        let mut a = TimedOutput::new();
        let mut b = TimedOutput::new();
        a.answer_stamps();
        b.answer_stamps();
        let mut from_slices = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let mut buf = [0; 64];
            let n = a.encode(i as u64 * 1_000, m, &mut buf).unwrap();
            from_slices.extend_from_slice(&buf[..n]);
        }
        let mut from_vec = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            b.encode_to_vec(i as u64 * 1_000, m, &mut from_vec);
        }
        assert_eq!(from_slices, from_vec);
        let decoded = decode(&from_vec);
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded[2], Decoded::Message { sender_ns: Some(1_000), message: messages[1].clone() });
    }

    #[test]
    fn an_invalid_batch_appends_nothing_and_keeps_the_answer_due() {
        let mut output = TimedOutput::new();
        output.answer_stamps();
        let bad = Message::NoteOn { channel: 16, note: 1, velocity: 1 };
        let mut out = Vec::new();
        assert!(output.encode_all_checked(7, &[note(1), bad], &mut out).is_err());
        assert!(out.is_empty() && !output.is_stamping());
        output.encode_all_checked(7, &[note(1), note(2)], &mut out).unwrap();
        assert!(out.starts_with(STAMP_ANSWER));
        assert_eq!(decode(&out).len(), 3);
    }

    #[test]
    fn plain_batches_are_todays_bytes() {
        let mut output = TimedOutput::new();
        let mut out = Vec::new();
        output.encode_all_checked(7, &[note(1), Message::Stop], &mut out).unwrap();
        assert_eq!(out, [0x90, 1, 100, 0xFC]);
    }
}
