//! The small `Copy` events that cross the lock-free rings between the audio thread and the
//! network thread, and their conversions to nice-plug's [`NoteEvent`] and midisock's [`Message`].
//!
//! A message travels as a [`Midi`] of at most 6 bytes: a channel or system message as the core's
//! [`ShortMessage`] (its bytes, validated), or only the length of a sysex, whose bytes travel in
//! the ring's byte lane ([`crate::ring`]). Only a sysex is ever copied into nice-plug's 256-byte
//! [`SysEx`] buffer, on the audio thread's way out to the track.
//!
//! What a status byte means is the core's business ([`ShortMessage`], [`Message`]); this module
//! only maps midisock's messages to nice-plug's events and back, and 0–1 values to 7 bits.
//!
//! Nothing here allocates except [`Midi::to_message`] for a sysex (network thread only).

use crate::ring::Payload;
use midisock::{HeldNotes, Message, ShortMessage};
use nice_plug::midi::sysex::SysExMessage;
use nice_plug::midi::{Channel, Key, MidiResult, NoteEvent, VoiceID};

/// The longest sysex the plugin carries, its framing `F0`/`F7` included (unlike the core's sysex
/// limits, which count the payload only): nice-plug hands a sysex to the host from a buffer of
/// this fixed size ([`SysEx`]). Longer ones are dropped (and counted).
pub const SYSEX_BUFFER_LEN: usize = 256;

/// One MIDI message on a ring: a channel or system message inline, or a sysex (`F0 … F7`, at
/// most [`SYSEX_BUFFER_LEN`] bytes) by length, its bytes in the ring's byte lane. `Copy`, at
/// most 6 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Midi(Repr);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Repr {
    Short(ShortMessage),
    /// A sysex of `len` bytes, framing included, in the byte lane.
    SysEx {
        len: u16,
    },
}

impl std::fmt::Debug for Midi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Repr::Short(short) => write!(f, "Midi({:02X?})", short.as_bytes()),
            Repr::SysEx { len } => write!(f, "Midi(sysex of {len} bytes)"),
        }
    }
}

impl Midi {
    /// A message from its bytes: inline for a channel or system message (exactly one whole
    /// message, checked by [`ShortMessage::from_bytes`]), by length for a sysex (whose bytes the
    /// caller sends in the byte lane, checked when they become a [`Message`]). `None` for
    /// anything else: empty, no status byte first, a message cut short (`[0x90, 60]`), extra
    /// bytes, a sysex longer than [`SYSEX_BUFFER_LEN`].
    pub fn new(bytes: &[u8]) -> Option<Midi> {
        match *bytes {
            [0xF0, ..] => (bytes.len() <= SYSEX_BUFFER_LEN).then_some(Midi(Repr::SysEx { len: bytes.len() as u16 })),
            _ => ShortMessage::from_bytes(bytes).ok().map(Midi::from),
        }
    }

    /// A sysex, whose bytes travel in the byte lane.
    pub fn is_sysex(&self) -> bool {
        matches!(self.0, Repr::SysEx { .. })
    }

