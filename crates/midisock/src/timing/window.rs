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
    /// The median of minima when the newest bucket started, and the drift of that median per
    /// bucket (a running average of the steps, see `DRIFT_SMOOTHING`), in ns.
    last_median: Option<i64>,
    drift_per_bucket: f64,
    drift_steps: u32,
}

/// How long the drift estimate averages: each step of the median moves it by 1/n of the
/// difference, n growing with the steps seen from `DRIFT_START` to `DRIFT_SMOOTHING` (256 ×
/// 0.25 s = 64 s by default). The steps of the median telescope, so a long average is nearly
/// the median's change over the stretch divided by its length, and its noise falls with the
/// length: on a 20 ± 10 ms link the floor wanders by ±0.5 ms, which over 16 s read as ±20 ppm of
/// drift that was not there, and moved the schedule with it. Clock drift changes over minutes,
/// so a minute's average follows it. The first `DRIFT_START` steps weigh 1/64 each against a
/// start of no drift (a single step can read hundreds of ppm).
const DRIFT_SMOOTHING: u32 = 256;
const DRIFT_START: u32 = 64;
/// The largest drift between two clocks the estimate follows (millionths).
const MAX_DRIFT_PPM: f64 = 500.0;

impl WindowedMin {
    /// A window of about `window_ns` of arrivals (buckets of at least 1 µs).
    pub(crate) fn new(window_ns: u64) -> WindowedMin {
        WindowedMin {
            bucket_ns: (window_ns / BUCKETS as u64).max(1_000),
            slots: [None; BUCKETS],
            newest: 0,
            last_median: None,
            drift_per_bucket: 0.0,
            drift_steps: 0,
        }
    }

    pub(crate) fn push(&mut self, at_ns: u64, value: i64) {
        let bucket = at_ns / self.bucket_ns;
        match &mut self.slots[self.newest] {
            Some((held, min)) if *held >= bucket => *min = (*min).min(value),
            _ => {
                if self.slots[self.newest].is_some() {
                    self.track_drift(bucket);
                    self.newest = (self.newest + 1) % BUCKETS;
                }
                self.slots[self.newest] = Some((bucket, value));
            }
        }
    }

    /// How many buckets hold samples (at most `BUCKETS`).
    pub(crate) fn buckets(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The minimum over the window.
    #[cfg(test)]
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

    /// A bucket is complete: how far did the median move since the previous one?
    fn track_drift(&mut self, next_bucket: u64) {
        let Some(median) = self.median_of_minima() else { return };
        let full = self.slots.iter().all(Option::is_some);
        if let (Some(last), true) = (self.last_median, full) {
            // Per bucket of arrival time; a silence (buckets skipped) spreads the step out.
            let newest = self.slots[self.newest].map_or(next_bucket, |(b, _)| b);
            let buckets = (next_bucket - newest).max(1) as f64;
            let limit = MAX_DRIFT_PPM * 1e-6 * self.bucket_ns as f64;
            let step = ((median - last) as f64 / buckets).clamp(-limit, limit);
            self.drift_steps = (self.drift_steps + 1).min(DRIFT_SMOOTHING);
            self.drift_per_bucket += (step - self.drift_per_bucket) / f64::from(self.drift_steps.max(DRIFT_START));
        }
        self.last_median = Some(median);
    }

    /// The floor now: the median of the buckets' minima, which describes the middle of the
    /// window, moved forward half a window by the drift seen lately.
    pub(crate) fn floor(&self) -> Option<i64> {
        let median = self.median_of_minima()?;
        Some(median + (self.drift_per_bucket * (BUCKETS / 2) as f64) as i64)
    }

    /// The drift the floor is following, in ns per ns of arrival time.
    pub(crate) fn drift_rate(&self) -> f64 {
        self.drift_per_bucket / self.bucket_ns as f64
    }

    /// Forgets every sample and starts again from `value` at `at_ns`.
    pub(crate) fn restart(&mut self, at_ns: u64, value: i64) {
        self.slots = [None; BUCKETS];
        self.newest = 0;
        self.last_median = None;
        self.drift_per_bucket = 0.0;
        self.drift_steps = 0;
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
