//! [`Doorbell`]: wakes the threads waiting for shared state to change, as a condition variable
//! does, except that a wait can give up when a signal handler runs on its thread (see
//! [`crate::Error::Interrupted`]).
//!
//! A condition variable cannot: `parking_lot`'s and std's wait again after `EINTR`, so a thread
//! blocked in one never sees the signal. This is an event count on a Linux futex. A waiter takes
//! a ticket (the count of rings so far) while it holds the lock guarding the state it looked at,
//! releases the lock, and sleeps while the count still equals its ticket; whoever changes that
//! state rings (bumps the count, wakes the sleepers) under the same lock. A ring between taking
//! the ticket and going to sleep changes the count, and the kernel compares the count with the
//! ticket as it puts the thread to sleep, so no ring is missed.

use crate::net::OnSignal;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Default)]
pub(crate) struct Doorbell {
    /// Rings so far (wrapping): the futex word.
    rings: AtomicU32,
    /// Threads in [`Doorbell::wait`], so a ring with nobody waiting costs no syscall.
    sleepers: AtomicU32,
}

/// Why [`Doorbell::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The bell rang since the ticket was taken (or the wake was spurious): look at the state.
    Rang,
    /// The deadline passed.
    TimedOut,
    /// A signal handler ran, and the wait was asked to give up then ([`OnSignal::Return`]).
    Interrupted,
}

impl Doorbell {
    /// The ticket for a wait: take it with the state's lock held, before releasing it.
    pub(crate) fn ticket(&self) -> u32 {
        self.rings.load(Ordering::SeqCst)
    }

    /// Wakes every waiter; call it with the state's lock held, after changing the state.
    pub(crate) fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        // NOTE: SeqCst on both sides: a waiter counts itself in `sleepers` before the kernel
        // reads `rings`, and a ringer bumps `rings` before reading `sleepers`, so either the
        // ringer sees the sleeper or the sleeper's kernel sees the new count.
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            // SAFETY: FUTEX_WAKE on a live, aligned u32 we own; the other arguments are unused.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.rings.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    i32::MAX,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<u32>(),
                    0u32,
                );
            }
        }
    }

    /// Sleeps until the bell rings after `ticket` was taken, the monotonic clock
    /// ([`crate::monotonic_ns`]) reaches `deadline_ns` (`None`: no deadline), or — with
    /// [`OnSignal::Return`] — a signal handler runs. Returns at once if it rang already.
    pub(crate) fn wait(&self, ticket: u32, deadline_ns: Option<u64>, on_signal: OnSignal) -> Woken {
        let deadline = deadline_ns.map(|ns| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        });
        let deadline_ptr = deadline.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let woken = loop {
            // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (plain FUTEX_WAIT a
            // relative one), so a wait resumed after a signal keeps its deadline.
            // SAFETY: `rings` is a live, aligned u32; `deadline_ptr` is null or points to a
            // timespec that outlives the call; the bitset matches any waker.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.rings.as_ptr(),
                    libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
                    ticket,
                    deadline_ptr,
                    std::ptr::null::<u32>(),
                    libc::FUTEX_BITSET_MATCH_ANY,
                )
            };
            if rc == 0 {
                break Woken::Rang;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                // The count moved on before the kernel put us to sleep.
                Some(libc::EAGAIN) => break Woken::Rang,
                Some(libc::ETIMEDOUT) => break Woken::TimedOut,
                Some(libc::EINTR) if on_signal == OnSignal::Return => break Woken::Interrupted,
                Some(libc::EINTR) => continue,
                // Nothing else can fail with these arguments; look at the state again rather
                // than spin or hang.
                _ => break Woken::Rang,
            }
        };
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::monotonic_ns;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_ring_after_the_ticket_is_never_missed_and_deadlines_end_waits() {
        let bell = Doorbell::default();
        let ticket = bell.ticket();
        bell.ring();
        assert_eq!(bell.wait(ticket, None, OnSignal::Resume), Woken::Rang, "rang before the wait");
        let deadline = monotonic_ns() + 2_000_000;
        assert_eq!(bell.wait(bell.ticket(), Some(deadline), OnSignal::Resume), Woken::TimedOut);
        assert!(monotonic_ns() >= deadline);
        assert_eq!(bell.wait(bell.ticket(), Some(0), OnSignal::Resume), Woken::TimedOut, "a past deadline");
    }

    #[test]
    fn a_ring_wakes_every_sleeper() {
        let bell = Arc::new(Doorbell::default());
        let ticket = bell.ticket();
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let bell = Arc::clone(&bell);
                std::thread::spawn(move || bell.wait(ticket, None, OnSignal::Resume))
            })
            .collect();
        // Ring once all three sleep (or ring anyway after a while: a late sleeper returns at once).
        let give_up = monotonic_ns() + 10_000_000_000;
        while bell.sleepers.load(Ordering::SeqCst) < 3 && monotonic_ns() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        bell.ring();
        for sleeper in sleepers {
            assert_eq!(sleeper.join().unwrap(), Woken::Rang);
        }
    }
}