    /// Bytes in the message (for a sysex: in the byte lane).
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Short(short) => short.len(),
            Repr::SysEx { len } => usize::from(len),
        }
    }

    /// Never true: a message has a status byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel or system message; `None` for a sysex.
    pub fn short(&self) -> Option<ShortMessage> {
        match self.0 {
            Repr::Short(short) => Some(short),
            Repr::SysEx { .. } => None,
        }
    }

    /// The bytes of a channel or system message; empty for a sysex (its bytes are in the lane).
    pub fn short_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Short(short) => short.as_bytes(),
            Repr::SysEx { .. } => &[],
        }
    }

    /// The status byte.
    pub fn status(&self) -> u8 {
        self.short().map_or(0xF0, |short| short.status())
    }

    /// The channel (0–15) of a channel message; `None` for system messages.
    pub fn channel(&self) -> Option<u8> {
        self.short().and_then(|short| short.channel())
    }

    /// Encodes a midisock message into `buffer`: the ring message and the bytes for the byte lane
    /// (empty unless it is a sysex). `None` for a sysex that does not fit.
    pub fn encode<'b>(message: &Message, buffer: &'b mut [u8; SYSEX_BUFFER_LEN]) -> Option<(Midi, &'b [u8])> {
        let len = message.encode(buffer).ok()?;
        let bytes = &buffer[..len];
        let midi = Midi::new(bytes)?;
        Some((midi, if midi.is_sysex() { bytes } else { &[] }))
    }

    /// Decodes into a midisock message; `sysex` is the payload from the byte lane (network thread:
    /// a sysex allocates its payload).
    pub fn to_message(&self, sysex: &[u8]) -> Option<Message> {
        match self.0 {
            Repr::Short(short) => Some(short.to_message()),
            Repr::SysEx { len } if sysex.len() == usize::from(len) => Message::from_bytes(sysex).ok(),
            Repr::SysEx { .. } => None,
        }
    }

    /// The nice-plug event for a channel or system message at `timing` (sample offset in the
    /// block); `None` for a sysex (see [`SysEx::from_lane`]) or a message nice-plug rejects.
    pub fn to_note_event(&self, timing: u32) -> Option<NoteEvent<SysEx>> {
        let mut event = None;
        self.emit_note_event(timing, |e| event = Some(e));
        event
    }

    /// Calls `emit` with the nice-plug event for a channel or system message at `timing`, built
    /// in place (a `NoteEvent<SysEx>` is ~270 bytes: returning it through `Result`/`Option`, as
    /// `NoteEvent::from_midi` does, costs a copy or two per event). The same events as
    /// `NoteEvent::from_midi`; nothing for a sysex or a message nice-plug rejects.
    #[inline(always)]
    pub fn emit_note_event(&self, timing: u32, emit: impl FnOnce(NoteEvent<SysEx>)) {
        let Repr::Short(short) = self.0 else { return };
        let voice_id = VoiceID::Wildcard;
        // The core decodes the bytes; the arms only map each message to nice-plug's event.
        match short.to_message() {
            Message::NoteOn { channel, note, velocity: 0 } => emit(NoteEvent::NoteOff {
                timing,
                voice_id,
                channel: Channel::Number(channel),
                key: Key::Number(note),
                velocity: 0.0,
            }),
            Message::NoteOn { channel, note, velocity } => emit(NoteEvent::NoteOn {
                timing,
                voice_id,
                channel: Channel::Number(channel),
                key: Key::Number(note),
                velocity: seven_bit_to_unit(velocity),
            }),
            Message::NoteOff { channel, note, velocity } => emit(NoteEvent::NoteOff {
                timing,
                voice_id,
                channel: Channel::Number(channel),
                key: Key::Number(note),
                velocity: seven_bit_to_unit(velocity),
            }),
            Message::PolyTouch { channel, note, value } => emit(NoteEvent::PolyPressure {
                timing,
                voice_id,
                channel: Channel::Number(channel),
                key: Key::Number(note),
                pressure: seven_bit_to_unit(value),
            }),
            Message::ControlChange { channel, control, value } => {
                emit(NoteEvent::MidiCC { timing, channel, cc: control, value: seven_bit_to_unit(value) })
            }
            Message::PitchWheel { channel, pitch } => {
                let value = (i32::from(pitch) + 8192) as f32 / 16383.0;
                emit(NoteEvent::MidiPitchBend { timing, channel, value })
            }
            Message::Aftertouch { channel, value } => {
                emit(NoteEvent::MidiChannelPressure { timing, channel, pressure: seven_bit_to_unit(value) })
            }
            Message::ProgramChange { channel, program } => {
                emit(NoteEvent::MidiProgramChange { timing, channel, program })
            }
            // System messages (rare): nice-plug passes them as raw bytes in a `SysEx`.
            _ => {
                if let Ok(event) = NoteEvent::from_midi(timing, short.as_bytes()) {
                    emit(event)
                }
            }
        }
    }

    /// The ring message for a nice-plug event, and the bytes for the byte lane (a sysex's, borrowed
    /// from the event; empty otherwise). `None` for events without a MIDI 1.0 equivalent (note
    /// expressions, chokes, ...) or with values out of MIDI's ranges.
    #[inline]
    pub fn from_note_event(event: &NoteEvent<SysEx>) -> Option<(Midi, &[u8])> {
        // The common events directly: `as_midi` returns a ~270-byte `MidiResult` and rounds with a
        // libm call. Same bytes as `as_midi` (tested).
        let message = match *event {
            NoteEvent::NoteOn { channel, key, velocity, .. } => Message::NoteOn {
                channel: channel.number().unwrap_or(0),
                note: key.number().unwrap_or(0),
                velocity: unit_to_7bit(velocity, 1),
            },
            NoteEvent::NoteOff { channel, key, velocity, .. } => Message::NoteOff {
                channel: channel.number().unwrap_or(0),
                note: key.number().unwrap_or(0),
                velocity: unit_to_7bit(velocity, 0),
            },
            NoteEvent::MidiCC { channel, cc, value, .. } => {
                Message::ControlChange { channel, control: cc, value: unit_to_7bit(value, 0) }
            }
            NoteEvent::MidiSysEx { ref message, .. } => {
                let bytes = message.as_bytes();
                let midi = Midi::new(bytes)?;
                return Some((midi, if midi.is_sysex() { bytes } else { &[] }));
            }
            _ => {
                return match event.as_midi()? {
                    MidiResult::Basic(bytes) => {
                        // nice-plug pads 2-byte messages (program change, channel pressure) to 3.
                        let len = ShortMessage::len_for_status(bytes[0])?;
                        Some((Midi::new(bytes.get(..len)?)?, &[]))
                    }
                    MidiResult::SysEx(..) => None,
                };
            }
        };
        let short = ShortMessage::from_message(&message).ok()??;
        Some((short.into(), &[]))
    }
}

