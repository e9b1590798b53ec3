//! `mido.Message` ⇄ the core's `Message`.
//!
//! Done here rather than in Python because it is the hot path: `mido.Message(...)` checks every
//! field in Python and `msg.bytes()` encodes in Python, each costing microseconds. Here a received
//! message becomes a `mido.Message` the way mido's own `copy()` makes one (a bare instance whose
//! attribute dict is filled in), and an outgoing one is read straight from its attributes. Range
//! checks stay in the core (`send` validates); this file only moves values.

use midisock::{InvalidValue, Message, MessageType, Received};
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
    /// Per type, in `MessageType::ALL` order: its interned name, its interned field names (the
    /// core's `field_names`, `data` excluded) and `{'type': ..., 'time': 0, <fields>: 0}`, which
    /// is cheaper to copy and overwrite than to build key by key.
    types: Vec<TypeInfo>,
}

struct TypeInfo {
    name: Py<PyString>,
    fields: Vec<(&'static str, Py<PyString>)>,
    template: Py<PyDict>,
}

impl TypeInfo {
    /// The interned keys of the type's fields, one per call, in the order the core visits the
    /// fields (`field_names` order, which `for_each_scalar` and `from_fields` both keep): a
    /// cursor, because looking each name up by text cost more than the rest of the conversion.
    fn keys<'a>(&'a self) -> impl FnMut(&str) -> &'a Py<PyString> + 'a {
        let mut fields = self.fields.iter();
        move |name| {
            let (expected, key) = fields.next().expect("the core visits only the type's own fields");
            debug_assert_eq!(*expected, name, "the core visits fields in field_names order");
            key
        }
    }
}

static MIDO: GILOnceCell<Mido> = GILOnceCell::new();

fn mido(py: Python<'_>) -> PyResult<&Mido> {
    MIDO.get_or_try_init(py, || {
        let messages = py.import("mido.messages.messages")?;
        let mut types = Vec::new();
        for kind in MessageType::ALL {
            let name = PyString::intern(py, kind.name());
            let fields: Vec<_> = kind
                .field_names()
                .iter()
                .filter(|n| **n != "data")
                .map(|n| (*n, PyString::intern(py, n).unbind()))
                .collect();
            // Same key order as mido's constructor: type, time, then the values.
            let template = PyDict::new(py);
            template.set_item(intern!(py, "type"), &name)?;
            template.set_item(intern!(py, "time"), 0)?;
            for (_, key) in &fields {
                template.set_item(key, 0)?;
            }
            if kind == MessageType::SysEx {
                template.set_item(intern!(py, "data"), 0)?;
            }
            types.push(TypeInfo { name: name.unbind(), fields, template: template.unbind() });
        }
        Ok(Mido {
            message: messages.getattr("Message")?.downcast_into::<PyType>()?.unbind(),
            sysex_data: messages.getattr("SysexData")?.unbind(),
            types,
        })
    })
}

/// The time a received message carries (the `timestamps=` keyword of ports and servers).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    /// `False` (mido's behaviour): `time` is 0.
    Off,
    /// `True` or `'receive'`: the receive time in seconds on the `time.monotonic()` clock (with
    /// a jitter buffer, the time the message was played out).
    Receive,
    /// `'sender'`: the sender's own clock when it sent the message, in seconds, for messages a
    /// midisock sender stamped (a jitter buffer asks for stamps); `None` for the others.
    Sender,
}

impl Timestamps {
    /// The keyword's value: a bool, `'receive'` or `'sender'`.
    pub fn from_py(value: &Bound<'_, PyAny>) -> PyResult<Timestamps> {
        if let Ok(on) = value.downcast::<pyo3::types::PyBool>() {
            return Ok(if on.is_true() { Timestamps::Receive } else { Timestamps::Off });
        }
        match value.extract::<String>().as_deref() {
            Ok("receive") => Ok(Timestamps::Receive),
            Ok("sender") => Ok(Timestamps::Sender),
            Ok(other) => Err(PyValueError::new_err(format!(
                "timestamps must be True, False, 'receive' or 'sender', got {other:?}"
            ))),
            Err(_) => Err(PyTypeError::new_err(format!(
                "timestamps must be True, False, 'receive' or 'sender', got {}",
                describe(value)
            ))),
        }
    }

