//! The jitter buffer from Python: the `jitter_buffer=` keyword (`None`, milliseconds, or
//! `"auto"`) and `playout_stats` as dicts. The setting's one text form is the core's
//! (`DelayMode: FromStr`); a number is written as that text, never parsed here.

use midisock::timing::{DelayMode, PlayoutStats};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

/// `jitter_buffer=`: `None` (off), a delay in milliseconds (int or float, 0–10000), or `"auto"`
/// (adaptive). `TypeError` for any other type, `ValueError` for a value the core refuses.
pub fn delay_mode(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DelayMode>> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    let text = if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err("jitter_buffer must be None, milliseconds or \"auto\", got bool"));
    } else if let Ok(text) = value.downcast::<PyString>() {
        text.to_cow()?.into_owned()
    } else if value.is_instance_of::<PyInt>() {
        // Python's own text of an int (any size): the core judges its range.
        value.str()?.to_cow()?.into_owned()
    } else if value.is_instance_of::<PyFloat>() {
        // Rust writes floats without an exponent (1e-05 → 0.00001), the form the core reads;
        // nan and inf come out as text it refuses.
        value.extract::<f64>()?.to_string()
    } else {
        let kind = value.get_type().name()?;
        return Err(PyTypeError::new_err(format!("jitter_buffer must be None, milliseconds or \"auto\", got {kind}")));
    };
    text.parse::<DelayMode>().map(Some).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A jitter buffer's state as a dict: times in seconds (`None` before there is data), counts
/// as ints.
pub fn stats_dict<'py>(py: Python<'py>, stats: &PlayoutStats) -> PyResult<Bound<'py, PyDict>> {
    let dict = dict_of!(
        py,
        stats,
        queued,
        held_note_offs,
        pushed,
        delivered,
        late,
        stale_notes_dropped,
        stale_note_offs_dropped,
        delivered_early_full,
        restarts
    )?;
    let seconds = |ns: Option<u64>| ns.map(|ns| ns as f64 / 1e9);
    dict.set_item("offset", stats.offset_ns.map(|ns| ns as f64 / 1e9))?;
    dict.set_item("jitter_p50", seconds(stats.jitter_p50_ns))?;
    dict.set_item("jitter_p999", seconds(stats.jitter_p999_ns))?;
    dict.set_item("delay", stats.delay_ns as f64 / 1e9)?;
    Ok(dict)
}
