//! Every MIDI message but a sysex, as its 1–3 wire bytes: [`ShortMessage`], and the one table
//! that maps status bytes to message kinds.
//!
//! This is where midisock knows what a status byte means: how many data bytes follow it
//! ([`ShortMessage::len_for_status`]) and which [`Message`] its bytes are (the `build*` functions,
//! which the [`Parser`](crate::Parser) calls on its hot path too). Everything that holds MIDI
//! without a heap — the C ABI's send path, the plugin's lock-free rings — holds a `ShortMessage`
//! and converts with these functions instead of decoding status bytes itself. The other
//! direction, [`Message`] → bytes, is the encoder's (`encode.rs`), which `from_message` reuses.

use crate::encode::MAX_SHORT_MESSAGE_LEN;
use crate::message::{InvalidValue, Message, MessageType};
use crate::parser::DecodeError;
use std::fmt;

/// One MIDI message other than a sysex, as its wire bytes: a status byte and the 0–2 data bytes
/// it takes, always complete and valid (a `ShortMessage` cannot hold `[0x90, 60]`). `Copy`,
/// 4 bytes, never allocates; [`ShortMessage::to_message`] gives the [`Message`].
///
/// ```
/// use midisock::{Message, ShortMessage};
///
/// let note = ShortMessage::from_bytes(&[0x91, 60, 100])?;
/// assert_eq!(note.channel(), Some(1));
/// assert_eq!(note.to_message(), Message::NoteOn { channel: 1, note: 60, velocity: 100 });
/// assert!(ShortMessage::from_bytes(&[0x90, 60]).is_err()); // a note_on needs two data bytes
/// # Ok::<(), midisock::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortMessage {
    /// Status byte first; unused bytes are 0.
    bytes: [u8; MAX_SHORT_MESSAGE_LEN],
    len: u8,
}

impl ShortMessage {
    /// How many bytes, status byte included, a message starting with `status` has: 1–3, or
    /// `None` for a byte that does not start a short message (a data byte, sysex `F0`, `F7`, and
    /// the undefined `F4`, `F5`, `F9`, `FD`).
    pub const fn len_for_status(status: u8) -> Option<usize> {
        match status {
            0x80..=0xEF | 0xF1..=0xF3 => Some(1 + data_len(status) as usize),
            0xF6 | 0xF8 | 0xFA..=0xFC | 0xFE | 0xFF => Some(1),
            _ => None,
        }
    }

    /// The message in `bytes`, which must be exactly one whole message other than a sysex: a
    /// defined status byte first, then as many data bytes (0–127) as it takes, nothing more.
    pub fn from_bytes(bytes: &[u8]) -> Result<ShortMessage, DecodeError> {
        let (&status, data) = bytes.split_first().ok_or(DecodeError::NoMessage)?;
        let Some(len) = ShortMessage::len_for_status(status) else {
            return Err(if status == 0xF0 { DecodeError::SysEx } else { DecodeError::Malformed });
        };
        if let Some(at) = data.iter().position(|&b| b >= 0x80) {
            // A status byte inside the message cuts it short; after it, it starts another one.
            return Err(if at + 1 >= len { DecodeError::NotSingleMessage } else { DecodeError::Malformed });
        }
        match bytes.len().cmp(&len) {
            std::cmp::Ordering::Less => Err(DecodeError::Incomplete),
            std::cmp::Ordering::Greater => Err(DecodeError::NotSingleMessage),
            std::cmp::Ordering::Equal => {
                let mut short = ShortMessage { bytes: [status, 0, 0], len: len as u8 };
                short.bytes[1..len].copy_from_slice(data);
                Ok(short)
            }
        }
    }

    /// The wire bytes of `message`, after checking its fields ([`Message::validate`]); `Ok(None)`
    /// for a sysex, which has no short form.
    pub fn from_message(message: &Message) -> Result<Option<ShortMessage>, InvalidValue> {
        message.validate()?;
        Ok(message.short_bytes().map(|(bytes, len)| ShortMessage { bytes, len: len as u8 }))
    }

