//! `mido.Message` ⇄ the core's `Message`.
//!
//! Done here rather than in Python because it is the hot path: `mido.Message(...)` checks every
//! field in Python and `msg.bytes()` encodes in Python, each costing microseconds. Here a received
//! message becomes a `mido.Message` the way mido's own `copy()` makes one (a bare instance whose
//! attribute dict is filled in), and an outgoing one is read straight from its attributes. Range
//! checks stay in the core (`send` validates); this file only moves values.

use midisock::{Message, MessageType};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::intern;

/// mido's classes, imported once.
struct Mido {
    message: Py<PyAny>,
    /// `object.__new__`: makes a `mido.Message` without running its checks, as `Message.copy` does.
    new: Py<PyAny>,
    sysex_data: Py<PyAny>,
    /// Interned type names, in `MessageType::ALL` order.
    type_names: Vec<Py<PyString>>,
}

static MIDO: GILOnceCell<Mido> = GILOnceCell::new();

fn mido(py: Python<'_>) -> PyResult<&Mido> {
    MIDO.get_or_try_init(py, || {
        let messages = py.import("mido.messages.messages")?;
        Ok(Mido {
            message: messages.getattr("Message")?.unbind(),
            new: py.import("builtins")?.getattr("object")?.getattr("__new__")?.unbind(),
            sysex_data: messages.getattr("SysexData")?.unbind(),
            type_names: MessageType::ALL.iter().map(|t| PyString::intern(py, t.name()).unbind()).collect(),
        })
    })
}

/// The time a received message carries: mido's `0`, or the receive timestamp in seconds on the
/// `time.monotonic()` clock when the port was opened with `timestamps=True`.
#[derive(Clone, Copy)]
pub enum TimeField {
    Zero,
    Stamp(u64),
}

/// A new `mido.Message` for `message`.
pub fn to_mido<'py>(py: Python<'py>, message: &Message, time: TimeField) -> PyResult<Bound<'py, PyAny>> {
    let m = mido(py)?;
    let object = m.new.bind(py).call1((m.message.bind(py),))?;
    let attributes = object.getattr(intern!(py, "__dict__"))?.downcast_into::<PyDict>()?;
    let type_index = MessageType::ALL.iter().position(|t| *t == message.message_type()).unwrap_or(0);
    // Same key order as mido's own constructor: type, time, then the values.
    attributes.set_item(intern!(py, "type"), m.type_names[type_index].bind(py))?;
    match time {
        TimeField::Zero => attributes.set_item(intern!(py, "time"), 0)?,
        TimeField::Stamp(ns) => attributes.set_item(intern!(py, "time"), ns as f64 / 1e9)?,
    }
    let set = |name: &Bound<'py, PyString>, value: i64| attributes.set_item(name, value);
    match message {
        Message::NoteOff { channel, note, velocity } | Message::NoteOn { channel, note, velocity } => {
            set(intern!(py, "channel"), (*channel).into())?;
            set(intern!(py, "note"), (*note).into())?;
            set(intern!(py, "velocity"), (*velocity).into())?;
        }
        Message::PolyTouch { channel, note, value } => {
            set(intern!(py, "channel"), (*channel).into())?;
            set(intern!(py, "note"), (*note).into())?;
            set(intern!(py, "value"), (*value).into())?;
        }
        Message::ControlChange { channel, control, value } => {
            set(intern!(py, "channel"), (*channel).into())?;
            set(intern!(py, "control"), (*control).into())?;
            set(intern!(py, "value"), (*value).into())?;
        }
        Message::ProgramChange { channel, program } => {
            set(intern!(py, "channel"), (*channel).into())?;
            set(intern!(py, "program"), (*program).into())?;
        }
        Message::Aftertouch { channel, value } => {
            set(intern!(py, "channel"), (*channel).into())?;
            set(intern!(py, "value"), (*value).into())?;
        }
        Message::PitchWheel { channel, pitch } => {
            set(intern!(py, "channel"), (*channel).into())?;
            set(intern!(py, "pitch"), (*pitch).into())?;
        }
        Message::SysEx { data } => {
            let bytes = PyTuple::new(py, data.iter().map(|b| i64::from(*b)))?;
            let data = m.sysex_data.bind(py).call1((bytes,))?;
            attributes.set_item(intern!(py, "data"), data)?;
        }
        Message::QuarterFrame { frame_type, frame_value } => {
            set(intern!(py, "frame_type"), (*frame_type).into())?;
            set(intern!(py, "frame_value"), (*frame_value).into())?;
        }
        Message::SongPos { pos } => set(intern!(py, "pos"), (*pos).into())?,
        Message::SongSelect { song } => set(intern!(py, "song"), (*song).into())?,
        Message::TuneRequest
        | Message::Clock
        | Message::Start
        | Message::Continue
        | Message::Stop
        | Message::ActiveSensing
        | Message::Reset => {}
    }
    Ok(object)
}