impl From<ShortMessage> for Midi {
    fn from(short: ShortMessage) -> Midi {
        Midi(Repr::Short(short))
    }
}

/// A 7-bit MIDI value as nice-plug's 0–1 float.
#[inline]
pub(crate) fn seven_bit_to_unit(value: u8) -> f32 {
    f32::from(value) / 127.0
}

/// A nice-plug 0–1 value as a 7-bit MIDI value, at least `min`: `(unit * 127).round().clamp(min,
/// 127) as u8`, nice-plug's own conversion, without the libm call `f32::round` is on baseline
/// x86-64. NaN gives 0.
#[inline]
pub(crate) fn unit_to_7bit(unit: f32, min: u8) -> u8 {
    let scaled = unit * 127.0;
    if scaled.is_nan() {
        return 0;
    }
    // Clamping first keeps the truncation exact; it does not change the result.
    let scaled = scaled.clamp(-1.0, 128.0);
    let whole = scaled as i32 as f32;
    let rounded = if (scaled - whole).abs() >= 0.5 { whole + scaled.signum() } else { whole };
    rounded.clamp(f32::from(min), 127.0) as u8
}

/// Updates `held` with a message (notes, sustain pedal, all-notes-off). Never allocates.
pub fn observe(held: &mut HeldNotes, midi: &Midi) {
    if let Some(short) = midi.short() {
        held.observe(&short.to_message());
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
            emit(NoteEvent::MidiCC { timing, channel, cc: control, value: seven_bit_to_unit(value) })
        }
        _ => {}
    });
}

/// The plugin's sysex type for nice-plug: the raw bytes of any message nice-plug does not map to
/// a note event itself — sysex (`F0 … F7`) and the system common and real-time messages. It holds
/// [`SYSEX_BUFFER_LEN`] bytes inline (nice-plug needs a fixed-size buffer), which makes every
/// `NoteEvent<SysEx>` that large: the engine builds and moves them only at the host boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SysEx {
    len: u16,
    bytes: [u8; SYSEX_BUFFER_LEN],
}

impl std::fmt::Debug for SysEx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SysEx({:02X?})", self.as_bytes())
    }
}

impl SysEx {
    /// A system message's bytes; `None` if empty or longer than [`SYSEX_BUFFER_LEN`].
    pub fn new(bytes: &[u8]) -> Option<SysEx> {
        SysEx::from_lane(bytes.len(), |out| {
            out.copy_from_slice(bytes);
            true
        })
    }

