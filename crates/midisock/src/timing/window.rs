//! A minimum over a sliding time window, in fixed memory.
//!
//! The window is cut into `BUCKETS` buckets of arrival time; each keeps the minimum of the samples
//! that fell in it, and the window's minimum is the minimum over the buckets still inside it. A
//! bucket leaves the window whole, so the minimum can rise in steps of one bucket's worth of drift.

const BUCKETS: usize = 8;

#[derive(Clone, Debug)]
pub(crate) struct WindowedMin {
    bucket_ns: u64,
    /// Per slot: the bucket number it holds and that bucket's minimum.
    slots: [Option<(u64, i64)>; BUCKETS],
}

impl WindowedMin {
    /// A window of about `window_ns` (at least one bucket of 1 µs).
    pub(crate) fn new(window_ns: u64) -> WindowedMin {
        WindowedMin { bucket_ns: (window_ns / BUCKETS as u64).max(1_000), slots: [None; BUCKETS] }
    }

    pub(crate) fn push(&mut self, at_ns: u64, value: i64) {
        let bucket = at_ns / self.bucket_ns;
        let slot = &mut self.slots[(bucket % BUCKETS as u64) as usize];
        match slot {
            Some((held, min)) if *held == bucket => *min = (*min).min(value),
            _ => *slot = Some((bucket, value)),
        }
    }

    /// The minimum of the samples pushed within the window ending at `now_ns`.
    pub(crate) fn min(&self, now_ns: u64) -> Option<i64> {
        let newest = now_ns / self.bucket_ns;
        self.slots
            .iter()
            .flatten()
            .filter(|(bucket, _)| *bucket <= newest && newest - *bucket < BUCKETS as u64)
            .map(|(_, min)| *min)
            .min()
    }

    /// Forgets every sample and starts again from `value` at `at_ns`.
    pub(crate) fn restart(&mut self, at_ns: u64, value: i64) {
        self.slots = [None; BUCKETS];
        self.push(at_ns, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_follows_the_window() {
        let mut window = WindowedMin::new(8_000_000); // 1 ms buckets
        assert_eq!(window.min(0), None);
        window.push(0, 50);
        window.push(500_000, 40);
        window.push(3_000_000, 45);
        assert_eq!(window.min(3_000_000), Some(40));
        assert_eq!(window.min(8_999_999), Some(45), "the first bucket left the window");
        assert_eq!(window.min(11_000_000), None);
        window.push(11_000_000, 60);
        assert_eq!(window.min(11_000_000), Some(60));
        window.restart(11_000_000, 70);
        assert_eq!(window.min(11_000_000), Some(70));
    }
}
