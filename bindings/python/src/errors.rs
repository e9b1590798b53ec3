//! The core's errors as the Python exceptions mido users already catch: `ValueError` for bad
//! arguments (address, message, token), `OSError` (with its errno when there is one) for the
//! network, and `PortClosedError` — an `OSError` — when the port or server is closed.

use midisock::Error;
use pyo3::exceptions::{PyConnectionRefusedError, PyInterruptedError, PyOSError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    _core,
    PortClosedError,
    PyOSError,
    "The port or server is closed: locally, or the peer closed and every message it sent was received."
);

/// Converts a core error; never panics.
pub fn to_py(error: Error) -> PyErr {
    let text = error.to_string();
    match error {
        Error::AddressSyntax { .. } | Error::InvalidMessage(_) | Error::MessageText(_) | Error::InvalidToken => {
            PyValueError::new_err(text)
        }
        Error::CallbackInstalled => PyValueError::new_err("a callback is set for this port"),
        Error::Closed => PortClosedError::new_err(text),
        Error::Refused { .. } => PyConnectionRefusedError::new_err(text),
        Error::Resolve { source, .. }
        | Error::Connect { source, .. }
        | Error::Bind { source, .. }
        | Error::Io(source) => match source.raw_os_error() {
            // (errno, text) makes Python pick the OSError subclass (ConnectionRefusedError, ...).
            Some(errno) => PyOSError::new_err((errno, text)),
            None => PyOSError::new_err(text),
        },
        Error::Tls(_) => PyOSError::new_err(text),
        // `wait::interruptible` runs the signal handlers and waits again instead; should one get
        // here, Python's own exception for an interrupted call.
        Error::Interrupted => PyInterruptedError::new_err((libc::EINTR, text)),
        _ => PyOSError::new_err(text),
    }
}

/// `Result<T, midisock::Error>` → `PyResult<T>`.
pub trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for midisock::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
