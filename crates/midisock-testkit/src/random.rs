//! Reproducible random delays.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same delays on every
/// machine, which is all a test link needs (nothing here is security-relevant).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The delay each chunk is held for, before the in-order rule (a chunk never leaves before the
/// one ahead of it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DelayDistribution {
    /// Always the same.
    Fixed(Duration),
    /// Uniform in `centre ± spread`: "20±10ms" is 10 to 30 ms, every value as likely.
    Uniform { centre: Duration, spread: Duration },
    /// Normal with `mean` and standard deviation `sd`, cut at 0: "20~5ms".
    Normal { mean: Duration, sd: Duration },
}

impl DelayDistribution {
    /// One delay.
    pub fn sample(&self, rng: &mut SplitMix64) -> Duration {
        match *self {
            DelayDistribution::Fixed(delay) => delay,
            DelayDistribution::Uniform { centre, spread } => {
                let low = centre.saturating_sub(spread);
                let width = (centre + spread).saturating_sub(low);
                low + width.mul_f64(rng.next_f64())
            }
            DelayDistribution::Normal { mean, sd } => {
                // Box–Muller.
                let (u1, u2) = (1.0 - rng.next_f64(), rng.next_f64());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                Duration::from_secs_f64((mean.as_secs_f64() + z * sd.as_secs_f64()).max(0.0))
            }
        }
    }

    /// The smallest delay it can draw.
    pub fn min(&self) -> Duration {
        match *self {
            DelayDistribution::Fixed(delay) => delay,
            DelayDistribution::Uniform { centre, spread } => centre.saturating_sub(spread),
            DelayDistribution::Normal { .. } => Duration::ZERO,
        }
    }
}

impl fmt::Display for DelayDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        match *self {
            DelayDistribution::Fixed(d) => write!(f, "{}ms", ms(d)),
            DelayDistribution::Uniform { centre, spread } => write!(f, "{}±{}ms", ms(centre), ms(spread)),
            DelayDistribution::Normal { mean, sd } => write!(f, "{}~{}ms", ms(mean), ms(sd)),
        }
    }
}

/// Text that is not a delay distribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDelayError(String);

impl fmt::Display for ParseDelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a delay: write 5ms, 20±10ms (or 20+-10ms: uniform) or 20~5ms (normal, sd 5)", self.0)
    }
}

impl std::error::Error for ParseDelayError {}

/// Longest delay accepted: a test link, not a satellite.
const MAX_DELAY_MS: f64 = 60_000.0;

impl FromStr for DelayDistribution {
    type Err = ParseDelayError;

    /// `5ms`, `20±10ms`, `20+-10ms`, `20~5ms`; the unit `ms` is optional.
    fn from_str(text: &str) -> Result<DelayDistribution, ParseDelayError> {
        let error = || ParseDelayError(text.to_owned());
        let body = text.trim().strip_suffix("ms").unwrap_or(text.trim());
        let number = |s: &str| -> Result<Duration, ParseDelayError> {
            let value: f64 = s.trim().parse().map_err(|_| error())?;
            if !(0.0..=MAX_DELAY_MS).contains(&value) {
                return Err(error());
            }
            Ok(Duration::from_secs_f64(value / 1e3))
        };
        if let Some((a, b)) = body.split_once('±').or_else(|| body.split_once("+-")) {
            return Ok(DelayDistribution::Uniform { centre: number(a)?, spread: number(b)? });
        }
        if let Some((a, b)) = body.split_once('~') {
            return Ok(DelayDistribution::Normal { mean: number(a)?, sd: number(b)? });
        }
        Ok(DelayDistribution::Fixed(number(body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_and_print() {
        let ms = Duration::from_millis;
        assert_eq!("20±10ms".parse(), Ok(DelayDistribution::Uniform { centre: ms(20), spread: ms(10) }));
        assert_eq!("20+-10".parse(), Ok(DelayDistribution::Uniform { centre: ms(20), spread: ms(10) }));
        assert_eq!("5ms".parse(), Ok(DelayDistribution::Fixed(ms(5))));
        assert_eq!("20~5ms".parse(), Ok(DelayDistribution::Normal { mean: ms(20), sd: ms(5) }));
        for bad in ["", "ms", "fast", "-5ms", "20±", "1e9", "NaN", "20±10s"] {
            assert!(bad.parse::<DelayDistribution>().is_err(), "{bad}");
        }
        assert_eq!(DelayDistribution::Uniform { centre: ms(20), spread: ms(10) }.to_string(), "20±10ms");
    }

    #[test]
    fn uniform_delays_stay_in_range_and_average_the_centre() {
        let d = DelayDistribution::Uniform { centre: Duration::from_millis(5), spread: Duration::from_millis(3) };
        let mut rng = SplitMix64::new(1);
        let samples: Vec<f64> = (0..100_000).map(|_| d.sample(&mut rng).as_secs_f64() * 1e3).collect();
        assert!(samples.iter().all(|&s| (2.0..=8.0).contains(&s)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 5.0).abs() < 0.05, "{mean}");
    }

    #[test]
    fn normal_delays_have_their_mean_and_spread() {
        let d = DelayDistribution::Normal { mean: Duration::from_millis(20), sd: Duration::from_millis(2) };
        let mut rng = SplitMix64::new(2);
        let samples: Vec<f64> = (0..100_000).map(|_| d.sample(&mut rng).as_secs_f64() * 1e3).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let sd = (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
        assert!((mean - 20.0).abs() < 0.05 && (sd - 2.0).abs() < 0.05, "{mean} {sd}");
    }
}
