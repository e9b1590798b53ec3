//! Delivering received messages to a Python callback from the core's callback thread (a port's
//! or a server's).

use crate::convert::{to_mido, Timestamps};
use midisock::Received;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, PoisonError};

/// The function messages go to; replaceable while the reader thread runs.
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<Option<Py<PyAny>>>>);

impl Slot {
    /// Installs `callback`; true when the slot was empty (the reader thread must be started).
    pub fn set(&self, callback: Py<PyAny>) -> PyResult<bool> {
        let callable = Python::with_gil(|py| callback.bind(py).is_callable());
        if !callable {
            return Err(PyValueError::new_err("callback must be a callable taking one message, or None"));
        }
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let first = slot.is_none();
        *slot = Some(callback);
        Ok(first)
    }

    /// Empties the slot (once its reader thread is stopped).
    pub fn clear(&self) {
        let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        // Dropped here, after the lock: dropping a Python object without the GIL only queues
        // its decref, which is fine.
        drop(taken);
    }
}

/// Calls the slot's function with `received` as a `mido.Message`. An exception in the callback
/// is reported like one in a thread (`sys.unraisablehook`) and delivery goes on.
pub fn deliver(slot: &Slot, received: &Received, timestamps: Timestamps) {
    Python::with_gil(|py| {
        let callback = slot.0.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|c| c.clone_ref(py));
        let Some(callback) = callback else { return };
        let result = to_mido(py, received, timestamps).and_then(|m| callback.bind(py).call1((m,)));
        if let Err(error) = result {
            error.write_unraisable(py, Some(callback.bind(py)));
        }
    });
}