/// Reads a `mido.Message` (or anything with mido's attributes). `TypeError` when it is not a
/// message, `ValueError` for an unknown type or a value that does not fit; the core checks ranges.
pub fn from_mido(message: &Bound<'_, PyAny>) -> PyResult<Message> {
    let py = message.py();
    let type_attr = message
        .getattr(intern!(py, "type"))
        .map_err(|_| PyTypeError::new_err(format!("expected a mido.Message, got {}", describe(message))))?;
    let type_name: String = type_attr
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("message type must be a str, got {}", describe(&type_attr))))?;
    let kind = MessageType::from_name(&type_name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown message type {type_name:?}")))?;
    let byte = |name: &'static str| -> PyResult<u8> { small(message, name, 0, 255).map(|v| v as u8) };
    Ok(match kind {
        MessageType::NoteOff => {
            Message::NoteOff { channel: byte("channel")?, note: byte("note")?, velocity: byte("velocity")? }
        }
        MessageType::NoteOn => {
            Message::NoteOn { channel: byte("channel")?, note: byte("note")?, velocity: byte("velocity")? }
        }
        MessageType::PolyTouch => {
            Message::PolyTouch { channel: byte("channel")?, note: byte("note")?, value: byte("value")? }
        }
        MessageType::ControlChange => {
            Message::ControlChange { channel: byte("channel")?, control: byte("control")?, value: byte("value")? }
        }
        MessageType::ProgramChange => Message::ProgramChange { channel: byte("channel")?, program: byte("program")? },
        MessageType::Aftertouch => Message::Aftertouch { channel: byte("channel")?, value: byte("value")? },
        MessageType::PitchWheel => Message::PitchWheel {
            channel: byte("channel")?,
            pitch: small(message, "pitch", i16::MIN.into(), i16::MAX.into())? as i16,
        },
        MessageType::SysEx => Message::SysEx { data: sysex_data(message)? },
        MessageType::QuarterFrame => {
            Message::QuarterFrame { frame_type: byte("frame_type")?, frame_value: byte("frame_value")? }
        }
        MessageType::SongPos => Message::SongPos { pos: small(message, "pos", 0, u16::MAX.into())? as u16 },
        MessageType::SongSelect => Message::SongSelect { song: byte("song")? },
        MessageType::TuneRequest => Message::TuneRequest,
        MessageType::Clock => Message::Clock,
        MessageType::Start => Message::Start,
        MessageType::Continue => Message::Continue,
        MessageType::Stop => Message::Stop,
        MessageType::ActiveSensing => Message::ActiveSensing,
        MessageType::Reset => Message::Reset,
    })
}

/// An integer attribute within `min..=max` (the core then applies the MIDI range).
fn small(message: &Bound<'_, PyAny>, name: &'static str, min: i64, max: i64) -> PyResult<i64> {
    let value = message
        .getattr(name)
        .map_err(|_| PyValueError::new_err(format!("message has no {name:?} attribute")))?;
    let number: i64 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be an int, got {}", describe(&value))))?;
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, got bool")));
    }
    if number < min || number > max {
        return Err(PyValueError::new_err(format!("{name} is {number}, out of range")));
    }
    Ok(number)
}

fn sysex_data(message: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let data = message
        .getattr("data")
        .map_err(|_| PyValueError::new_err("sysex message has no 'data' attribute"))?;
    let mut out = Vec::new();
    for item in data.try_iter().map_err(|_| PyTypeError::new_err("sysex data must be a sequence of ints"))? {
        let item = item?;
        let byte: i64 = item
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("sysex data bytes must be ints, got {}", describe(&item))))?;
        if !(0..=127).contains(&byte) {
            return Err(PyValueError::new_err(format!("sysex data byte {byte} is out of range 0..127")));
        }
        out.push(byte as u8);
    }
    Ok(out)
}

fn describe(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "an unknown object".into())
}
