//! A minimum over the most recent stretch of arrivals, in fixed memory.
//!
//! Arrival time is cut into buckets; each keeps the minimum of the samples that fell in it, and
//! the window is the last `BUCKETS` buckets that received samples. A bucket leaves the window
//! whole, so the minimum can rise in steps of one bucket's worth of drift.
//!
//! NOTE: the window counts buckets with samples, not wall time. After a silence or a stall the
//! estimate from before it still stands: a stall's backlog arrives late against it (and is
//! delivered at once) instead of becoming the new floor.

const BUCKETS: usize = 32;

#[derive(Clone, Debug)]
pub(crate) struct WindowedMin {
    bucket_ns: u64,
    /// The most recent buckets with samples: `(bucket number, minimum)`, oldest overwritten.
    slots: [Option<(u64, i64)>; BUCKETS],
    /// Where the newest bucket is.
    newest: usize,
}

impl WindowedMin {
    /// A window of about `window_ns` of arrivals (buckets of at least 1 µs).
    pub(crate) fn new(window_ns: u64) -> WindowedMin {
        WindowedMin { bucket_ns: (window_ns / BUCKETS as u64).max(1_000), slots: [None; BUCKETS], newest: 0 }
    }

    pub(crate) fn push(&mut self, at_ns: u64, value: i64) {
        let bucket = at_ns / self.bucket_ns;
        match &mut self.slots[self.newest] {
            Some((held, min)) if *held >= bucket => *min = (*min).min(value),
            _ => {
                if self.slots[self.newest].is_some() {
                    self.newest = (self.newest + 1) % BUCKETS;
                }
                self.slots[self.newest] = Some((bucket, value));
            }
        }
    }

    /// The minimum over the window.
    pub(crate) fn min(&self) -> Option<i64> {
        self.slots.iter().flatten().map(|(_, min)| *min).min()
    }

    /// The median of the buckets' minima (the lower one of the middle two): a floor that moves
    /// little when one bucket leaves, unlike the minimum, which jumps when its bucket goes.
    pub(crate) fn median_of_minima(&self) -> Option<i64> {
        let mut minima = [i64::MAX; BUCKETS];
        let mut count = 0;
        for (_, min) in self.slots.iter().flatten() {
            minima[count] = *min;
            count += 1;
        }
        let minima = &mut minima[..count];
        minima.sort_unstable();
        minima.get(count.saturating_sub(1) / 2).copied()
    }

    /// Forgets every sample and starts again from `value` at `at_ns`.
    pub(crate) fn restart(&mut self, at_ns: u64, value: i64) {
        self.slots = [None; BUCKETS];
        self.newest = 0;
        self.push(at_ns, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_follows_the_window_of_recent_buckets() {
        let mut window = WindowedMin::new(32_000_000); // 1 ms buckets
        assert_eq!(window.min(), None);
        window.push(0, 50);
        window.push(500_000, 40);
        window.push(3_000_000, 45);
        assert_eq!(window.min(), Some(40));
        for ms in 4..35 {
            window.push(ms * 1_000_000, 100);
        }
        assert_eq!(window.min(), Some(45), "31 later buckets: the first one left");
        window.push(35_000_000, 100);
        assert_eq!(window.min(), Some(100));
        // A long silence keeps the window as it was.
        window.push(1_000_000_000_000, 200);
        assert_eq!(window.min(), Some(100));
        window.restart(1_000_000_000_000, 70);
        assert_eq!(window.min(), Some(70));
    }
}
