//! The encoder: `Message` → MIDI 1.0 bytes.
//!
//! NOTE: we always write the full status byte, never running status. Running status saves a byte
//! per message but makes every byte on the wire depend on what came before, so a receiver that
//! joins late, or a mido peer (which has no running status), would misread the stream.

use crate::message::Message;
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
        let ch = |status: u8, channel: u8| status | (channel & 0x0F);
        match *self {
            Message::NoteOff { channel, note, velocity } => {
                out.copy_from_slice(&[ch(0x80, channel), note & 0x7F, velocity & 0x7F])
            }
            Message::NoteOn { channel, note, velocity } => {
                out.copy_from_slice(&[ch(0x90, channel), note & 0x7F, velocity & 0x7F])
            }
            Message::PolyTouch { channel, note, value } => {
                out.copy_from_slice(&[ch(0xA0, channel), note & 0x7F, value & 0x7F])
            }
            Message::ControlChange { channel, control, value } => {
                out.copy_from_slice(&[ch(0xB0, channel), control & 0x7F, value & 0x7F])
            }
            Message::ProgramChange { channel, program } => out.copy_from_slice(&[ch(0xC0, channel), program & 0x7F]),
            Message::Aftertouch { channel, value } => out.copy_from_slice(&[ch(0xD0, channel), value & 0x7F]),
            Message::PitchWheel { channel, pitch } => {
                // The wire carries pitch + 8192 as a 14-bit value, least significant 7 bits first.
                let raw = (i32::from(pitch) + 8192).clamp(0, 0x3FFF) as u16;
                out.copy_from_slice(&[ch(0xE0, channel), (raw & 0x7F) as u8, (raw >> 7) as u8])
            }
            Message::SysEx { ref data } => {
                out[0] = 0xF0;
                for (dst, &src) in out[1..needed - 1].iter_mut().zip(data) {
                    *dst = src & 0x7F;
                }
                out[needed - 1] = 0xF7;
            }
            Message::QuarterFrame { frame_type, frame_value } => {
                out.copy_from_slice(&[0xF1, ((frame_type & 0x07) << 4) | (frame_value & 0x0F)])
            }
            Message::SongPos { pos } => {
                let pos = pos & 0x3FFF;
                out.copy_from_slice(&[0xF2, (pos & 0x7F) as u8, (pos >> 7) as u8])
            }
            Message::SongSelect { song } => out.copy_from_slice(&[0xF3, song & 0x7F]),
            Message::TuneRequest => out[0] = 0xF6,
            Message::Clock => out[0] = 0xF8,
            Message::Start => out[0] = 0xFA,
            Message::Continue => out[0] = 0xFB,
            Message::Stop => out[0] = 0xFC,
            Message::ActiveSensing => out[0] = 0xFE,
            Message::Reset => out[0] = 0xFF,
        }
        Ok(needed)
    }

    /// The message's bytes in a new `Vec`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; self.encoded_len()];
        let written = self.encode(&mut out).expect("buffer sized by encoded_len");
        debug_assert_eq!(written, out.len());
        out
    }

    /// Appends the message's bytes to `out`.
    pub fn encode_to_vec(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.encoded_len(), 0);
        self.encode(&mut out[start..]).expect("buffer sized by encoded_len");
    }

    /// Appends the bytes of every message to `out`, growing it once for the whole batch.
    pub fn encode_all(messages: &[Message], out: &mut Vec<u8>) {
        let start = out.len();
        let total: usize = messages.iter().map(Message::encoded_len).sum();
        out.resize(start + total, 0);
        let mut at = start;
        for message in messages {
            at += message.encode(&mut out[at..]).expect("buffer sized by encoded_len");
        }
        debug_assert_eq!(at, out.len());
    }
}
