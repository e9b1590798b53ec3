//! `midisock._core`: the Rust side of the `midisock` Python package.
//!
//! It only moves messages and waits: `Connection` (one TCP connection) and `Server` wrap the core's
//! `SocketPort` and `PortServer`; every wait releases the GIL and is interrupted by Ctrl-C (see `wait.rs`).
//! The mido-shaped API (`midisock.sockets`, `midisock.backend`) is Python, in `python/midisock/`.

/// `dict_of!(py, stats, field, ...)`: a dict of a counters struct's fields under their own
/// names (the core's names are the Python names), for `parser_stats()`, `stats()` and
/// `playout_stats`. Evaluates to `PyResult<Bound<PyDict>>`.
macro_rules! dict_of {
    ($py:expr, $stats:expr, $($field:ident),+ $(,)?) => {{
        let dict = pyo3::types::PyDict::new($py);
        (|| -> pyo3::PyResult<_> {
            $(dict.set_item(stringify!($field), $stats.$field)?;)+
            Ok(dict)
        })()
    }};
}

mod callback;
mod connection;
mod convert;
mod errors;
mod server;
mod timing;
mod wait;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<connection::Connection>()?;
    m.add_class::<server::Server>()?;
    m.add_function(wrap_pyfunction!(connection::connect, m)?)?;
    m.add_function(wrap_pyfunction!(connection::adopt, m)?)?;
    m.add_function(wrap_pyfunction!(server::bind, m)?)?;
    m.add_function(wrap_pyfunction!(monotonic, m)?)?;
    m.add("PortClosedError", m.py().get_type::<errors::PortClosedError>())?;
    Ok(())
}

/// The clock receive timestamps use, in seconds (`CLOCK_MONOTONIC`, as `time.monotonic()`).
#[pyfunction]
fn monotonic() -> f64 {
    midisock::monotonic_ns() as f64 / 1e9
}
