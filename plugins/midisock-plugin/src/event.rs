//! The fixed-size `Copy` events that cross the lock-free rings between the audio thread and the
//! network thread, and their conversions to nice-plug's [`NoteEvent`] and midisock's [`Message`].
//!
//! Nothing here allocates except [`RawMidi::to_message`] for a sysex (network thread only).

use midisock::{HeldNotes, Message};
use nice_plug::midi::sysex::SysExMessage;
use nice_plug::midi::{Channel, Key, MidiResult, NoteEvent, VoiceID};

/// The longest sysex the plugin carries, framing `F0`/`F7` included. Longer ones are dropped (and
/// counted): they cannot travel inline in a fixed-size ring slot.
pub const MAX_SYSEX_LEN: usize = 256;

/// One MIDI message as raw bytes with a full status byte: up to 3 bytes for channel and system
/// messages, up to [`MAX_SYSEX_LEN`] for a sysex. `Copy`, no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawMidi {
    len: u16,
    bytes: [u8; MAX_SYSEX_LEN],
}

impl std::fmt::Debug for RawMidi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawMidi({:02X?})", self.as_bytes())
    }
}

impl RawMidi {
    /// The message's bytes; `None` if it is empty or longer than [`MAX_SYSEX_LEN`].
    pub fn new(bytes: &[u8]) -> Option<RawMidi> {
        if bytes.is_empty() || bytes.len() > MAX_SYSEX_LEN {
            return None;
        }
        let mut raw = RawMidi { len: bytes.len() as u16, bytes: [0; MAX_SYSEX_LEN] };
        raw.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(raw)
    }

    /// The bytes, status byte first.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The status byte.
    pub fn status(&self) -> u8 {
        self.bytes[0]
    }

    /// The channel (0–15) of a channel message; `None` for system messages.
    pub fn channel(&self) -> Option<u8> {
        (self.status() < 0xF0).then_some(self.status() & 0x0F)
    }

    /// Encodes a midisock message; `None` for a sysex that does not fit.
    pub fn from_message(message: &Message) -> Option<RawMidi> {
        let mut raw = RawMidi { len: 0, bytes: [0; MAX_SYSEX_LEN] };
        let len = message.encode(&mut raw.bytes).ok()?;
        raw.len = len as u16;
        Some(raw)
    }

    /// Decodes into a midisock message (network thread: a sysex allocates its payload).
    pub fn to_message(&self) -> Option<Message> {
        Message::from_bytes(self.as_bytes()).ok()
    }

    /// A channel message that does not carry a payload on the heap, for note tracking on the
    /// audio thread (never allocates: sysex and system messages give `None`).
    fn to_short_message(self) -> Option<Message> {
        let [status, a, b] = [self.bytes[0], self.bytes[1] & 0x7F, self.bytes[2] & 0x7F];
        let channel = status & 0x0F;
        match status & 0xF0 {
            0x80 => Some(Message::NoteOff { channel, note: a, velocity: b }),
            0x90 => Some(Message::NoteOn { channel, note: a, velocity: b }),
            0xB0 => Some(Message::ControlChange { channel, control: a, value: b }),
            _ => None,
        }
    }

    /// The nice-plug event for these bytes at `timing` (sample offset in the block).
    pub fn to_note_event(&self, timing: u32) -> Option<NoteEvent<SysEx>> {
        NoteEvent::from_midi(timing, self.as_bytes()).ok()
    }

    /// The bytes of a nice-plug event; `None` for events without a MIDI 1.0 equivalent (note
    /// expressions, chokes, ...).
    pub fn from_note_event(event: &NoteEvent<SysEx>) -> Option<RawMidi> {
        match event.as_midi()? {
            MidiResult::Basic(bytes) => {
                // nice-plug pads 2-byte messages (program change, channel pressure) to 3 bytes.
                let len = match bytes[0] & 0xF0 {
                    0xC0 | 0xD0 => 2,
                    _ => 3,
                };
                RawMidi::new(&bytes[..len])
            }
            MidiResult::SysEx(buffer, len) => RawMidi::new(&buffer[..len.min(MAX_SYSEX_LEN)]),
        }
    }
}

/// Updates `held` with a raw message (notes, sustain pedal, all-notes-off). Never allocates.
pub fn observe(held: &mut HeldNotes, raw: &RawMidi) {
    if let Some(message) = raw.to_short_message() {
        held.observe(&message);
    }
}

