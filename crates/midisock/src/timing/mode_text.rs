//! The one text form of a jitter-buffer setting, shared by every front end that takes text
//! (the CLI's `--jitter-buffer`, Python's `jitter_buffer=`, Pd's `jitter_buffer` message), so
//! they accept and refuse exactly the same things.
//!
//! - `auto` (any case): [`DelayMode::adaptive`] with its defaults;
//! - a decimal number of milliseconds, `0` to `10000` (`12`, `12.5`): a fixed delay;
//! - anything else: [`ParseDelayModeError`], whose message names the accepted forms.

use super::playout::DelayMode;
use std::fmt;
use std::str::FromStr;

/// The longest fixed delay the text form accepts, in milliseconds.
pub const MAX_FIXED_DELAY_MS: f64 = 10_000.0;

/// A jitter-buffer setting that is neither `auto` nor a delay in range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDelayModeError {
    text: String,
}

impl fmt::Display for ParseDelayModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid jitter buffer {:?}: expected a delay in milliseconds from 0 to {} (e.g. 15 or 12.5) or \"auto\"",
            self.text, MAX_FIXED_DELAY_MS
        )
    }
}

impl std::error::Error for ParseDelayModeError {}

impl FromStr for DelayMode {
    type Err = ParseDelayModeError;

    fn from_str(text: &str) -> Result<DelayMode, ParseDelayModeError> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("auto") {
            return Ok(DelayMode::adaptive());
        }
        let error = || ParseDelayModeError { text: text.to_string() };
        // Digits and at most one point only: f64's parser would also take "inf", "NaN", "1e3".
        let digits_and_point = !trimmed.is_empty()
            && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.')
            && trimmed.chars().filter(|&c| c == '.').count() <= 1
            && trimmed.chars().any(|c| c.is_ascii_digit());
        if !digits_and_point {
            return Err(error());
        }
        let ms: f64 = trimmed.parse().map_err(|_| error())?;
        if !(0.0..=MAX_FIXED_DELAY_MS).contains(&ms) {
            return Err(error());
        }
        Ok(DelayMode::fixed((ms * 1e6).round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_adaptive_with_defaults() {
        assert_eq!("auto".parse::<DelayMode>(), Ok(DelayMode::adaptive()));
        assert_eq!(" AUTO ".parse::<DelayMode>(), Ok(DelayMode::adaptive()));
    }

    #[test]
    fn milliseconds_are_a_fixed_delay() {
        assert_eq!("15".parse::<DelayMode>(), Ok(DelayMode::fixed(15_000_000)));
        assert_eq!("12.5".parse::<DelayMode>(), Ok(DelayMode::fixed(12_500_000)));
        assert_eq!("0".parse::<DelayMode>(), Ok(DelayMode::fixed(0)));
        assert_eq!("10000".parse::<DelayMode>(), Ok(DelayMode::fixed(10_000_000_000)));
        assert_eq!(".5".parse::<DelayMode>(), Ok(DelayMode::fixed(500_000)));
    }

    #[test]
    fn everything_else_is_refused_with_the_accepted_forms() {
        for text in ["", " ", ".", "-1", "10000.5", "1e3", "inf", "NaN", "15ms", "1.2.3", "aut", "+5"] {
            let error = text.parse::<DelayMode>().expect_err(text);
            let shown = error.to_string();
            assert!(shown.contains("milliseconds") && shown.contains("\"auto\""), "{text}: {shown}");
        }
    }
}
