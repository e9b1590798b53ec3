//! [`ReconnectingPort`]: a client connection that survives its server going away.
//!
//! A reconnecting port holds one [`SocketPort`] at a time. When the connection drops (the server
//! closed, vanished, or refused us), the port
//! 1. queues, for its receiver, a note-off for every note it had received and not yet seen
//!    released, so whatever plays what it receives is never left with a stuck note;
//! 2. reconnects on its own thread ("midisock-recon") with exponential backoff ([`Reconnect`]):
//!    the delay doubles from `initial_delay` up to `max_delay`, each one shortened by a random
//!    part (`jitter_percent`) so that many clients of one restarted server do not return in step;
//! 3. reports every change of state — connected, disconnected and why, reconnecting (attempt N in
//!    D ms), gave up — through [`ReconnectingPort::state`] and an optional callback.
//!
//! While the connection is down, sends fail at once with [`Error::Disconnected`] (nothing is
//! queued: a note played into a dead link is better dropped than played late), and receives wait
//! for the next connection. A refused connection (the server's notice, [`Error::Refused`]) is a
//! failed attempt like a refused TCP connect: the backoff keeps growing, so a server that refuses
//! is never hammered.

use crate::address::IntoAddress;
use crate::clock::monotonic_ns;
use crate::error::{Error, Result};
use crate::message::{Message, Received};
use crate::notes::HeldNotes;
use crate::poll_fd::PollFd;
use crate::port::{connect_with, ConnectOptions, SocketPort};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// The reconnect thread's name (within Linux's 15 bytes).
const THREAD_NAME: &str = "midisock-recon";

/// A connection that lasted at least this long before it dropped was a working one: the backoff
/// starts again from `initial_delay`. A shorter one counts as a failed attempt (a server that
/// accepts and closes at once must not be reconnected to at the initial rate forever).
const STABLE_AFTER: Duration = Duration::from_secs(1);

/// How a [`ReconnectingPort`] reconnects ([`ConnectOptions::reconnect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconnect {
    /// Wait before the first attempt after a drop. Default 100 ms.
    pub initial_delay: Duration,
    /// Longest wait between attempts; the delay doubles up to it. Default 5 s.
    pub max_delay: Duration,
    /// Consecutive failed attempts after which the port gives up and closes
    /// ([`Error::GaveUp`]). `None` (default): never give up.
    pub max_attempts: Option<u32>,
    /// Each delay is shortened by a random part of itself, up to this many percent (0–100;
    /// more counts as 100). Default 20.
    pub jitter_percent: u8,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: None,
            jitter_percent: 20,
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1 = the first after a drop), before jitter.
    /// Never less than 1 ms, so that a policy of zeros cannot make the port spin.
    pub fn delay(&self, attempt: u32) -> Duration {
        let initial = self.initial_delay.max(Duration::from_millis(1));
        let doublings = attempt.saturating_sub(1).min(31);
        initial.saturating_mul(1 << doublings).min(self.max_delay.max(initial))
    }

    /// `delay(attempt)` shortened by `jitter × unit`, `unit` in 0.0..1.0.
    fn jittered(&self, attempt: u32, unit: f64) -> Duration {
        let jitter = f64::from(self.jitter_percent.min(100)) / 100.0;
        self.delay(attempt).mul_f64(1.0 - jitter * unit.clamp(0.0, 1.0))
    }
}

/// Where a [`ReconnectingPort`]'s connection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Connected: sends go out, receives read.
    Connected,
    /// The connection dropped (or an attempt failed), for `reason`; the next attempt follows.
    Disconnected { reason: String },
    /// Attempt `attempt` (1, 2, …) starts in `delay`.
    Reconnecting { attempt: u32, delay: Duration },
    /// `attempts` consecutive attempts failed; the last for `reason`. The port is closed.
    GaveUp { attempts: u32, reason: String },
    /// Closed by [`ReconnectingPort::close`].
    Closed,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkState::Connected => f.write_str("connected"),
            LinkState::Disconnected { reason } => write!(f, "disconnected: {reason}"),
            LinkState::Reconnecting { attempt, delay } => {
                write!(f, "reconnecting: attempt {attempt} in {} ms", delay.as_millis())
            }
            LinkState::GaveUp { attempts, reason } => write!(f, "gave up after {attempts} attempts: {reason}"),
            LinkState::Closed => f.write_str("closed"),
        }
    }
}

