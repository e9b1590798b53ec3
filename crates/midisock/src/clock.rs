//! The receive timestamp clock.

/// `CLOCK_MONOTONIC` in nanoseconds: the clock every receive timestamp uses.
///
/// NOTE: this is the raw system clock rather than an `Instant` relative to some process epoch, so
/// C programs (`clock_gettime(CLOCK_MONOTONIC)`) and other processes on the machine can compare
/// their own readings with our timestamps.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on every supported OS.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}