    /// A sysex of `len` bytes that `fill` writes (from a ring's byte lane, say); `None` if `len`
    /// is 0 or too long or `fill` fails.
    pub fn from_lane(len: usize, fill: impl FnOnce(&mut [u8]) -> bool) -> Option<SysEx> {
        if len == 0 || len > SYSEX_BUFFER_LEN {
            return None;
        }
        let mut sysex = SysEx { len: len as u16, bytes: [0; SYSEX_BUFFER_LEN] };
        fill(&mut sysex.bytes[..len]).then_some(sysex)
    }

    /// The bytes, status byte first.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl SysExMessage for SysEx {
    type Buffer = [u8; SYSEX_BUFFER_LEN];

    fn from_buffer(buffer: &[u8]) -> Option<Self> {
        // Only status bytes nice-plug hands us as "sysex": system messages. A stray data byte or
        // a truncated channel message is not a message.
        match buffer.first() {
            Some(&status) if status >= 0xF0 => SysEx::new(buffer),
            _ => None,
        }
    }

    fn as_buffer(&self) -> (Self::Buffer, usize) {
        (self.bytes, usize::from(self.len))
    }
}

/// Audio thread → network thread.
#[derive(Clone, Copy, Debug)]
pub enum ToNetwork {
    /// A block began: `start` is its first sample on the plugin's running sample counter. Sent for
    /// every block, with or without events, so the network thread can map samples to wall time.
    Block { start: u64, len: u32, sample_rate: f32 },
    /// A message from the track, at absolute sample `sample` (a sysex's bytes in the byte lane).
    Midi { sample: u64, midi: Midi },
    /// Send note-offs to the network for every note this plugin has sent and not released
    /// (bypass, deactivation, direction or channel changes).
    ReleaseSent,
}

impl Payload for ToNetwork {
    fn sysex_len(&self) -> usize {
        match self {
            ToNetwork::Midi { midi, .. } if midi.is_sysex() => midi.len(),
            _ => 0,
        }
    }
}

