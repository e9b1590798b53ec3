//! SIGINT and SIGTERM as a request to finish cleanly, through signal-hook.
//!
//! The first signal runs the command's shutdown (release held notes, flush, close) on a thread of
//! its own; a second one ends the process at once, for when the clean way hangs.

use crate::commands::{Failure, FAILED};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// Which termination signal arrived, and whether its shutdown has finished.
#[derive(Clone, Debug, Default)]
pub struct Received(Arc<State>);

#[derive(Debug, Default)]
struct State {
    /// 0: none yet.
    signal: AtomicI32,
    finished: Mutex<bool>,
    changed: Condvar,
}

impl Received {
    /// The signal's number, once one arrived.
    pub fn signal(&self) -> Option<i32> {
        match self.0.signal.load(Ordering::Acquire) {
            0 => None,
            n => Some(n),
        }
    }

    /// When a signal arrived: waits until its shutdown has run, and returns the signal.
    pub fn wait_for_shutdown(&self) -> Option<i32> {
        let signal = self.signal()?;
        let mut finished = self.0.finished.lock().unwrap_or_else(|e| e.into_inner());
        while !*finished {
            finished = self.0.changed.wait(finished).unwrap_or_else(|e| e.into_inner());
        }
        Some(signal)
    }
}

/// The signal's name, for the one line printed about it.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// Calls `shutdown(signal)` once, on its own thread, when SIGINT or SIGTERM arrives.
pub fn on_termination(shutdown: impl FnOnce(i32) + Send + 'static) -> Result<Received, Failure> {
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure { message: format!("cannot handle signals: {e}"), exit_code: FAILED })?;
    let received = Received::default();
    let flag = received.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut shutdown = Some(shutdown);
            for signal in signals.forever() {
                if flag.0.signal.compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    if let Some(shutdown) = shutdown.take() {
                        shutdown(signal);
                    }
                    *flag.0.finished.lock().unwrap_or_else(|e| e.into_inner()) = true;
                    flag.0.changed.notify_all();
                } else {
                    eprintln!("midisock: second {}: stopping now", name(signal));
                    std::process::exit(128 + signal);
                }
            }
        })
        .map_err(|e| Failure { message: format!("cannot start the signal thread: {e}"), exit_code: FAILED })?;
    Ok(received)
}
