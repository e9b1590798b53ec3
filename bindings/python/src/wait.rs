//! Blocking waits with the GIL released, in slices, so Ctrl-C (and any other signal handler)
//! runs within a slice even while a receive or accept is waiting for the network.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::time::{Duration, Instant};

/// How long one slice of a blocking wait may last before Python's signal handlers get a turn.
const SLICE: Duration = Duration::from_millis(50);

/// A receive or accept timeout from Python: `None` waits forever, otherwise seconds ≥ 0.
pub fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => {
            Ok(Some(Instant::now() + Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX / 4)))
        }
        Some(t) => Err(PyValueError::new_err(format!("timeout must be None or seconds >= 0, got {t}"))),
    }
}

/// Calls `attempt(slice)` with the GIL released until it yields a value or `deadline` passes
/// (`Ok(None)`). `attempt` waits at most the slice it is given and returns `Ok(None)` when nothing
/// came. Between slices pending signals run (`KeyboardInterrupt` ends the wait).
pub fn sliced<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    attempt: impl Fn(Duration) -> midisock::Result<Option<T>> + Sync,
) -> PyResult<Option<T>> {
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(deadline) => deadline.saturating_duration_since(Instant::now()).min(SLICE),
        };
        let result = py.allow_threads(|| attempt(slice)).map_err(crate::errors::to_py)?;
        if result.is_some() {
            return Ok(result);
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}
