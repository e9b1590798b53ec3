//! [`HeldNotes`]: which notes a stream has left sounding, so they can be released when the
//! stream ends. A dropped connection must not leave a synth droning.

use crate::message::Message;

/// The notes and sustain pedals a MIDI stream holds down, updated message by message.
///
/// Fixed size (16 × 128 bits plus a sustain mask), `Copy`, and allocation-free: safe to keep on an
/// audio thread.
///
/// ```
/// use midisock::{HeldNotes, Message};
/// let mut held = HeldNotes::default();
/// held.observe(&Message::NoteOn { channel: 2, note: 60, velocity: 90 });
/// let mut releases = Vec::new();
/// held.release_all(|m| releases.push(m));
/// assert_eq!(releases, vec![Message::NoteOff { channel: 2, note: 60, velocity: 0 }]);
/// assert!(held.is_silent());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldNotes {
    /// Bit `n % 64` of `keys[c][n / 64]`: note `n` on channel `c` is down. Two 64-bit words
    /// rather than a `u128`, whose variable shifts cost several instructions on every note.
    keys: [[u64; 2]; 16],
    /// Bit `c`: the sustain pedal (CC 64) of channel `c` is down.
    sustain: u16,
}

/// CC 64: the sustain (damper) pedal; values of 64 and up mean down.
const SUSTAIN: u8 = 64;
/// CC 120 (all sound off) and 123 (all notes off) release everything on their channel.
const ALL_SOUND_OFF: u8 = 120;
const ALL_NOTES_OFF: u8 = 123;

impl HeldNotes {
    /// Updates the state with one message of the stream.
    #[inline]
    pub fn observe(&mut self, message: &Message) {
        match *message {
            Message::NoteOn { channel, note, velocity } if velocity > 0 => {
                let (word, bit) = self.key(channel, note);
                *word |= bit;
            }
            // A note_on with velocity 0 is a note_off by MIDI convention.
            Message::NoteOn { channel, note, .. } | Message::NoteOff { channel, note, .. } => {
                let (word, bit) = self.key(channel, note);
                *word &= !bit;
            }
            Message::ControlChange { channel, control: SUSTAIN, value } => {
                let bit = 1u16 << (channel & 0x0F);
                if value >= 64 {
                    self.sustain |= bit;
                } else {
                    self.sustain &= !bit;
                }
            }
            Message::ControlChange { channel, control: ALL_SOUND_OFF | ALL_NOTES_OFF, .. } => {
                self.keys[usize::from(channel & 0x0F)] = [0; 2];
            }
            Message::Reset => *self = HeldNotes::default(),
            _ => {}
        }
    }

    /// The word and bit of `note` on `channel` in `keys`.
    #[inline]
    fn key(&mut self, channel: u8, note: u8) -> (&mut u64, u64) {
        let note = note & 0x7F;
        (&mut self.keys[usize::from(channel & 0x0F)][usize::from(note >> 6)], 1u64 << (note & 63))
    }

    /// True when no note and no sustain pedal is held.
    pub fn is_silent(&self) -> bool {
        self.sustain == 0 && self.keys.iter().flatten().all(|&k| k == 0)
    }

    /// Emits a note_off (velocity 0) for every held note and a sustain-off for every held pedal,
    /// channel by channel, then forgets them. Allocates nothing.
    pub fn release_all(&mut self, mut emit: impl FnMut(Message)) {
        for channel in 0..16u8 {
            for (half, mut keys) in (0u8..).zip(self.keys[usize::from(channel)]) {
                while keys != 0 {
                    let note = half * 64 + keys.trailing_zeros() as u8;
                    keys &= keys - 1;
                    emit(Message::NoteOff { channel, note, velocity: 0 });
                }
            }
            if self.sustain & (1 << channel) != 0 {
                emit(Message::ControlChange { channel, control: SUSTAIN, value: 0 });
            }
        }
        *self = HeldNotes::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn releases(held: &mut HeldNotes) -> Vec<Message> {
        let mut out = Vec::new();
        held.release_all(|m| out.push(m));
        out
    }

    #[test]
    fn note_off_and_velocity_zero_release() {
        let mut held = HeldNotes::default();
        for note in [60, 61, 62] {
            held.observe(&Message::NoteOn { channel: 0, note, velocity: 1 });
        }
        held.observe(&Message::NoteOff { channel: 0, note: 60, velocity: 5 });
        held.observe(&Message::NoteOn { channel: 0, note: 61, velocity: 0 });
        assert_eq!(releases(&mut held), vec![Message::NoteOff { channel: 0, note: 62, velocity: 0 }]);
    }

    #[test]
    fn sustain_and_channel_modes() {
        let mut held = HeldNotes::default();
        held.observe(&Message::ControlChange { channel: 3, control: 64, value: 127 });
        held.observe(&Message::NoteOn { channel: 3, note: 127, velocity: 1 });
        held.observe(&Message::NoteOn { channel: 15, note: 0, velocity: 1 });
        held.observe(&Message::NoteOn { channel: 4, note: 1, velocity: 1 });
        held.observe(&Message::ControlChange { channel: 4, control: 123, value: 0 });
        assert_eq!(
            releases(&mut held),
            vec![
                Message::NoteOff { channel: 3, note: 127, velocity: 0 },
                Message::ControlChange { channel: 3, control: 64, value: 0 },
                Message::NoteOff { channel: 15, note: 0, velocity: 0 },
            ]
        );
        assert!(held.is_silent());
        held.observe(&Message::ControlChange { channel: 1, control: 64, value: 64 });
        held.observe(&Message::ControlChange { channel: 1, control: 64, value: 63 });
        held.observe(&Message::NoteOn { channel: 1, note: 5, velocity: 9 });
        held.observe(&Message::Reset);
        assert!(held.is_silent());
    }
}