    /// The bytes, status byte first.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// How many bytes: 1, 2 or 3.
    #[allow(clippy::len_without_is_empty)] // never empty: there is always a status byte
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The status byte.
    pub fn status(&self) -> u8 {
        self.bytes[0]
    }

    /// The data bytes, 0 where the message has fewer than two.
    pub fn data(&self) -> [u8; 2] {
        [self.bytes[1], self.bytes[2]]
    }

    /// The channel (0–15) of a channel message; `None` for a system message.
    pub fn channel(&self) -> Option<u8> {
        (self.status() < 0xF0).then_some(self.status() & 0x0F)
    }

    /// True for the system real-time messages (clock, start, continue, stop, active_sensing,
    /// reset), which may interleave with any other message on the wire.
    pub fn is_realtime(&self) -> bool {
        self.status() >= 0xF8
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        self.to_message().message_type()
    }

    /// The [`Message`]: never a sysex, so building it allocates nothing.
    #[inline]
    pub fn to_message(&self) -> Message {
        let [status, a, b] = self.bytes;
        match status {
            0xF6 => Message::TuneRequest,
            0xF8..=0xFF => build_realtime(status),
            _ => build(status, [a, b]),
        }
    }
}

impl From<ShortMessage> for Message {
    fn from(short: ShortMessage) -> Message {
        short.to_message()
    }
}

impl TryFrom<&[u8]> for ShortMessage {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<ShortMessage, DecodeError> {
        ShortMessage::from_bytes(bytes)
    }
}

impl fmt::Debug for ShortMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortMessage({:02X?})", self.as_bytes())
    }
}

/// mido's text, as for the [`Message`].
impl fmt::Display for ShortMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_message().fmt(f)
    }
}

/// How many data bytes follow a channel or system common status byte (0 for any other byte).
#[inline(always)]
pub(crate) const fn data_len(status: u8) -> u8 {
    match status {
        0xC0..=0xDF => 1,
        0x80..=0xEF => 2,
        0xF1 | 0xF3 => 1,
        0xF2 => 2,
        _ => 0,
    }
}

/// The message for a channel or system common status with all its data bytes (known to be
/// 7-bit; the second is 0 for a status that takes one).
#[inline(always)]
pub(crate) fn build(status: u8, data: [u8; 2]) -> Message {
    let channel = status & 0x0F;
    let [a, b] = data;
    match status {
        0x80..=0xBF | 0xE0..=0xEF => build_two(status, a, b),
        0xC0..=0xCF => Message::ProgramChange { channel, program: a },
        0xD0..=0xDF => Message::Aftertouch { channel, value: a },
        0xF1 => Message::QuarterFrame { frame_type: a >> 4, frame_value: a & 0x0F },
        0xF2 => Message::SongPos { pos: (u16::from(b) << 7) | u16::from(a) },
        0xF3 => Message::SongSelect { song: a },
        _ => unreachable!("build() is only called for statuses with data bytes"),
    }
}

/// The message for a channel status with two data bytes (0x80–0xBF, 0xE0–0xEF), as a tree of
/// two-way branches ordered by how common the messages are (the parser's fast path calls it
/// directly).
#[inline(always)]
pub(crate) fn build_two(status: u8, a: u8, b: u8) -> Message {
    let channel = status & 0x0F;
    if status < 0xA0 {
        if status >= 0x90 {
            Message::NoteOn { channel, note: a, velocity: b }
        } else {
            Message::NoteOff { channel, note: a, velocity: b }
        }
    } else if status < 0xB0 {
        Message::PolyTouch { channel, note: a, value: b }
    } else if status < 0xC0 {
        Message::ControlChange { channel, control: a, value: b }
    } else {
        Message::PitchWheel { channel, pitch: ((i16::from(b) << 7) | i16::from(a)) - 8192 }
    }
}

