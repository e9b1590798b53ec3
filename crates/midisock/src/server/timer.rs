//! [`PlayoutTimer`]: wakes the I/O thread at a playout deadline, to the nanosecond.
//!
//! mio's poll timeout is in milliseconds (rounded up), so a message due 0.2 ms from now would
//! come out up to 1 ms late. A `timerfd` armed with an absolute `CLOCK_MONOTONIC` deadline and
//! registered with the poll like any socket wakes the thread when the deadline passes (within
//! the kernel's timer slack, 50 µs for an ordinary thread), whatever else the poll waits for.

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(crate) struct PlayoutTimer {
    fd: OwnedFd,
    /// The deadline the timer is armed for (`CLOCK_MONOTONIC` ns), to skip re-arming it unchanged.
    armed: Option<u64>,
}

impl PlayoutTimer {
    /// A disarmed timer, registered with `registry` under `token`.
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<PlayoutTimer> {
        // SAFETY: plain system call; the result is checked before use.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        SourceFd(&fd.as_raw_fd()).register(registry, token, Interest::READABLE)?;
        Ok(PlayoutTimer { fd, armed: None })
    }

    /// Arms the timer for `deadline_ns` (`CLOCK_MONOTONIC`; one in the past fires at once), or
    /// disarms it (`None`).
    pub(crate) fn set(&mut self, deadline_ns: Option<u64>) -> io::Result<()> {
        if self.armed == deadline_ns {
            return Ok(());
        }
        // A zero it_value disarms; an absolute deadline of 0 would too, so the earliest is 1 ns.
        let value = deadline_ns.map_or(0, |ns| ns.max(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: (value / 1_000_000_000) as libc::time_t,
                tv_nsec: (value % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `fd` is a timerfd we own; `spec` is a valid itimerspec; the old value is not asked for.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            self.armed = None;
            return Err(io::Error::last_os_error());
        }
        self.armed = deadline_ns;
        Ok(())
    }

    /// Acknowledges an expiry (the descriptor is readable until read), so the next one wakes the
    /// poll again. The timer is then disarmed until the next `set`.
    pub(crate) fn acknowledge(&mut self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a buffer of 8; non-blocking, errors (EAGAIN) ignored.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), expirations.as_mut_ptr().cast(), expirations.len()) };
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::monotonic_ns;
    use mio::{Events, Poll};
    use std::time::Duration;

    #[test]
    fn wakes_the_poll_at_the_deadline_not_a_millisecond_later() {
        let mut poll = Poll::new().unwrap();
        let mut timer = PlayoutTimer::new(poll.registry(), Token(7)).unwrap();
        let mut events = Events::with_capacity(4);
        let deadline = monotonic_ns() + 300_000;
        timer.set(Some(deadline)).unwrap();
        let woke = loop {
            poll.poll(&mut events, Some(Duration::from_secs(10))).unwrap();
            if events.iter().any(|e| e.token() == Token(7)) {
                break monotonic_ns();
            }
        };
        timer.acknowledge();
        // Never early; how late depends on the machine's load, so only the order is asserted.
        assert!(woke >= deadline, "woke {} ns before the deadline", deadline - woke);
        // Disarmed: a poll with a short timeout sees nothing.
        poll.poll(&mut events, Some(Duration::from_millis(20))).unwrap();
        assert!(events.is_empty());
        // A deadline in the past fires at once.
        timer.set(Some(1)).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(10))).unwrap();
        assert!(events.iter().any(|e| e.token() == Token(7)));
    }
}
