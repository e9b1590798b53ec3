//! The [`Message`] type: every message mido knows, with mido's names and fields.
//!
//! Values are checked when a message is built (`Message::note_on(..)` and friends, the text parser
//! and the byte parser all go through the same range checks), so a `Message` held by user code is
//! always encodable. The variants are public for pattern matching; building one by hand with an
//! out-of-range field is caught by [`Message::validate`], which every send path calls.

use std::fmt;

/// A MIDI 1.0 message, named as mido names it (`note_on`, `pitchwheel`, `sysex`, ...).
///
/// Channel numbers are 0–15 (as in mido, not 1–16). Data values are 0–127, `pitch` is −8192…8191,
/// `pos` (song position) 0…16383, `frame_type` 0…7 and `frame_value` 0…15. Sysex `data` is the
/// payload without the framing `F0`/`F7` bytes; every byte 0–127.
///
/// Unlike mido's messages a `Message` has no `time` attribute: over a socket mido always reports
/// `time=0`, and a receive timestamp travels next to the message instead (see [`Received`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    NoteOff {
        channel: u8,
        note: u8,
        velocity: u8,
    },
    NoteOn {
        channel: u8,
        note: u8,
        velocity: u8,
    },
    /// Polyphonic key pressure.
    PolyTouch {
        channel: u8,
        note: u8,
        value: u8,
    },
    ControlChange {
        channel: u8,
        control: u8,
        value: u8,
    },
    ProgramChange {
        channel: u8,
        program: u8,
    },
    /// Channel pressure.
    Aftertouch {
        channel: u8,
        value: u8,
    },
    /// Pitch bend, centred on 0: −8192…8191.
    PitchWheel {
        channel: u8,
        pitch: i16,
    },
    SysEx {
        data: Vec<u8>,
    },
    /// MIDI time code quarter frame.
    QuarterFrame {
        frame_type: u8,
        frame_value: u8,
    },
    /// Song position pointer, in MIDI beats (sixteenth notes): 0…16383.
    SongPos {
        pos: u16,
    },
    SongSelect {
        song: u8,
    },
    TuneRequest,
    Clock,
    Start,
    Continue,
    Stop,
    ActiveSensing,
    Reset,
}

/// mido's `reset()` set: all notes off (CC 123) and reset all controllers (CC 121), every channel
/// (what `reset()` on a port or server sends).
pub fn reset_messages() -> Vec<Message> {
    (0..16)
        .flat_map(|channel| [123, 121].map(|control| Message::ControlChange { channel, control, value: 0 }))
        .collect()
}

/// mido's `panic()` set: all sound off (CC 120) on every channel (what `panic()` sends).
pub fn panic_messages() -> Vec<Message> {
    (0..16).map(|channel| Message::ControlChange { channel, control: 120, value: 0 }).collect()
}

/// A message as it came off a socket, with the monotonic time it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub message: Message,
    /// `CLOCK_MONOTONIC` in nanoseconds when the bytes that completed the message were read
    /// (see [`crate::monotonic_ns`]); with a jitter buffer, when the message was played out.
    pub timestamp_ns: u64,
    /// The sender's own clock when it sent the message (nanoseconds, microsecond resolution),
    /// for a message its sender stamped because this side asked for stamps (a jitter buffer,
    /// see [`crate::timing`]); `None` for everything else, and always from mido peers.
    pub sender_ns: Option<u64>,
}

impl Received {
    /// A message read at `timestamp_ns` that carried no sender stamp.
    pub fn unstamped(message: Message, timestamp_ns: u64) -> Received {
        Received { message, timestamp_ns, sender_ns: None }
    }
}

/// The kind of a message, without its values: mido's `type` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    NoteOff,
    NoteOn,
    PolyTouch,
    ControlChange,
    ProgramChange,
    Aftertouch,
    PitchWheel,
    SysEx,
    QuarterFrame,
    SongPos,
    SongSelect,
    TuneRequest,
    Clock,
    Start,
    Continue,
    Stop,
    ActiveSensing,
    Reset,
}