type StateCallback = Box<dyn FnMut(&LinkState) + Send>;

/// A client port that reconnects by itself; see the module docs. `Send + Sync`, like
/// [`SocketPort`]. Dropping it closes it and joins its thread.
pub struct ReconnectingPort {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    thread_id: ThreadId,
}

struct Shared {
    name: String,
    address: crate::address::Address,
    /// The options of every attempt (the policy itself is `policy`).
    options: ConnectOptions,
    policy: Reconnect,
    link: Mutex<Link>,
    /// Signalled on every change of `link`.
    changed: Condvar,
    closed: AtomicBool,
    autoreset: AtomicBool,
    /// Notes received and not yet released, for the note-offs queued on a drop.
    received_held: Mutex<HeldNotes>,
    callback: Mutex<Option<StateCallback>>,
}

struct Link {
    /// The live connection; `None` while down.
    port: Option<Arc<SocketPort>>,
    /// Counts connections, so that a drop is handled once however many threads notice it.
    generation: u64,
    connected_at: Instant,
    state: LinkState,
    /// Consecutive failed attempts (short-lived connections and refusals included).
    failures: u32,
    /// Why the last connection or attempt failed, and whether that was a refusal.
    last_failure: Option<(String, Option<String>)>,
    /// Note-offs for the receiver after a drop, before anything of the next connection.
    releases: VecDeque<Received>,
    /// States not yet reported to the callback, oldest first.
    unreported: VecDeque<LinkState>,
    /// Random state for the jitter (xorshift).
    random: u64,
    /// The poller's descriptor ([`ReconnectingPort::poll_fd`]), once asked for: every connection
    /// is added to it, and every change of state signals it.
    poll_fd: Option<Arc<PollFd>>,
}

impl Link {
    fn set_state(&mut self, state: LinkState) {
        if let Some(poll) = &self.poll_fd {
            // A poller wakes to see the change, and the note-offs a drop queued.
            poll.signal();
        }
        self.state = state.clone();
        self.unreported.push_back(state);
    }

    fn next_unit(&mut self) -> f64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        (self.random >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long a receive may wait.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    Until(Instant),
    No,
}

impl ReconnectingPort {
    /// Connects to `address` with `options` and keeps reconnecting with `options.reconnect` (the
    /// default [`Reconnect`] policy when that is `None`). The first connection must succeed: an
    /// address typo or a server that is not there is reported at once, as by
    /// [`crate::connect_with`].
    pub fn connect(address: impl IntoAddress, options: &ConnectOptions) -> Result<ReconnectingPort> {
        let address = address.into_address()?;
        let policy = options.reconnect.clone().unwrap_or_default();
        let mut attempt_options = options.clone();
        attempt_options.reconnect = None;
        let first = connect_with(&address, &attempt_options)?;
        let seed = monotonic_ns() | 1;
        let shared = Arc::new(Shared {
            name: address.to_string(),
            address,
            options: attempt_options,
            policy,
            link: Mutex::new(Link {
                port: Some(Arc::new(first)),
                generation: 1,
                connected_at: Instant::now(),
                state: LinkState::Connected,
                failures: 0,
                last_failure: None,
                releases: VecDeque::new(),
                unreported: VecDeque::new(),
                random: seed,
                poll_fd: None,
            }),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
            autoreset: AtomicBool::new(false),
            received_held: Mutex::new(HeldNotes::default()),
            callback: Mutex::new(None),
        });
        let handle = {
            let shared = Arc::clone(&shared);
            thread::Builder::new().name(THREAD_NAME.into()).spawn(move || shared.run()).map_err(Error::Io)?
        };
        let thread_id = handle.thread().id();
        Ok(ReconnectingPort { shared, thread: Mutex::new(Some(handle)), thread_id })
    }

