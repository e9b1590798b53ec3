//! Blocking waits with the GIL released. On Python's main thread — the only one where signal
//! handlers run — a wait goes in slices, so Ctrl-C (or any handler) runs within a slice even while
//! a receive or accept waits for the network. Other threads block in one call: nothing could
//! interrupt them anyway, and a single blocking read is the cheapest wait there is.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one slice of a blocking wait may last before Python's signal handlers get a turn.
const SLICE: Duration = Duration::from_millis(50);

/// `threading.main_thread().ident`, recorded when the module is imported (0: unknown, every
/// thread then waits in slices).
static MAIN_THREAD: AtomicU64 = AtomicU64::new(0);

pub fn record_main_thread(py: Python<'_>) -> PyResult<()> {
    let ident: u64 = py.import("threading")?.call_method0("main_thread")?.getattr("ident")?.extract()?;
    MAIN_THREAD.store(ident, Ordering::Relaxed);
    Ok(())
}

fn on_main_thread() -> bool {
    // SAFETY: pthread_self has no preconditions. Python's thread idents are pthread_self()
    // values on POSIX, so the two compare.
    let me = unsafe { libc::pthread_self() } as u64;
    let main = MAIN_THREAD.load(Ordering::Relaxed);
    main == 0 || me == main
}

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
/// timeout. `attempt(Some(d))` waits at most `d` and returns `Ok(None)` when nothing came;
/// `attempt(None)` waits without limit. On the main thread pending signals run between slices
/// (`KeyboardInterrupt` ends the wait).
pub fn sliced<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    attempt: impl Fn(Option<Duration>) -> midisock::Result<Option<T>> + Sync,
) -> PyResult<Option<T>> {
    if !on_main_thread() {
        let limit = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        return py.allow_threads(|| attempt(limit)).map_err(crate::errors::to_py);
    }
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(deadline) => deadline.saturating_duration_since(Instant::now()).min(SLICE),
        };
        let result = py.allow_threads(|| attempt(Some(slice))).map_err(crate::errors::to_py)?;
        if result.is_some() {
            return Ok(result);
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}