impl MessageType {
    /// Every type, in mido's spec order.
    pub const ALL: [MessageType; 18] = [
        MessageType::NoteOff,
        MessageType::NoteOn,
        MessageType::PolyTouch,
        MessageType::ControlChange,
        MessageType::ProgramChange,
        MessageType::Aftertouch,
        MessageType::PitchWheel,
        MessageType::SysEx,
        MessageType::QuarterFrame,
        MessageType::SongPos,
        MessageType::SongSelect,
        MessageType::TuneRequest,
        MessageType::Clock,
        MessageType::Start,
        MessageType::Continue,
        MessageType::Stop,
        MessageType::ActiveSensing,
        MessageType::Reset,
    ];

    /// mido's name for the type (`"note_on"`, `"pitchwheel"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::NoteOff => "note_off",
            MessageType::NoteOn => "note_on",
            MessageType::PolyTouch => "polytouch",
            MessageType::ControlChange => "control_change",
            MessageType::ProgramChange => "program_change",
            MessageType::Aftertouch => "aftertouch",
            MessageType::PitchWheel => "pitchwheel",
            MessageType::SysEx => "sysex",
            MessageType::QuarterFrame => "quarter_frame",
            MessageType::SongPos => "songpos",
            MessageType::SongSelect => "song_select",
            MessageType::TuneRequest => "tune_request",
            MessageType::Clock => "clock",
            MessageType::Start => "start",
            MessageType::Continue => "continue",
            MessageType::Stop => "stop",
            MessageType::ActiveSensing => "active_sensing",
            MessageType::Reset => "reset",
        }
    }

    /// Looks a type up by mido's name.
    pub fn from_name(name: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// mido's field names for the type, in the order `str(message)` prints them.
    pub const fn field_names(self) -> &'static [&'static str] {
        match self {
            MessageType::NoteOff | MessageType::NoteOn => &["channel", "note", "velocity"],
            MessageType::PolyTouch => &["channel", "note", "value"],
            MessageType::ControlChange => &["channel", "control", "value"],
            MessageType::ProgramChange => &["channel", "program"],
            MessageType::Aftertouch => &["channel", "value"],
            MessageType::PitchWheel => &["channel", "pitch"],
            MessageType::SysEx => &["data"],
            MessageType::QuarterFrame => &["frame_type", "frame_value"],
            MessageType::SongPos => &["pos"],
            MessageType::SongSelect => &["song"],
            _ => &[],
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field value outside its range, or a sysex byte with the top bit set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidValue {
    /// mido's field name (`"channel"`, `"note"`, `"data"`, ...).
    pub field: &'static str,
    /// The offending value.
    pub value: i64,
    /// The lowest and highest legal value.
    pub range: (i64, i64),
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} must be in {}..={}, got {}", self.field, self.range.0, self.range.1, self.value)
    }
}

impl std::error::Error for InvalidValue {}

/// Checks `value` against the range of mido's `field`; the one place ranges are defined.
// NOTE: inlined so that, called with a literal field name, the name lookup folds away (validate
// runs on every message sent).
#[inline(always)]
pub(crate) fn check_field(field: &'static str, value: i64) -> Result<i64, InvalidValue> {
    let range = match field {
        "channel" => (0, 15),
        "pitch" => (-8192, 8191),
        "pos" => (0, 16383),
        "frame_type" => (0, 7),
        "frame_value" => (0, 15),
        _ => (0, 127),
    };
    if (range.0..=range.1).contains(&value) {
        Ok(value)
    } else {
        Err(InvalidValue { field, value, range })
    }
}

impl Message {
    /// `note_on`, with its fields checked.
    pub fn note_on(channel: u8, note: u8, velocity: u8) -> Result<Message, InvalidValue> {
        let m = Message::NoteOn { channel, note, velocity };
        m.validate().map(|()| m)
    }