/// Network thread → audio thread.
#[derive(Clone, Copy, Debug)]
pub enum ToTrack {
    /// A message from the network, to be played at absolute sample `sample` (earlier samples mean
    /// "as soon as possible"; a sysex's bytes in the byte lane).
    Midi { sample: u64, midi: Midi },
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

impl Payload for ToTrack {
    fn sysex_len(&self) -> usize {
        match self {
            ToTrack::Midi { midi, .. } if midi.is_sysex() => midi.len(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_events_are_small() {
        assert!(std::mem::size_of::<Midi>() <= 6);
        assert!(std::mem::size_of::<ToTrack>() <= 16);
        assert!(std::mem::size_of::<ToNetwork>() <= 24);
    }

    #[test]
    fn cut_off_and_overlong_messages_are_not_ring_events() {
        for bytes in [&[0x90, 60][..], &[0x90], &[0xE0, 0], &[0xF2, 1], &[0x90, 60, 100, 1], &[60], &[0xF4], &[]] {
            assert_eq!(Midi::new(bytes), None, "{bytes:02X?}");
        }
        let cc = Midi::new(&[0xB2, 64, 127]).unwrap();
        assert_eq!((cc.len(), cc.channel(), cc.short_bytes()), (3, Some(2), &[0xB2, 64, 127][..]));
        // A nice-plug event with values outside MIDI's ranges gives nothing rather than bad bytes.
        let event = NoteEvent::<SysEx>::MidiCC { timing: 0, channel: 16, cc: 7, value: 1.0 };
        assert_eq!(Midi::from_note_event(&event), None);
    }

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
            let event = match Midi::new(&bytes).unwrap() {
                midi if midi.is_sysex() => NoteEvent::MidiSysEx {
                    timing: 7,
                    message: SysEx::from_lane(midi.len(), |out| {
                        out.copy_from_slice(&bytes);
                        true
                    })
                    .unwrap(),
                },
                midi => midi.to_note_event(7).unwrap_or_else(|| panic!("{bytes:02X?} is not an event")),
            };
            assert_eq!(event.timing(), 7);
            let (midi, sysex) = Midi::from_note_event(&event).unwrap();
            assert_eq!(midi.len(), bytes.len());
            let back = if midi.is_sysex() { sysex } else { midi.short_bytes() };
            assert_eq!(back, &bytes[..]);
            assert_eq!(midi.to_message(sysex).unwrap(), Message::from_bytes(&bytes).unwrap());
        }
    }

    #[test]
    fn emitted_note_events_are_the_ones_nice_plug_makes() {
        for status in 0x80..=0xFFu8 {
            for len in 1..=3 {
                for (a, b) in [(0, 0), (60, 0), (60, 1), (0x7F, 0x7F), (12, 64), (0x40, 0x00)] {
                    let bytes = &[status, a, b][..len];
                    let Some(midi) = Midi::new(bytes) else { continue };
                    let ours = midi.to_note_event(5);
                    let theirs = if midi.is_sysex() { None } else { NoteEvent::<SysEx>::from_midi(5, bytes).ok() };
                    assert_eq!(ours, theirs, "{bytes:02X?}");
                }
            }
        }
    }

    #[test]
    fn ring_bytes_of_track_events_are_nice_plugs() {
        let halves = (0..=255u8).map(|i| (f32::from(i) - 0.5) / 127.0);
        let mut units: Vec<f32> = (0..=1000).map(|i| i as f32 / 1000.0).chain(halves).collect();
        units.extend([-1.0, -0.001, 1.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.49999997 / 127.0]);
        units.extend((0..=127).flat_map(|i| {
            let x = f32::from(i as u8) / 127.0;
            [x, f32::from_bits(x.to_bits() + 1), f32::from_bits(x.to_bits().saturating_sub(1))]
        }));
        for (i, &unit) in units.iter().enumerate() {
            let (channel, key) = (Channel::Number(i as u8 % 16), Key::Number(i as u8 % 128));
            let events: [NoteEvent<SysEx>; 4] = [
                NoteEvent::NoteOn { timing: 0, voice_id: VoiceID::Wildcard, channel, key, velocity: unit },
                NoteEvent::NoteOff { timing: 0, voice_id: VoiceID::Wildcard, channel, key, velocity: unit },
                NoteEvent::MidiCC { timing: 0, channel: i as u8 % 16, cc: 7, value: unit },
                NoteEvent::NoteOn {
                    timing: 0,
                    voice_id: VoiceID::Wildcard,
                    channel: Channel::Wildcard,
                    key: Key::Wildcard,
                    velocity: unit,
                },
            ];
            for event in events {
                let Some(MidiResult::Basic(theirs)) = event.as_midi() else { panic!() };
                let (ours, _) = Midi::from_note_event(&event).unwrap();
                assert_eq!(ours.short_bytes(), theirs, "{event:?}");
            }
        }
    }

    #[test]
    fn sysex_up_to_the_limit_fits_and_longer_does_not() {
        let mut buffer = [0; SYSEX_BUFFER_LEN];
        let longest = Message::sysex(vec![1; SYSEX_BUFFER_LEN - 2]).unwrap();
        let (midi, bytes) = Midi::encode(&longest, &mut buffer).unwrap();
        assert!(midi.is_sysex());
        assert_eq!((midi.len(), bytes.len()), (SYSEX_BUFFER_LEN, SYSEX_BUFFER_LEN));
        assert_eq!(midi.to_message(bytes).unwrap(), longest);
        assert!(Midi::encode(&Message::sysex(vec![1; SYSEX_BUFFER_LEN - 1]).unwrap(), &mut buffer).is_none());
        let mut long = vec![0xF0];
        long.extend(std::iter::repeat_n(1, SYSEX_BUFFER_LEN));
        long.push(0xF7);
        assert!(Midi::new(&long).is_none());
        assert!(SysEx::new(&long).is_none());
        assert!(SysEx::new(&long[..SYSEX_BUFFER_LEN]).is_some());
    }

    #[test]
    fn held_notes_are_released_into_the_track() {
        let mut held = HeldNotes::default();
        observe(&mut held, &Midi::new(&[0x93, 64, 1]).unwrap());
        observe(&mut held, &Midi::new(&[0x93, 65, 1]).unwrap());
        observe(&mut held, &Midi::new(&[0x83, 65, 0]).unwrap());
        let mut out = Vec::new();
        release_into_track(&mut held, 3, |e| out.push(Midi::from_note_event(&e).unwrap().0));
        assert_eq!(out, vec![Midi::new(&[0x83, 64, 0]).unwrap()]);
        assert!(held.is_silent());
    }
}