/// Calls `emit` with a nice-plug note-off (or sustain-off) for everything `held` holds, then
/// clears it. Never allocates.
pub fn release_into_track(held: &mut HeldNotes, timing: u32, mut emit: impl FnMut(NoteEvent<SysEx>)) {
    held.release_all(|message| match message {
        Message::NoteOff { channel, note, .. } => emit(NoteEvent::NoteOff {
            timing,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(channel),
            key: Key::Number(note),
            velocity: 0.0,
        }),
        Message::ControlChange { channel, control, value } => {
            emit(NoteEvent::MidiCC { timing, channel, cc: control, value: f32::from(value) / 127.0 })
        }
        _ => {}
    });
}

/// The plugin's sysex type for nice-plug: the raw bytes of any message nice-plug does not map to
/// a note event itself — sysex (`F0 … F7`) and the system common and real-time messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SysEx(pub RawMidi);

impl SysExMessage for SysEx {
    type Buffer = [u8; MAX_SYSEX_LEN];

    fn from_buffer(buffer: &[u8]) -> Option<Self> {
        // Only status bytes nice-plug hands us as "sysex": system messages. A stray data byte or
        // a truncated channel message is not a message.
        match buffer.first() {
            Some(&status) if status >= 0xF0 => RawMidi::new(buffer).map(SysEx),
            _ => None,
        }
    }

    fn as_buffer(&self) -> (Self::Buffer, usize) {
        (self.0.bytes, usize::from(self.0.len))
    }
}

/// Audio thread → network thread.
#[derive(Clone, Copy, Debug)]
pub enum ToNetwork {
    /// A block began: `start` is its first sample on the plugin's running sample counter. Sent for
    /// every block, with or without events, so the network thread can map samples to wall time.
    Block { start: u64, len: u32, sample_rate: f32 },
    /// A message from the track, at absolute sample `sample`.
    Midi { sample: u64, raw: RawMidi },
    /// Send note-offs to the network for every note this plugin has sent and not released
    /// (bypass, deactivation, direction or channel changes).
    ReleaseSent,
}

/// Network thread → audio thread.
#[derive(Clone, Copy, Debug)]
pub enum ToTrack {
    /// A message from the network, to be played at absolute sample `sample` (earlier samples mean
    /// "as soon as possible").
    Midi { sample: u64, raw: RawMidi },
    /// The connection (or a peer) went away: release every note the network put into the track.
    ReleaseReceived { sample: u64 },
}

impl ToTrack {
    /// The sample the event is due at.
    pub fn sample(&self) -> u64 {
        match *self {
            ToTrack::Midi { sample, .. } | ToTrack::ReleaseReceived { sample } => sample,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_message_survives_note_event_round_trip() {
        let messages = [
            vec![0x90, 60, 100],
            vec![0x81, 61, 64],
            vec![0xA2, 62, 10],
            vec![0xB3, 7, 127],
            vec![0xC4, 5],
            vec![0xD5, 99],
            vec![0xE6, 0x00, 0x40],
            vec![0xE7, 0x7F, 0x7F],
            vec![0xE8, 0x00, 0x00],
            vec![0xF0, 1, 2, 3, 0xF7],
            vec![0xF8],
            vec![0xF2, 0x10, 0x20],
        ];
        for bytes in messages {
            let raw = RawMidi::new(&bytes).unwrap();
            let event = raw.to_note_event(7).unwrap_or_else(|| panic!("{bytes:02X?} is not an event"));
            assert_eq!(event.timing(), 7);
            assert_eq!(RawMidi::from_note_event(&event).unwrap().as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn oversized_sysex_does_not_fit() {
        let mut long = vec![0xF0];
        long.extend(std::iter::repeat_n(1, MAX_SYSEX_LEN));
        long.push(0xF7);
        assert!(RawMidi::new(&long).is_none());
        assert!(RawMidi::from_message(&Message::sysex(vec![1; MAX_SYSEX_LEN]).unwrap()).is_none());
        assert!(RawMidi::from_message(&Message::sysex(vec![1; MAX_SYSEX_LEN - 2]).unwrap()).is_some());
    }

    #[test]
    fn held_notes_are_released_into_the_track() {
        let mut held = HeldNotes::default();
        observe(&mut held, &RawMidi::new(&[0x93, 64, 1]).unwrap());
        observe(&mut held, &RawMidi::new(&[0x93, 65, 1]).unwrap());
        observe(&mut held, &RawMidi::new(&[0x83, 65, 0]).unwrap());
        let mut out = Vec::new();
        release_into_track(&mut held, 3, |e| out.push(RawMidi::from_note_event(&e).unwrap()));
        assert_eq!(out, vec![RawMidi::new(&[0x83, 64, 0]).unwrap()]);
        assert!(held.is_silent());
    }
}