    /// `host:port` as given to [`ReconnectingPort::connect`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Where the connection stands now. Never blocks for long.
    pub fn state(&self) -> LinkState {
        self.shared.link.lock().state.clone()
    }

    /// Calls `callback` with every change of state, in order, on the port's reconnect thread
    /// ("midisock-recon"); replaces an earlier callback. The callback must not block for long
    /// (the next attempt waits for it) and may call any method of this port, `close` included.
    pub fn on_state_change<F>(&self, callback: F)
    where
        F: FnMut(&LinkState) + Send + 'static,
    {
        *self.shared.callback.lock() = Some(Box::new(callback));
    }

    /// Sends one message on the current connection. `Err(Error::Disconnected)` at once while the
    /// connection is down (nothing is sent or queued); a send that finds the connection gone
    /// starts a reconnect and returns the same error. `Err(Error::InvalidMessage)` as for
    /// [`SocketPort::send`].
    pub fn send(&self, message: &Message) -> Result<()> {
        self.send_all(std::slice::from_ref(message))
    }

    /// [`ReconnectingPort::send`] for several messages in one write.
    pub fn send_all(&self, messages: &[Message]) -> Result<()> {
        let (port, generation) = self.shared.current()?;
        match port.send_all(messages) {
            Ok(()) => Ok(()),
            Err(e @ Error::InvalidMessage(_)) => Err(e),
            Err(e) => {
                let reason = self.shared.dropped(generation, &e);
                Err(Error::Disconnected { reason })
            }
        }
    }

    /// Waits for the next message, across reconnects: while the connection is down it waits for
    /// the next one. After a drop, the note-offs for notes still held come first. Ends with
    /// `Err(Error::Closed)` once closed, or `Err(Error::GaveUp)`.
    pub fn receive(&self) -> Result<Message> {
        self.receive_stamped().map(|r| r.message)
    }

    /// [`ReconnectingPort::receive`] with the receive timestamp.
    pub fn receive_stamped(&self) -> Result<Received> {
        self.next(Wait::Forever).map(|r| r.expect("an unbounded wait returns a message or an error"))
    }

    /// The next message if one is waiting, without waiting (`Ok(None)` while down, too).
    pub fn try_receive(&self) -> Result<Option<Message>> {
        self.next(Wait::No).map(|r| r.map(|r| r.message))
    }

    /// Waits at most `timeout` (across reconnects) for the next message.
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.receive_timeout_stamped(timeout).map(|r| r.map(|r| r.message))
    }

