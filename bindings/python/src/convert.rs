//! `mido.Message` ⇄ the core's `Message`.
//!
//! Done here rather than in Python because it is the hot path: `mido.Message(...)` checks every
//! field in Python and `msg.bytes()` encodes in Python, each costing microseconds. Here a received
//! message becomes a `mido.Message` the way mido's own `copy()` makes one (a bare instance whose
//! attribute dict is filled in), and an outgoing one is read straight from its attributes. Range
//! checks stay in the core (`send` validates); this file only moves values.

use midisock::{Message, MessageType};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

/// mido's classes, imported once, and a template attribute dict per message type.
struct Mido {
    /// `mido.Message`; instances are made as its `copy()` makes them: allocated bare, then given
    /// an attribute dict.
    message: Py<PyType>,
    sysex_data: Py<PyAny>,
    /// Interned type names, in `MessageType::ALL` order.
    type_names: Vec<Py<PyString>>,
    /// `{'type': ..., 'time': 0, <fields>: 0}` per type, in `MessageType::ALL` order: copying one
    /// and overwriting the fields is cheaper than building the dict key by key.
    templates: Vec<Py<PyDict>>,
}

static MIDO: GILOnceCell<Mido> = GILOnceCell::new();

fn mido(py: Python<'_>) -> PyResult<&Mido> {
    MIDO.get_or_try_init(py, || {
        let messages = py.import("mido.messages.messages")?;
        let type_names: Vec<Py<PyString>> =
            MessageType::ALL.iter().map(|t| PyString::intern(py, t.name()).unbind()).collect();
        let mut templates = Vec::new();
        for (kind, name) in MessageType::ALL.iter().zip(&type_names) {
            // Same key order as mido's constructor: type, time, then the values.
            let template = PyDict::new(py);
            template.set_item(intern!(py, "type"), name.bind(py))?;
            template.set_item(intern!(py, "time"), 0)?;
            for field in kind.field_names() {
                template.set_item(PyString::intern(py, field), 0)?;
            }
            templates.push(template.unbind());
        }
        Ok(Mido {
            message: messages.getattr("Message")?.downcast_into::<PyType>()?.unbind(),
            sysex_data: messages.getattr("SysexData")?.unbind(),
            type_names,
            templates,
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

fn type_index(kind: MessageType) -> usize {
    MessageType::ALL.iter().position(|t| *t == kind).unwrap_or(0)
}

/// A new `mido.Message` for `message`.
pub fn to_mido<'py>(py: Python<'py>, message: &Message, time: TimeField) -> PyResult<Bound<'py, PyAny>> {
    let m = mido(py)?;
    let attributes = m.templates[type_index(message.message_type())].bind(py).copy()?;
    if let TimeField::Stamp(ns) = time {
        attributes.set_item(intern!(py, "time"), ns as f64 / 1e9)?;
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
    let class = m.message.bind(py);
    // SAFETY: `class` is a live type object (mido.Message, a heap type whose tp_alloc is this
    // very function; `object.__new__(Message)` does exactly this call). A null result is an
    // exception, turned into PyErr by from_owned_ptr_or_err.
    let object = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(class.as_type_ptr(), 0))? };
    // Set the attribute dict past mido's `__setattr__` (which makes messages immutable), as
    // `object.__setattr__(msg, '__dict__', d)` would.
    // SAFETY: both objects are live for the call; the function borrows its arguments.
    let status =
        unsafe { ffi::PyObject_GenericSetAttr(object.as_ptr(), intern!(py, "__dict__").as_ptr(), attributes.as_ptr()) };
    if status != 0 {
        return Err(PyErr::fetch(py));
    }
    // NOTE: a message holding only ints and strings cannot be part of a reference cycle (mido's
    // `__setattr__` only lets numbers in), so the cycle collector has nothing to find in it; CPython skips
    // such tuples and dicts the same way. Left tracked, a stream of received messages makes the
    // collector run over and over, half the cost of receiving. Sysex messages (holding a tuple)
    // stay tracked.
    if !matches!(message, Message::SysEx { .. }) {
        // SAFETY: `object` is live and GC-enabled (a heap type instance from PyType_GenericAlloc);
        // untracking is idempotent, and its dealloc untracks with the same checked call.
        unsafe { ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) };
    }
    Ok(object)
}

/// Reads a `mido.Message` (anything whose attribute dict has mido's keys). `TypeError` when it is
/// not a message, `ValueError` for an unknown type or a value that does not fit; the core checks
/// MIDI ranges when it sends.
pub fn from_mido(message: &Bound<'_, PyAny>) -> PyResult<Message> {
    let py = message.py();
    let not_a_message = || PyTypeError::new_err(format!("expected a mido.Message, got {}", describe(message)));
    let attributes = message.getattr(intern!(py, "__dict__")).map_err(|_| not_a_message())?;
    let attributes = attributes.downcast::<PyDict>().map_err(|_| not_a_message())?;
    let type_attr = attributes.get_item(intern!(py, "type"))?.ok_or_else(not_a_message)?;
    let kind = message_type(py, &type_attr)?;
    let byte = |name: &Bound<'_, PyString>| -> PyResult<u8> { small(attributes, name, 0, 255).map(|v| v as u8) };
    Ok(match kind {
        MessageType::NoteOff => Message::NoteOff {
            channel: byte(intern!(py, "channel"))?,
            note: byte(intern!(py, "note"))?,
            velocity: byte(intern!(py, "velocity"))?,
        },
        MessageType::NoteOn => Message::NoteOn {
            channel: byte(intern!(py, "channel"))?,
            note: byte(intern!(py, "note"))?,
            velocity: byte(intern!(py, "velocity"))?,
        },
        MessageType::PolyTouch => Message::PolyTouch {
            channel: byte(intern!(py, "channel"))?,
            note: byte(intern!(py, "note"))?,
            value: byte(intern!(py, "value"))?,
        },
        MessageType::ControlChange => Message::ControlChange {
            channel: byte(intern!(py, "channel"))?,
            control: byte(intern!(py, "control"))?,
            value: byte(intern!(py, "value"))?,
        },
        MessageType::ProgramChange => {
            Message::ProgramChange { channel: byte(intern!(py, "channel"))?, program: byte(intern!(py, "program"))? }
        }
        MessageType::Aftertouch => {
            Message::Aftertouch { channel: byte(intern!(py, "channel"))?, value: byte(intern!(py, "value"))? }
        }
        MessageType::PitchWheel => Message::PitchWheel {
            channel: byte(intern!(py, "channel"))?,
            pitch: small(attributes, intern!(py, "pitch"), i16::MIN.into(), i16::MAX.into())? as i16,
        },
        MessageType::SysEx => Message::SysEx { data: sysex_data(attributes)? },
        MessageType::QuarterFrame => Message::QuarterFrame {
            frame_type: byte(intern!(py, "frame_type"))?,
            frame_value: byte(intern!(py, "frame_value"))?,
        },
        MessageType::SongPos => {
            Message::SongPos { pos: small(attributes, intern!(py, "pos"), 0, u16::MAX.into())? as u16 }
        }
        MessageType::SongSelect => Message::SongSelect { song: byte(intern!(py, "song"))? },
        MessageType::TuneRequest => Message::TuneRequest,
        MessageType::Clock => Message::Clock,
        MessageType::Start => Message::Start,
        MessageType::Continue => Message::Continue,
        MessageType::Stop => Message::Stop,
        MessageType::ActiveSensing => Message::ActiveSensing,
        MessageType::Reset => Message::Reset,
    })
}

/// The message type: interned names (mido's and ours) match by identity, others by text.
fn message_type(py: Python<'_>, type_attr: &Bound<'_, PyAny>) -> PyResult<MessageType> {
    let m = mido(py)?;
    if let Some(i) = m.type_names.iter().position(|name| name.bind(py).is(type_attr)) {
        return Ok(MessageType::ALL[i]);
    }
    let name: String = type_attr
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("message type must be a str, got {}", describe(type_attr))))?;
    MessageType::from_name(&name).ok_or_else(|| PyValueError::new_err(format!("unknown message type {name:?}")))
}

/// An integer attribute within `min..=max` (the core then applies the MIDI range).
fn small(attributes: &Bound<'_, PyDict>, name: &Bound<'_, PyString>, min: i64, max: i64) -> PyResult<i64> {
    let value =
        attributes.get_item(name)?.ok_or_else(|| PyValueError::new_err(format!("message has no {name} attribute")))?;
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, got bool")));
    }
    let number: i64 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be an int, got {}", describe(&value))))?;
    if number < min || number > max {
        return Err(PyValueError::new_err(format!("{name} is {number}, out of range")));
    }
    Ok(number)
}

fn sysex_data(attributes: &Bound<'_, PyDict>) -> PyResult<Vec<u8>> {
    let py = attributes.py();
    let data = attributes
        .get_item(intern!(py, "data"))?
        .ok_or_else(|| PyValueError::new_err("sysex message has no data attribute"))?;
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