    /// `note_off`, with its fields checked.
    pub fn note_off(channel: u8, note: u8, velocity: u8) -> Result<Message, InvalidValue> {
        let m = Message::NoteOff { channel, note, velocity };
        m.validate().map(|()| m)
    }

    /// `control_change`, with its fields checked.
    pub fn control_change(channel: u8, control: u8, value: u8) -> Result<Message, InvalidValue> {
        let m = Message::ControlChange { channel, control, value };
        m.validate().map(|()| m)
    }

    /// `program_change`, with its fields checked.
    pub fn program_change(channel: u8, program: u8) -> Result<Message, InvalidValue> {
        let m = Message::ProgramChange { channel, program };
        m.validate().map(|()| m)
    }

    /// `pitchwheel`, with its fields checked.
    pub fn pitchwheel(channel: u8, pitch: i16) -> Result<Message, InvalidValue> {
        let m = Message::PitchWheel { channel, pitch };
        m.validate().map(|()| m)
    }

    /// `sysex` with the given payload (no `F0`/`F7`), every byte checked to be 0–127.
    pub fn sysex(data: impl Into<Vec<u8>>) -> Result<Message, InvalidValue> {
        let m = Message::SysEx { data: data.into() };
        m.validate().map(|()| m)
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::NoteOff { .. } => MessageType::NoteOff,
            Message::NoteOn { .. } => MessageType::NoteOn,
            Message::PolyTouch { .. } => MessageType::PolyTouch,
            Message::ControlChange { .. } => MessageType::ControlChange,
            Message::ProgramChange { .. } => MessageType::ProgramChange,
            Message::Aftertouch { .. } => MessageType::Aftertouch,
            Message::PitchWheel { .. } => MessageType::PitchWheel,
            Message::SysEx { .. } => MessageType::SysEx,
            Message::QuarterFrame { .. } => MessageType::QuarterFrame,
            Message::SongPos { .. } => MessageType::SongPos,
            Message::SongSelect { .. } => MessageType::SongSelect,
            Message::TuneRequest => MessageType::TuneRequest,
            Message::Clock => MessageType::Clock,
            Message::Start => MessageType::Start,
            Message::Continue => MessageType::Continue,
            Message::Stop => MessageType::Stop,
            Message::ActiveSensing => MessageType::ActiveSensing,
            Message::Reset => MessageType::Reset,
        }
    }

    /// The channel of a channel message (`None` for system messages).
    pub fn channel(&self) -> Option<u8> {
        match *self {
            Message::NoteOff { channel, .. }
            | Message::NoteOn { channel, .. }
            | Message::PolyTouch { channel, .. }
            | Message::ControlChange { channel, .. }
            | Message::ProgramChange { channel, .. }
            | Message::Aftertouch { channel, .. }
            | Message::PitchWheel { channel, .. } => Some(channel),
            _ => None,
        }
    }

    /// True for the system real-time messages (clock, start, continue, stop, active_sensing,
    /// reset), which may interleave with any other message on the wire.
    pub fn is_realtime(&self) -> bool {
        matches!(
            self,
            Message::Clock
                | Message::Start
                | Message::Continue
                | Message::Stop
                | Message::ActiveSensing
                | Message::Reset
        )
    }

    /// Calls `visit(name, value)` for each field except `data`, in mido's order (that of
    /// [`MessageType::field_names`]). With [`Message::from_fields`], the way a front end that
    /// speaks in field names (a Python binding, a text format) moves messages without restating
    /// which type has which fields.
    #[inline(always)]
    pub fn for_each_scalar(&self, mut visit: impl FnMut(&'static str, i64)) {
        match *self {
            Message::NoteOff { channel, note, velocity } | Message::NoteOn { channel, note, velocity } => {
                visit("channel", channel.into());
                visit("note", note.into());
                visit("velocity", velocity.into());
            }
            Message::PolyTouch { channel, note, value } => {
                visit("channel", channel.into());
                visit("note", note.into());
                visit("value", value.into());
            }
            Message::ControlChange { channel, control, value } => {
                visit("channel", channel.into());
                visit("control", control.into());
                visit("value", value.into());
            }
            Message::ProgramChange { channel, program } => {
                visit("channel", channel.into());
                visit("program", program.into());
            }
            Message::Aftertouch { channel, value } => {
                visit("channel", channel.into());
                visit("value", value.into());
            }
            Message::PitchWheel { channel, pitch } => {
                visit("channel", channel.into());
                visit("pitch", pitch.into());
            }
            Message::QuarterFrame { frame_type, frame_value } => {
                visit("frame_type", frame_type.into());
                visit("frame_value", frame_value.into());
            }
            Message::SongPos { pos } => visit("pos", pos.into()),
            Message::SongSelect { song } => visit("song", song.into()),
            Message::SysEx { .. }
            | Message::TuneRequest
            | Message::Clock
            | Message::Start
            | Message::Continue
            | Message::Stop
            | Message::ActiveSensing
            | Message::Reset => {}
        }
    }

    /// Builds a message of type `kind` from its fields by name, the inverse of
    /// [`Message::for_each_scalar`]: `field(name)` is asked for each of `kind`'s fields except
    /// `data`, in mido's order, and each value is range-checked; a sysex's payload comes from
    /// `data()` (every byte checked to be 0–127), which other types never call. Errors from either
    /// closure pass through unchanged.
    pub fn from_fields<E: From<InvalidValue>>(
        kind: MessageType,
        mut field: impl FnMut(&'static str) -> Result<i64, E>,
        data: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Message, E> {
        let mut values: [i64; 3] = [0; 3];
        for (slot, name) in values.iter_mut().zip(kind.field_names().iter().filter(|n| **n != "data")) {
            *slot = check_field(name, field(name)?)?;
        }
        // Every value is range-checked above, so the narrowing casts below are lossless.
        let [a, b, c] = values;
        let (a8, b8, c8) = (a as u8, b as u8, c as u8);
        Ok(match kind {
            MessageType::NoteOff => Message::NoteOff { channel: a8, note: b8, velocity: c8 },
            MessageType::NoteOn => Message::NoteOn { channel: a8, note: b8, velocity: c8 },
            MessageType::PolyTouch => Message::PolyTouch { channel: a8, note: b8, value: c8 },
            MessageType::ControlChange => Message::ControlChange { channel: a8, control: b8, value: c8 },
            MessageType::ProgramChange => Message::ProgramChange { channel: a8, program: b8 },
            MessageType::Aftertouch => Message::Aftertouch { channel: a8, value: b8 },
            MessageType::PitchWheel => Message::PitchWheel { channel: a8, pitch: b as i16 },
            MessageType::SysEx => {
                let m = Message::SysEx { data: data()? };
                m.validate()?;
                m
            }
            MessageType::QuarterFrame => Message::QuarterFrame { frame_type: a8, frame_value: b8 },
            MessageType::SongPos => Message::SongPos { pos: a as u16 },
            MessageType::SongSelect => Message::SongSelect { song: a8 },
            MessageType::TuneRequest => Message::TuneRequest,
            MessageType::Clock => Message::Clock,
            MessageType::Start => Message::Start,
            MessageType::Continue => Message::Continue,
            MessageType::Stop => Message::Stop,
            MessageType::ActiveSensing => Message::ActiveSensing,
            MessageType::Reset => Message::Reset,
        })
    }

    /// Checks every field against mido's ranges.
    #[inline(always)]
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let mut result = Ok(());
        self.for_each_scalar(|field, value| {
            if result.is_ok() {
                result = check_field(field, value).map(|_| ());
            }
        });
        if let Message::SysEx { data } = self {
            if let Some(&bad) = data.iter().find(|&&b| b > 0x7F) {
                return Err(InvalidValue { field: "data", value: bad.into(), range: (0, 127) });
            }
        }
        result
    }
}