    /// [`ReconnectingPort::receive_timeout`] with the receive timestamp.
    pub fn receive_timeout_stamped(&self, timeout: Duration) -> Result<Option<Received>> {
        let wait = Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until);
        self.next(wait)
    }

    /// [`ReconnectingPort::try_receive`] with the receive timestamp.
    pub fn try_receive_stamped(&self) -> Result<Option<Received>> {
        self.next(Wait::No)
    }

    fn next(&self, wait: Wait) -> Result<Option<Received>> {
        loop {
            let (port, generation) = {
                let mut link = self.shared.link.lock();
                loop {
                    if let Some(release) = link.releases.pop_front() {
                        return Ok(Some(release));
                    }
                    self.shared.check_usable(&link)?;
                    if let Some(port) = &link.port {
                        break (Arc::clone(port), link.generation);
                    }
                    // Down: wait for the next connection (or the deadline).
                    match wait {
                        Wait::No => {
                            // Nothing more to take until the state changes again.
                            if let Some(poll) = &link.poll_fd {
                                poll.clear();
                            }
                            return Ok(None);
                        }
                        Wait::Forever => self.shared.changed.wait(&mut link),
                        Wait::Until(deadline) => {
                            if Instant::now() >= deadline {
                                return Ok(None);
                            }
                            self.shared.changed.wait_until(&mut link, deadline);
                        }
                    }
                }
            };
            let received = match wait {
                Wait::Forever => port.receive_stamped().map(Some),
                Wait::Until(deadline) => {
                    port.receive_timeout_stamped(deadline.saturating_duration_since(Instant::now()))
                }
                Wait::No => port.try_receive_stamped(),
            };
            match received {
                Ok(Some(received)) => {
                    self.shared.received_held.lock().observe(&received.message);
                    return Ok(Some(received));
                }
                Ok(None) => {
                    let link = self.shared.link.lock();
                    if let Some(poll) = &link.poll_fd {
                        // Quiet again, unless the connection changed (or queued note-offs) since.
                        if link.generation == generation && link.port.is_some() && link.releases.is_empty() {
                            poll.clear();
                        }
                    }
                    return Ok(None);
                }
                Err(e) => {
                    self.shared.dropped(generation, &e);
                }
            }
        }
    }

    /// With autoreset on, every connection sends a note-off for each note this port left
    /// sounding, then mido's reset set, when the port is closed (see
    /// [`SocketPort::set_autoreset`]).
    pub fn set_autoreset(&self, on: bool) {
        self.shared.autoreset.store(on, Ordering::Release);
        if let Some(port) = &self.shared.link.lock().port {
            port.set_autoreset(on);
        }
    }

    /// Ends the current connection as [`SocketPort::finish`] does (half-close, wait at most
    /// `timeout` for the server's close or refusal), then closes this port.
    pub fn finish(&self, timeout: Duration) -> Result<()> {
        let result = self.shared.current().and_then(|(port, _)| port.finish(timeout));
        self.close();
        result
    }

    /// What the current connection's parser has ignored or dropped (zeros while down; each
    /// connection counts from its start).
    pub fn parser_stats(&self) -> crate::parser::ParserStats {
        self.shared.link.lock().port.as_ref().map(|port| port.parser_stats()).unwrap_or_default()
    }

    /// The current connection's jitter buffer ([`ConnectOptions::jitter_buffer`], which every
    /// connection gets: each asks its server for stamps again), `None` while down or with the
    /// buffer off. Each connection starts a new estimate.
    pub fn playout_stats(&self) -> Option<crate::timing::PlayoutStats> {
        self.shared.link.lock().port.as_ref().and_then(|port| port.playout_stats())
    }

    /// When the next message held in the current connection's jitter buffer is due, as
    /// [`SocketPort::next_due_ns`] (`None` while down, with nothing held, or with the buffer off).
    pub fn next_due_ns(&self) -> Option<u64> {
        self.shared.link.lock().port.as_ref().and_then(|port| port.next_due_ns())
    }

    /// A file descriptor that is readable whenever [`ReconnectingPort::try_receive_stamped`] may
    /// have something, as [`SocketPort::poll_fd`]: bytes arrived, a held message fell due, or the
    /// connection's state changed (a drop, with its note-offs; an attempt; a new connection,
    /// which is watched from then on). The same number for the port's life, owned by the port.
    pub fn poll_fd(&self) -> Result<std::os::fd::RawFd> {
        let mut link = self.shared.link.lock();
        if let Some(poll) = &link.poll_fd {
            return Ok(poll.raw());
        }
        let poll = Arc::new(PollFd::with_signal().map_err(Error::Io)?);
        if let Some(port) = &link.port {
            port.attach_poll_fd(Arc::clone(&poll))?;
        }
        if !link.releases.is_empty() || link.port.is_none() {
            poll.signal();
        }
        let raw = poll.raw();
        link.poll_fd = Some(poll);
        Ok(raw)
    }

    /// What the current connection's stamp decoder skipped (zeros while down).
    pub fn decoder_stats(&self) -> crate::timing::DecoderStats {
        self.shared.link.lock().port.as_ref().map(|port| port.decoder_stats()).unwrap_or_default()
    }

    /// True once closed, or given up.
    pub fn is_closed(&self) -> bool {
        matches!(self.shared.link.lock().state, LinkState::Closed | LinkState::GaveUp { .. })
    }

    /// Closes the port: the current connection (autoreset first, if on), the reconnect thread,
    /// and every waiting receive (`Err(Error::Closed)`). Closing twice is harmless.
    pub fn close(&self) {
        let port = {
            let mut link = self.shared.link.lock();
            self.shared.closed.store(true, Ordering::Release);
            if !matches!(link.state, LinkState::Closed | LinkState::GaveUp { .. }) {
                link.set_state(LinkState::Closed);
            }
            link.port.take()
        };
        if let Some(port) = port {
            port.close();
        }
        self.shared.changed.notify_all();
    }
}