/// The message of a defined real-time status byte.
#[inline(always)]
pub(crate) fn build_realtime(status: u8) -> Message {
    match status {
        0xF8 => Message::Clock,
        0xFA => Message::Start,
        0xFB => Message::Continue,
        0xFC => Message::Stop,
        0xFE => Message::ActiveSensing,
        0xFF => Message::Reset,
        _ => unreachable!("build_realtime() is only called for defined real-time statuses"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 0–3 byte sequence over statuses and telling data values: a short message exactly
    /// where the parser sees exactly one whole non-sysex message, and the same message.
    #[test]
    fn short_messages_are_exactly_the_parsers_single_messages() {
        let values = [0u8, 1, 0x3C, 0x40, 0x7F, 0x80, 0x90, 0xF0, 0xF7, 0xF8, 0xFE];
        let mut checked = 0;
        for status in 0..=255u8 {
            for &a in &values {
                for &b in &values {
                    for len in 0..=3 {
                        let bytes = &[status, a, b][..len];
                        let short = ShortMessage::from_bytes(bytes);
                        let whole = Message::from_bytes(bytes);
                        match (&short, &whole) {
                            (Ok(short), Ok(message)) => {
                                assert_eq!(&short.to_message(), message, "{bytes:02X?}");
                                assert_eq!(short.as_bytes(), bytes);
                                assert_eq!(short.len(), message.encoded_len());
                                assert_eq!(short.channel(), message.channel());
                                assert_eq!(short.is_realtime(), message.is_realtime());
                                let back = ShortMessage::from_message(message).unwrap().unwrap();
                                assert_eq!(&back, short);
                            }
                            (Err(_), Ok(Message::SysEx { .. })) => {
                                assert_eq!(short, Err(DecodeError::SysEx), "{bytes:02X?}")
                            }
                            (Err(_), Err(_)) => {}
                            _ => panic!("{bytes:02X?}: short {short:?}, parser {whole:?}"),
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000);
    }

    #[test]
    fn incomplete_and_extra_bytes_are_errors_that_say_so() {
        assert_eq!(ShortMessage::from_bytes(&[0x90, 60]), Err(DecodeError::Incomplete));
        assert_eq!(ShortMessage::from_bytes(&[0x90]), Err(DecodeError::Incomplete));
        assert_eq!(ShortMessage::from_bytes(&[0xC0]), Err(DecodeError::Incomplete));
        assert_eq!(ShortMessage::from_bytes(&[0xF2, 1]), Err(DecodeError::Incomplete));
        assert_eq!(ShortMessage::from_bytes(&[0x90, 60, 1, 2]), Err(DecodeError::NotSingleMessage));
        assert_eq!(ShortMessage::from_bytes(&[0xF8, 0xF8]), Err(DecodeError::NotSingleMessage));
        assert_eq!(ShortMessage::from_bytes(&[0x90, 0x80, 1]), Err(DecodeError::Malformed));
        assert_eq!(ShortMessage::from_bytes(&[0x3C]), Err(DecodeError::Malformed));
        assert_eq!(ShortMessage::from_bytes(&[0xF4]), Err(DecodeError::Malformed));
        assert_eq!(ShortMessage::from_bytes(&[0xF0, 1, 0xF7]), Err(DecodeError::SysEx));
        assert_eq!(ShortMessage::from_bytes(&[]), Err(DecodeError::NoMessage));
    }

    #[test]
    fn from_message_checks_fields_and_leaves_sysex_out() {
        let pitch = Message::PitchWheel { channel: 3, pitch: -8192 };
        let short = ShortMessage::from_message(&pitch).unwrap().unwrap();
        assert_eq!(short.as_bytes(), [0xE3, 0, 0]);
        assert_eq!(Message::from(short), pitch);
        assert_eq!(ShortMessage::from_message(&Message::sysex(vec![1]).unwrap()), Ok(None));
        let bad = Message::NoteOn { channel: 16, note: 60, velocity: 1 };
        assert_eq!(ShortMessage::from_message(&bad).unwrap_err().field, "channel");
    }

    #[test]
    fn small_and_printable() {
        assert_eq!(std::mem::size_of::<ShortMessage>(), 4);
        let clock = ShortMessage::from_bytes(&[0xF8]).unwrap();
        assert_eq!(clock.to_string(), "clock time=0");
        assert_eq!(format!("{clock:?}"), "ShortMessage([F8])");
        assert_eq!(clock.message_type(), MessageType::Clock);
    }
}
