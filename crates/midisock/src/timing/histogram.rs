//! Counts of microsecond values in log-linear bins (32 per octave, about 3 % wide), for quantiles
//! in fixed memory.

/// Bins per octave; values below this are counted exactly.
const SUB: u64 = 32;
const SUB_BITS: u32 = 5;
/// Values are clamped to 2^32 µs (71 minutes).
const MAX_BITS: u32 = 32;
pub(crate) const BINS: usize = (SUB + (MAX_BITS - SUB_BITS) as u64 * SUB) as usize;

#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Box<[u32; BINS]>,
    total: u64,
}

pub(crate) fn bin_of(us: u64) -> usize {
    let us = us.min((1 << MAX_BITS) - 1);
    if us < SUB {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() - SUB_BITS; // 0 for 32..63
    let sub = (us >> octave) - SUB;
    (SUB + u64::from(octave) * SUB + sub) as usize
}

/// The largest value counted in `bin`.
pub(crate) fn upper_edge(bin: usize) -> u64 {
    let bin = bin as u64;
    if bin < SUB {
        return bin;
    }
    let octave = (bin - SUB) / SUB;
    let sub = (bin - SUB) % SUB;
    ((SUB + sub) << octave) + (1 << octave) - 1
}

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram { counts: Box::new([0; BINS]), total: 0 }
    }

    pub(crate) fn record(&mut self, us: u64) {
        let count = &mut self.counts[bin_of(us)];
        *count = count.saturating_add(1);
        self.total += 1;
    }

    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Adds to `cumulative[b]` the count of values in bins `0..=b` (counts at or below a value: `cumulative[bin_of(value)]`).
    /// Counts are `u32` like the bins (saturating): a playout buffer's epoch holds a few
    /// thousand observations, and the narrower table halves the 35 KiB it would take.
    pub(crate) fn add_cumulative(&self, cumulative: &mut [u32; BINS]) {
        let mut seen = 0u32;
        for (bin, total) in cumulative.iter_mut().enumerate() {
            seen = seen.saturating_add(self.counts[bin]);
            *total = total.saturating_add(seen);
        }
    }

    /// The `q` quantile (nearest rank, rounded up to its bin's upper edge) of the values in all
    /// of `histograms` together; `None` when they are all empty.
    pub(crate) fn quantile_of(histograms: &[Histogram], q: f64) -> Option<u64> {
        let total: u64 = histograms.iter().map(|h| h.total).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for bin in 0..BINS {
            seen += histograms.iter().map(|h| u64::from(h.counts[bin])).sum::<u64>();
            if seen >= rank {
                return Some(upper_edge(bin));
            }
        }
        Some(upper_edge(BINS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_value_lies_in_its_bin(us in 0u64..(1 << 33)) {
            let bin = bin_of(us);
            prop_assert!(bin < BINS);
            let clamped = us.min((1 << MAX_BITS) - 1);
            prop_assert!(clamped <= upper_edge(bin));
            prop_assert!(bin == 0 || clamped > upper_edge(bin - 1));
            prop_assert!(upper_edge(bin) - clamped <= clamped / 32 + 1, "bins are about 3 % wide");
        }
    }

    #[test]
    fn quantiles_read_off_every_histogram() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        assert_eq!(Histogram::quantile_of(&[a.clone(), b.clone()], 0.5), None);
        for us in 1..=500 {
            a.record(us);
        }
        for us in 501..=1000 {
            b.record(us);
        }
        let both = [a.clone(), b, Histogram::new()];
        let p50 = Histogram::quantile_of(&both, 0.5).unwrap();
        assert!((500..=515).contains(&p50), "{p50}");
        let p999 = Histogram::quantile_of(&both, 0.999).unwrap();
        assert!((999..=1023).contains(&p999), "{p999}");
        assert_eq!(Histogram::quantile_of(&[a], 1.0), Some(503), "500 lies in the bin 496..=503");
    }
}
