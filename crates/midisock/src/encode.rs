//! The encoder: `Message` → MIDI 1.0 bytes.
//!
//! NOTE: we always write the full status byte, never running status. Running status saves a byte
//! per message but makes every byte on the wire depend on what came before, so a receiver that
//! joins late, or a mido peer (which has no running status), would misread the stream.

use crate::message::{InvalidValue, Message};
use std::fmt;

/// The longest encoding of any non-sysex message.
pub const MAX_SHORT_MESSAGE_LEN: usize = 3;

/// The output buffer given to [`Message::encode`] is shorter than the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the message needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer too small: the message needs {} bytes", self.needed)
    }
}

impl std::error::Error for BufferTooSmall {}

impl Message {
    /// The number of bytes [`Message::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::SysEx { data } => data.len() + 2,
            Message::ProgramChange { .. }
            | Message::Aftertouch { .. }
            | Message::QuarterFrame { .. }
            | Message::SongSelect { .. } => 2,
            Message::NoteOff { .. }
            | Message::NoteOn { .. }
            | Message::PolyTouch { .. }
            | Message::ControlChange { .. }
            | Message::PitchWheel { .. }
            | Message::SongPos { .. } => 3,
            _ => 1,
        }
    }

    /// Writes the message's bytes into `out` and returns how many were written. Allocates nothing.
    ///
    /// Fields are masked to their bit width, so an unchecked out-of-range value can never produce
    /// a stray status byte; send paths call [`Message::validate`] first to reject such values.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = self.encoded_len();
        let out = out.get_mut(..needed).ok_or(BufferTooSmall { needed })?;
        match self.short_bytes() {
            Some((bytes, len)) => out.copy_from_slice(&bytes[..len]),
            None => {
                let Message::SysEx { data } = self else { unreachable!("only a sysex has no short encoding") };
                out[0] = 0xF0;
                for (dst, &src) in out[1..needed - 1].iter_mut().zip(data) {
                    *dst = src & 0x7F;
                }
                out[needed - 1] = 0xF7;
            }
        }
        Ok(needed)
    }

    /// The bytes of any message but a sysex, in a fixed array with their count; `None` for a
    /// sysex. The one place the wire layout of short messages is written down.
    #[inline(always)]
    pub(crate) fn short_bytes(&self) -> Option<([u8; MAX_SHORT_MESSAGE_LEN], usize)> {
        let ch = |status: u8, channel: u8| status | (channel & 0x0F);
        let three = |a: u8, b: u8, c: u8| Some(([a, b & 0x7F, c & 0x7F], 3));
        let two = |a: u8, b: u8| Some(([a, b & 0x7F, 0], 2));
        let one = |a: u8| Some(([a, 0, 0], 1));
        match *self {
            Message::NoteOff { channel, note, velocity } => three(ch(0x80, channel), note, velocity),
            Message::NoteOn { channel, note, velocity } => three(ch(0x90, channel), note, velocity),
            Message::PolyTouch { channel, note, value } => three(ch(0xA0, channel), note, value),
            Message::ControlChange { channel, control, value } => three(ch(0xB0, channel), control, value),
            Message::ProgramChange { channel, program } => two(ch(0xC0, channel), program),
            Message::Aftertouch { channel, value } => two(ch(0xD0, channel), value),
            Message::PitchWheel { channel, pitch } => {
                // The wire carries pitch + 8192 as a 14-bit value, least significant 7 bits first.
                let raw = (i32::from(pitch) + 8192).clamp(0, 0x3FFF) as u16;
                three(ch(0xE0, channel), raw as u8, (raw >> 7) as u8)
            }
            Message::SysEx { .. } => None,
            Message::QuarterFrame { frame_type, frame_value } => {
                two(0xF1, ((frame_type & 0x07) << 4) | (frame_value & 0x0F))
            }
            Message::SongPos { pos } => three(0xF2, pos as u8, (pos >> 7) as u8),
            Message::SongSelect { song } => two(0xF3, song),
            Message::TuneRequest => one(0xF6),
            Message::Clock => one(0xF8),
            Message::Start => one(0xFA),
            Message::Continue => one(0xFB),
            Message::Stop => one(0xFC),
            Message::ActiveSensing => one(0xFE),
            Message::Reset => one(0xFF),
        }
    }

    /// The message's bytes in a new `Vec`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; self.encoded_len()];
        let written = self.encode(&mut out).expect("buffer sized by encoded_len");
        debug_assert_eq!(written, out.len());
        out
    }

    /// Appends the message's bytes to `out`.
    #[inline(always)]
    pub fn encode_to_vec(&self, out: &mut Vec<u8>) {
        match self.short_bytes() {
            // Fixed-size copies: a variable-length one costs a memmove call per message.
            Some((bytes, 3)) => out.extend_from_slice(&bytes),
            Some((bytes, 2)) => out.extend_from_slice(&bytes[..2]),
            Some((bytes, _)) => out.push(bytes[0]),
            None => {
                let start = out.len();
                out.resize(start + self.encoded_len(), 0);
                self.encode(&mut out[start..]).expect("buffer sized by encoded_len");
            }
        }
    }

    /// Appends the bytes of every message to `out`, growing it once for the whole batch.
    pub fn encode_all(messages: &[Message], out: &mut Vec<u8>) {
        out.reserve(messages.iter().map(Message::encoded_len).sum());
        for message in messages {
            message.encode_to_vec(out);
        }
    }

    /// [`Message::encode_all`] with every message checked by [`Message::validate`] in the same
    /// pass — what every send path uses. Either all messages are valid and all are appended, or
    /// `out` is left as it was and the first invalid value is returned.
    pub fn encode_all_checked(messages: &[Message], out: &mut Vec<u8>) -> Result<(), InvalidValue> {
        let start = out.len();
        // Room for the common case (no sysex) at once; a sysex grows the buffer as it is written.
        out.reserve(messages.len() * MAX_SHORT_MESSAGE_LEN);
        for message in messages {
            if let Err(invalid) = message.validate() {
                out.truncate(start);
                return Err(invalid);
            }
            message.encode_to_vec(out);
        }
        Ok(())
    }
}
