//! `--jitter-buffer` and `--stats` on the receiving commands (`serve`, `connect`): the core's
//! playout buffer turned on, and its state printed as one line per buffer on SIGUSR1 and when the
//! command ends. The sending side needs nothing: it stamps when its peer asks.

use crate::commands::{Failure, FAILED};
use crate::log;
use midisock::timing::{DelayMode, PlayoutStats};
use signal_hook::consts::SIGUSR1;
use signal_hook::iterator::Signals;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct TimingOptions {
    /// Play received messages out with their sender's timing, a fixed delay (MS) or `auto`
    /// after they were sent (--help: details).
    #[arg(long, value_name = "MS|auto", long_help = jitter_buffer_help())]
    pub jitter_buffer: Option<DelayMode>,
    /// With --jitter-buffer: print the playout state (clock offset, network jitter, delay in
    /// force, late and dropped messages) on stderr on SIGUSR1 and when the command ends.
    #[arg(long, requires = "jitter_buffer")]
    pub stats: bool,
}

/// --jitter-buffer's long help, with the core's limits (so it cannot drift from them).
fn jitter_buffer_help() -> String {
    let DelayMode::Adaptive { late_fraction, min_ns, max_ns, .. } = DelayMode::adaptive() else {
        unreachable!("DelayMode::adaptive is adaptive")
    };
    format!(
        "Play received messages out with their sender's timing: each at its send time plus a delay. MS: a \
         fixed delay in milliseconds, 0 to {} (e.g. 15 or 12.5); `auto`: the smallest delay from {} to {} ms \
         that keeps all but {} % of messages on time, following the network. Needs a midisock sender (it \
         stamps its messages when asked); messages from mido and other peers play on arrival as before. See \
         docs/timing.md.",
        midisock::timing::MAX_FIXED_DELAY_MS,
        min_ns / 1_000_000,
        max_ns / 1_000_000,
        late_fraction * 100.0,
    )
}

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

fn ms_or_none(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_string(), ms)
}

/// One buffer's state in one line; `who` says whose messages it plays.
pub fn playout_line(who: &str, stats: &PlayoutStats) -> String {
    let offset = stats.offset_ns.map_or_else(|| "-".to_string(), |ns| format!("{:.3} ms", ns as f64 / 1e6));
    format!(
        "playout {who}: offset {offset}, jitter p50 {} p99.9 {}, delay {}, delivered {}/{}, late {}, \
         stale notes dropped {}",
        ms_or_none(stats.jitter_p50_ns),
        ms_or_none(stats.jitter_p999_ns),
        ms(stats.delay_ns),
        stats.delivered,
        stats.pushed,
        stats.late,
        stats.stale_notes_dropped,
    )
}

/// Prints `lines` (or what their absence means) as `--stats` output: always, even with `-q`,
/// since the user asked for it.
pub fn print_report(lines: Vec<String>, none: &str) {
    if lines.is_empty() {
        log::report(format_args!("playout: {none}"));
    }
    for line in lines {
        log::report(format_args!("{line}"));
    }
}

impl TimingOptions {
    /// With --stats: `report` runs on each SIGUSR1 from now on, and is returned for the report at
    /// exit. Without: None, and nothing is set up.
    pub fn start_stats<F: Fn() + Clone + Send + 'static>(
        &self,
        report: impl FnOnce() -> F,
    ) -> Result<Option<F>, Failure> {
        if !self.stats {
            return Ok(None);
        }
        let report = report();
        on_stats_request(report.clone())?;
        Ok(Some(report))
    }
}

/// Calls `report` on its own thread each time SIGUSR1 arrives, for as long as the process runs.
fn on_stats_request(report: impl Fn() + Send + 'static) -> Result<(), Failure> {
    let mut signals = Signals::new([SIGUSR1])
        .map_err(|e| Failure { message: format!("cannot handle SIGUSR1: {e}"), exit_code: FAILED })?;
    std::thread::Builder::new()
        .name("stats".into())
        .spawn(move || {
            for _ in signals.forever() {
                report();
            }
        })
        .map(|_| ())
        .map_err(|e| Failure { message: format!("cannot start the stats thread: {e}"), exit_code: FAILED })
}
