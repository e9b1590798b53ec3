//! Blocking waits with the GIL released, which Ctrl-C (any Python signal handler) interrupts.
//!
//! Each wait is one call of the core's interruptible receive or accept: without a timeout that is
//! one blocking read (or futex wait), the cheapest wait there is. CPython's C-level handler for
//! SIGINT is installed without `SA_RESTART`, so when the signal arrives the blocked syscall on the
//! main thread fails with `EINTR` and the core returns `Error::Interrupted`; here the GIL is taken
//! back, the Python handlers run (`KeyboardInterrupt` ends the wait) and the wait goes on with
//! what is left of its timeout. A thread other than the main one rarely sees a signal, and when
//! it does, `check_signals` does nothing there and the wait simply goes on.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::time::{Duration, Instant};

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

/// Waits with the GIL released until `deadline` (`None`: for ever) for a value: `Ok(None)` on
/// timeout. `attempt(limit)` is one interruptible wait of the core, at most `limit` (`None`:
/// without limit); it returns `Err(Interrupted)` when a signal handler ran, and then Python's
/// handlers run before it is called again.
pub fn interruptible<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    attempt: impl Fn(Option<Duration>) -> midisock::Result<Option<T>> + Sync,
) -> PyResult<Option<T>> {
    loop {
        // A signal that came while this thread ran Python is handled before it blocks: the
        // wait below only notices signals that arrive during it. (Cheap: one atomic load
        // unless a signal is pending.)
        py.check_signals()?;
        let limit = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match py.allow_threads(|| attempt(limit)) {
            Err(midisock::Error::Interrupted) => continue,
            result => return result.map_err(crate::errors::to_py),
        }
    }
}