    fn time(self, received: &Received) -> TimeField {
        match self {
            Timestamps::Off => TimeField::Zero,
            Timestamps::Receive => TimeField::Seconds(received.timestamp_ns),
            Timestamps::Sender => received.sender_ns.map_or(TimeField::Missing, TimeField::Seconds),
        }
    }
}

enum TimeField {
    Zero,
    Seconds(u64),
    Missing,
}

fn type_index(kind: MessageType) -> usize {
    MessageType::ALL.iter().position(|t| *t == kind).unwrap_or(0)
}

/// A new `mido.Message` for a received message, its `time` as `timestamps` says.
pub fn to_mido<'py>(py: Python<'py>, received: &Received, timestamps: Timestamps) -> PyResult<Bound<'py, PyAny>> {
    let m = mido(py)?;
    let message = &received.message;
    let info = &m.types[type_index(message.message_type())];
    let attributes = info.template.bind(py).copy()?;
    match timestamps.time(received) {
        TimeField::Zero => {}
        TimeField::Seconds(ns) => attributes.set_item(intern!(py, "time"), ns as f64 / 1e9)?,
        TimeField::Missing => attributes.set_item(intern!(py, "time"), py.None())?,
    }
    let mut result = Ok(());
    let mut key = info.keys();
    message.for_each_scalar(|name, value| {
        let key = key(name).bind(py);
        if result.is_ok() {
            result = attributes.set_item(key, value);
        }
    });
    result?;
    if let Message::SysEx { data } = message {
        let bytes = PyTuple::new(py, data.iter().map(|b| i64::from(*b)))?;
        attributes.set_item(intern!(py, "data"), m.sysex_data.bind(py).call1((bytes,))?)?;
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

/// A field's value that is not an int, or out of the core's range.
enum FieldError {
    Python(PyErr),
    Range(InvalidValue),
}

impl From<InvalidValue> for FieldError {
    fn from(e: InvalidValue) -> Self {
        FieldError::Range(e)
    }
}

/// Reads a `mido.Message` (or an instance of a subclass). `TypeError` when it is not a message or a value is not an int, `ValueError` for an unknown type or a value out of its
/// range (the core's check).
pub fn from_mido(message: &Bound<'_, PyAny>) -> PyResult<Message> {
    let py = message.py();
    let not_a_message = || PyTypeError::new_err(format!("expected a mido.Message, got {}", describe(message)));
    let m = mido(py)?;
    if !message.is_instance(m.message.bind(py))? {
        return Err(not_a_message());
    }
    let attributes = message.getattr(intern!(py, "__dict__")).map_err(|_| not_a_message())?;
    let attributes = attributes.downcast::<PyDict>().map_err(|_| not_a_message())?;
    let type_attr = attributes.get_item(intern!(py, "type"))?.ok_or_else(not_a_message)?;
    let kind = message_type(py, &type_attr)?;
    let info = &m.types[type_index(kind)];
    let mut key = info.keys();
    let field = |name: &'static str| integer(attributes, key(name).bind(py)).map_err(FieldError::Python);
    let data = || sysex_data(attributes).map_err(FieldError::Python);
    Message::from_fields(kind, field, data).map_err(|e| match e {
        FieldError::Python(e) => e,
        FieldError::Range(e) => PyValueError::new_err(e.to_string()),
    })
}

/// The message type: interned names (mido's and ours) match by identity, others by text.
fn message_type(py: Python<'_>, type_attr: &Bound<'_, PyAny>) -> PyResult<MessageType> {
    let m = mido(py)?;
    if let Some(i) = m.types.iter().position(|t| t.name.bind(py).is(type_attr)) {
        return Ok(MessageType::ALL[i]);
    }
    let name: String = type_attr
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("message type must be a str, got {}", describe(type_attr))))?;
    MessageType::from_name(&name).ok_or_else(|| PyValueError::new_err(format!("unknown message type {name:?}")))
}

/// An integer attribute (not a bool); its range is the core's to check.
fn integer(attributes: &Bound<'_, PyDict>, name: &Bound<'_, PyString>) -> PyResult<i64> {
    let value =
        attributes.get_item(name)?.ok_or_else(|| PyValueError::new_err(format!("message has no {name} attribute")))?;
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, got bool")));
    }
    value.extract().map_err(|_| PyTypeError::new_err(format!("{name} must be an int, got {}", describe(&value))))
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
