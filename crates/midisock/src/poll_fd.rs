//! [`PollFd`]: one file descriptor a program that polls from its own loop can wait on, readable
//! when a non-blocking receive may have something for it.
//!
//! A poller (a patcher's scheduler, a game loop, an event loop that only takes file descriptors)
//! needs to wake for two things: bytes arriving, and a message held in a jitter buffer falling
//! due. The first is a socket becoming readable, the second a time. An `epoll` instance is itself
//! a pollable descriptor, readable while any descriptor in it is, so it joins the two: the
//! connection's socket (or a server's inbox signal) and a `timerfd` armed, to the nanosecond, at
//! the buffer's next deadline. The descriptor stays the same for the port's whole life, also
//! across a reconnecting port's connections (each new socket is added to it).
//!
//! Level-triggered: it stays readable until the cause is taken away, by receiving until nothing
//! is left (the socket drained, the due message handed over and the timer re-armed for the next
//! one).

use crate::clock::monotonic_ns;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct PollFd {
    epoll: OwnedFd,
    timer: OwnedFd,
    /// The server's "the inbox has messages" signal, when this is a server's.
    signal: Option<OwnedFd>,
    /// The deadline the timer is armed for (0: disarmed), to skip a system call per message
    /// when it does not change.
    armed: AtomicU64,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(rc: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a descriptor a system call just returned (checked), owned by nobody else.
    check(rc).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

impl PollFd {
    /// An epoll descriptor watching a disarmed playout timer.
    pub(crate) fn new() -> io::Result<PollFd> {
        // SAFETY: plain system calls; results are checked before use.
        let epoll = owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: as above.
        let timer =
            owned(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) })?;
        let poll = PollFd { epoll, timer, signal: None, armed: AtomicU64::new(0) };
        poll.watch(poll.timer.as_raw_fd())?;
        Ok(poll)
    }

    /// A server's: also watches an `eventfd` that [`PollFd::signal`] sets and [`PollFd::clear`]
    /// resets.
    pub(crate) fn with_signal() -> io::Result<PollFd> {
        let mut poll = PollFd::new()?;
        // SAFETY: plain system call; the result is checked before use.
        let signal = owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        poll.watch(signal.as_raw_fd())?;
        poll.signal = Some(signal);
        Ok(poll)
    }

    /// The descriptor to wait on (readable: receive).
    pub(crate) fn raw(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Adds `fd` (a connection's socket): readable when it is. A descriptor closed later leaves
    /// the set by itself.
    pub(crate) fn watch(&self, fd: RawFd) -> io::Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
        // SAFETY: `epoll` is ours, `event` a valid epoll_event; a bad `fd` is an error, not UB.
        match check(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Removes `fd` (a socket at its end of stream, readable for ever: only the timer matters
    /// from then on).
    pub(crate) fn unwatch(&self, fd: RawFd) {
        // SAFETY: `epoll` is ours; a descriptor not in the set is an error (ignored), not UB.
        let _ = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    /// Arms the timer for `deadline_ns` (`CLOCK_MONOTONIC`; one in the past fires at once) or
    /// disarms it (`None`). Either way an expiry not yet taken is forgotten, so the descriptor
    /// stops being readable for a deadline that was dealt with.
    pub(crate) fn arm(&self, deadline_ns: Option<u64>) {
        // A zero it_value disarms; an absolute deadline of 0 would too, so the earliest is 1 ns.
        let value = deadline_ns.map_or(0, |ns| ns.max(1));
        // Callers serialise their arming (under their port's lock), so plain loads are enough.
        let armed = self.armed.load(Ordering::Acquire);
        if armed == value {
            return;
        }
        // Both in the past: the timer has fired (or fires at once) either way, and stays readable
        // until re-armed. Skipping saves a system call per message handed over from a batch.
        if armed != 0 && value != 0 {
            let now = monotonic_ns();
            if armed <= now && value <= now {
                return;
            }
        }
        self.armed.store(value, Ordering::Release);
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: (value / 1_000_000_000) as libc::time_t,
                tv_nsec: (value % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: `timer` is a timerfd we own; `spec` is valid; the old value is not asked for.
        // It cannot fail for a valid timerfd and a normalised value.
        unsafe { libc::timerfd_settime(self.timer.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) };
    }

    /// Makes the descriptor readable (a server's inbox gained messages, or it closed).
    pub(crate) fn signal(&self) {
        if let Some(signal) = &self.signal {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a buffer of 8 to our eventfd; a full counter (EAGAIN)
            // is still readable, which is all that is wanted.
            let _ = unsafe { libc::write(signal.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Undoes [`PollFd::signal`] (the inbox is empty).
    pub(crate) fn clear(&self) {
        if let Some(signal) = &self.signal {
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into a buffer of 8; non-blocking, EAGAIN ignored.
            let _ = unsafe { libc::read(signal.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(poll: &PollFd, timeout_ms: i32) -> bool {
        let mut fds = libc::pollfd { fd: poll.raw(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut fds, 1, timeout_ms) > 0 }
    }

    #[test]
    fn readable_at_the_deadline_and_not_after_re_arming() {
        let poll = PollFd::new().unwrap();
        assert!(!readable(&poll, 0));
        let deadline = monotonic_ns() + 2_000_000;
        poll.arm(Some(deadline));
        assert!(readable(&poll, 10_000));
        assert!(monotonic_ns() >= deadline, "never before the deadline");
        // Dealt with: re-armed for later, or disarmed, it is quiet again.
        poll.arm(Some(monotonic_ns() + 60_000_000_000));
        assert!(!readable(&poll, 0));
        poll.arm(Some(1));
        assert!(readable(&poll, 10_000));
        poll.arm(None);
        assert!(!readable(&poll, 0));
    }

    #[test]
    fn a_watched_socket_and_the_signal_make_it_readable() {
        let poll = PollFd::with_signal().unwrap();
        poll.signal();
        assert!(readable(&poll, 10_000));
        poll.clear();
        assert!(!readable(&poll, 0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        poll.watch(server.as_raw_fd()).unwrap();
        poll.watch(server.as_raw_fd()).unwrap(); // twice is harmless
        assert!(!readable(&poll, 0));
        std::io::Write::write_all(&mut client, &[0xF8]).unwrap();
        assert!(readable(&poll, 10_000));
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut &server, &mut byte).unwrap();
        assert!(!readable(&poll, 0));
    }
}