impl Shared {
    /// The live connection, or why there is none.
    fn current(&self) -> Result<(Arc<SocketPort>, u64)> {
        let link = self.link.lock();
        self.check_usable(&link)?;
        match &link.port {
            Some(port) => Ok((Arc::clone(port), link.generation)),
            None => Err(Error::Disconnected { reason: down_reason(&link) }),
        }
    }

    /// `Err` once the port is closed or has given up.
    fn check_usable(&self, link: &Link) -> Result<()> {
        match &link.state {
            LinkState::Closed => Err(Error::Closed),
            LinkState::GaveUp { attempts, reason } => {
                Err(Error::GaveUp { attempts: *attempts, reason: reason.clone() })
            }
            _ if self.closed.load(Ordering::Acquire) => Err(Error::Closed),
            _ => Ok(()),
        }
    }

    /// Connection `generation` failed with `error`: take it down (once), queue the note-offs,
    /// and wake the reconnect thread. Returns the reason, in words.
    fn dropped(&self, generation: u64, error: &Error) -> String {
        let reason = drop_reason(error);
        let port = {
            let mut link = self.link.lock();
            if link.generation != generation || link.port.is_none() || self.closed.load(Ordering::Acquire) {
                return reason;
            }
            let port = link.port.take();
            let refused = match error {
                Error::Refused { cause } => Some(cause.clone()),
                _ => None,
            };
            // A refusal, or a connection that barely lived, is one more failed attempt.
            if refused.is_some() || link.connected_at.elapsed() < STABLE_AFTER {
                link.failures = link.failures.saturating_add(1);
            } else {
                link.failures = 0;
            }
            link.last_failure = Some((reason.clone(), refused));
            let timestamp_ns = monotonic_ns();
            let Link { releases, .. } = &mut *link;
            self.received_held
                .lock()
                .release_all(|message| releases.push_back(Received::unstamped(message, timestamp_ns)));
            link.set_state(LinkState::Disconnected { reason: reason.clone() });
            port
        };
        self.changed.notify_all();
        if let Some(port) = port {
            // Wakes a receive blocked on the old connection; its bytes are gone anyway.
            port.close();
        }
        reason
    }

