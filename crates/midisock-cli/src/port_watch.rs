//! Keeping a MIDI port opened by name open: a thread per port that looks for it, closes the
//! connection when the port (or the whole backend: a JACK server that stopped) goes away, and
//! opens it again when a port of that name is back.
//!
//! Each change of state is logged once. Looking at the port list is cheap and happens every
//! [`LOOK_INTERVAL`]; what can fail repeatedly (reaching a backend that is not running, opening a
//! port that refuses) backs off, doubling up to [`MAX_BACKOFF`], so a bridge left waiting for a
//! JACK server overnight costs nothing.

use crate::backend_liveness::{Liveness, BACKEND};
use crate::commands::{Failure, FAILED};
use crate::log;
use crate::midi::stable_name;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Held by whoever opens or closes a backend client (a probe, a connection, a liveness client):
/// libjack's process-wide state is not safe against clients of a dead server being closed on
/// one thread while another opens a client on the new one, and with two ports watched, both
/// happen at once after a JACK restart. Not held by the backend's own callbacks.
static BACKEND_CLIENTS: Mutex<()> = Mutex::new(());

/// Serialises opening and closing backend clients (see [`BACKEND_CLIENTS`]).
pub fn backend_clients() -> MutexGuard<'static, ()> {
    BACKEND_CLIENTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often a watched port is looked for: a replugged device is back within this.
pub const LOOK_INTERVAL: Duration = Duration::from_millis(200);
/// The longest wait between two attempts to reach a backend or open a port.
pub const MAX_BACKOFF: Duration = Duration::from_millis(3200);

/// The port list of one direction, from a client of the backend.
pub struct Probe {
    /// The names of the ports of the watched direction.
    pub names: Box<dyn Fn() -> Vec<String> + Send>,
    /// Whether the backend the names come from is still running.
    pub liveness: Liveness,
}

impl Probe {
    /// The port list, or None when the backend this probe belongs to has gone.
    fn names(&self) -> Option<Vec<String>> {
        // Checked after listing too: a list read while the server was dying can be stale.
        if !self.liveness.alive() {
            return None;
        }
        let names = (self.names)();
        self.liveness.alive().then_some(names)
    }
}

/// How a watched port is opened and let go of; `C` is the open connection.
pub trait PortHandling<C>: Send + 'static {
    /// A new probe for the port named `full_name`; None when the backend cannot be reached.
    fn probe(&mut self, full_name: &str) -> Option<Probe>;
    /// Opens the port named `full_name`.
    fn open(&mut self, full_name: &str) -> Result<C, String>;
    /// The port (or its backend) went away: close `connection` and clean up after it.
    fn lost(&mut self, connection: C);
    /// Called at each look while the port is open (from the look after it was opened on):
    /// for what must wait until a new connection is in effect (JACK applies a new connection
    /// at a later cycle than the one it was made in).
    fn settled(&mut self, _connection: &mut C) {}
}

/// A port's connection, shared by the watcher and the one who sends on or reads from it;
/// None while the port is gone.
pub type Slot<C> = Arc<Mutex<Option<C>>>;

pub fn lock<C>(slot: &Slot<C>) -> MutexGuard<'_, Option<C>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    /// The backend runs, the port is not there (or would not open).
    PortGone,
    /// The backend cannot be reached, or the one the connection belonged to stopped.
    BackendGone,
}

/// The watcher thread; stopped and joined on drop.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        // The probe the thread owned was closed with it.
    }
}

/// Doubling waits between failed attempts, back to the look interval after a success.
struct Backoff(Duration);

impl Backoff {
    fn failed(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        wait
    }

    fn reset(&mut self) {
        self.0 = LOOK_INTERVAL;
    }
}

/// Watches `slot`'s port, named `full_name` (`kind`: "input" or "output"), opened already with
/// `probe` showing it.
pub fn watch<C: Send + 'static>(
    kind: &'static str,
    full_name: String,
    probe: Probe,
    slot: Slot<C>,
    mut handling: impl PortHandling<C>,
) -> Result<Watcher, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let mut probe = Some(probe);
    let mut state = State::Open;
    let mut backoff = Backoff(LOOK_INTERVAL);
    let what = format!("MIDI {kind} {full_name}");
    let thread = thread::Builder::new()
        .name(format!("watch {full_name}"))
        .spawn(move || {
            let mut wait = LOOK_INTERVAL;
            while !stopped.load(Ordering::Acquire) {
                thread::park_timeout(wait);
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let _clients = backend_clients();
                wait = look(&what, &full_name, &mut probe, &mut state, &mut backoff, &slot, &mut handling);
            }
        })
        .map_err(|e| Failure { message: format!("cannot start a thread: {e}"), exit_code: FAILED })?;
    Ok(Watcher { stop, thread: Some(thread) })
}

/// One look at the port; returns how long to wait before the next.
fn look<C>(
    what: &str,
    full_name: &str,
    probe: &mut Option<Probe>,
    state: &mut State,
    backoff: &mut Backoff,
    slot: &Slot<C>,
    handling: &mut impl PortHandling<C>,
) -> Duration {
    let mut change = |to: State, handling: &mut dyn FnMut(C)| {
        if let Some(connection) = lock(slot).take() {
            handling(connection);
        }
        if *state != to {
            match to {
                State::BackendGone => {
                    log::warn(format_args!("{what}: {BACKEND} stopped; it will be reopened when it returns"))
                }
                State::PortGone if *state == State::BackendGone => {
                    log::warn(format_args!("{BACKEND} is back; waiting for {what}"))
                }
                State::PortGone => log::warn(format_args!("{what} is gone; it will be reopened when it returns")),
                State::Open => {}
            }
            *state = to;
        }
    };
    if probe.is_none() {
        *probe = handling.probe(full_name);
    }
    let Some(names) = probe.as_ref().and_then(Probe::names) else {
        // The probe's backend is gone (or was never reached): so is the connection's. A new
        // probe is made next time, which also tells when a new server is up.
        *probe = None;
        change(State::BackendGone, &mut |c| handling.lost(c));
        return backoff.failed();
    };
    let present = names.iter().any(|n| stable_name(n) == stable_name(full_name));
    if !present {
        change(State::PortGone, &mut |c| handling.lost(c));
        backoff.reset();
        return LOOK_INTERVAL;
    }
    if *state == State::Open {
        if let Some(connection) = lock(slot).as_mut() {
            handling.settled(connection);
        }
        return LOOK_INTERVAL;
    }
    match handling.open(full_name) {
        Ok(connection) => {
            *lock(slot) = Some(connection);
            *state = State::Open;
            backoff.reset();
            log::warn(format_args!("{what} is back"));
            LOOK_INTERVAL
        }
        Err(e) => {
            log::debug(format_args!("{e}"));
            backoff.failed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_starts_over_after_a_success() {
        let mut backoff = Backoff(LOOK_INTERVAL);
        let waits: Vec<u64> = (0..7).map(|_| backoff.failed().as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 3200, 3200]);
        backoff.reset();
        assert_eq!(backoff.failed(), LOOK_INTERVAL);
    }
}