    /// The reconnect thread: waits for a drop, then attempts with backoff until connected,
    /// closed, or out of attempts; reports every state to the callback.
    fn run(self: Arc<Self>) {
        let mut link = self.link.lock();
        loop {
            link = self.report(link);
            if self.closed.load(Ordering::Acquire) || matches!(link.state, LinkState::GaveUp { .. }) {
                break;
            }
            if link.port.is_some() {
                self.changed.wait(&mut link);
                continue;
            }
            if let Some(max) = self.policy.max_attempts {
                if link.failures >= max {
                    let (attempts, reason) = (link.failures, down_reason(&link));
                    link.set_state(LinkState::GaveUp { attempts, reason });
                    self.changed.notify_all();
                    continue;
                }
            }
            let attempt = link.failures + 1;
            let unit = link.next_unit();
            let delay = self.policy.jittered(attempt, unit);
            link.set_state(LinkState::Reconnecting { attempt, delay });
            link = self.report(link);
            let start = Instant::now();
            while !self.closed.load(Ordering::Acquire) && start.elapsed() < delay {
                let left = delay.saturating_sub(start.elapsed());
                self.changed.wait_for(&mut link, left);
            }
            if self.closed.load(Ordering::Acquire) {
                continue;
            }
            drop(link);
            let attempted = connect_with(&self.address, &self.options);
            link = self.link.lock();
            match attempted {
                Ok(port) if !self.closed.load(Ordering::Acquire) => {
                    port.set_autoreset(self.autoreset.load(Ordering::Acquire));
                    if let Some(poll) = &link.poll_fd {
                        if let Err(e) = port.attach_poll_fd(Arc::clone(poll)) {
                            // Out of descriptors: the poller still wakes on each change of state.
                            eprintln!("midisock: cannot watch the new connection for the poller: {e}");
                        }
                    }
                    link.port = Some(Arc::new(port));
                    link.generation += 1;
                    link.connected_at = Instant::now();
                    link.set_state(LinkState::Connected);
                }
                Ok(port) => port.close(),
                Err(e) => {
                    let reason = drop_reason(&e);
                    link.failures = link.failures.saturating_add(1);
                    let refused = match e {
                        Error::Refused { cause } => Some(cause),
                        _ => None,
                    };
                    link.last_failure = Some((reason.clone(), refused));
                    link.set_state(LinkState::Disconnected { reason });
                }
            }
            self.changed.notify_all();
        }
        drop(self.report(link));
    }

    /// Hands unreported states to the callback, without holding the link lock while it runs.
    fn report<'a>(&'a self, mut link: MutexGuard<'a, Link>) -> MutexGuard<'a, Link> {
        while let Some(state) = link.unreported.pop_front() {
            drop(link);
            if let Some(callback) = self.callback.lock().as_mut() {
                callback(&state);
            }
            link = self.link.lock();
        }
        link
    }
}

/// Why the link is down, for [`Error::Disconnected`].
fn down_reason(link: &Link) -> String {
    match &link.last_failure {
        Some((reason, _)) => reason.clone(),
        None => "connection lost".into(),
    }
}

/// A failure in words.
fn drop_reason(error: &Error) -> String {
    match error {
        Error::Closed => "the server closed the connection".into(),
        other => other.to_string(),
    }
}

impl Drop for ReconnectingPort {
    fn drop(&mut self) {
        self.close();
        let handle = self.thread.lock().take();
        if let Some(handle) = handle {
            // Dropped from its own state callback: the thread ends by itself once it returns.
            if thread::current().id() != self.thread_id {
                let _ = handle.join();
            }
        }
    }
}

impl fmt::Debug for ReconnectingPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingPort").field("name", &self.shared.name).field("state", &self.state()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum() {
        let policy = Reconnect {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..Reconnect::default()
        };
        let delays: Vec<u128> = (1..=6).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_millis(1000));
        let zeros = Reconnect { initial_delay: Duration::ZERO, max_delay: Duration::ZERO, ..Reconnect::default() };
        assert_eq!(zeros.delay(5), Duration::from_millis(1), "never a busy loop");
    }

    #[test]
    fn jitter_only_shortens_and_stays_within_its_fraction() {
        let policy = Reconnect { jitter_percent: 50, ..Reconnect::default() };
        assert_eq!(policy.jittered(3, 0.0), policy.delay(3));
        assert_eq!(policy.jittered(3, 1.0), policy.delay(3) / 2);
        let none = Reconnect { jitter_percent: 0, ..Reconnect::default() };
        assert_eq!(none.jittered(2, 0.7), none.delay(2));
        let over = Reconnect { jitter_percent: 250, ..Reconnect::default() };
        assert_eq!(over.jittered(2, 1.0), Duration::ZERO);
    }
}
