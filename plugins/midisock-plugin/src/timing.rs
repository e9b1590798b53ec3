//! # Timing policy: mapping the plugin's sample clock to wall time and back
//!
//! The audio thread may not read a clock (that could be a system call), so it stamps everything
//! with its own running sample counter: the first sample of each block, and each event's
//! absolute sample (block start + offset). It tells the network thread about every block
//! ([`crate::event::ToNetwork::Block`]). The network thread owns the wall clock
//! (`CLOCK_MONOTONIC`, [`midisock::monotonic_ns`]) and keeps one *anchor* — a sample and the
//! wall time it is taken to have happened — in a [`SampleClock`]:
//!
//! - **Track → network.** A block's start is anchored to the moment the network thread first
//!   sees the block. Each event is then sent at `block start + offset / sample rate`, so the
//!   spacing of events inside a block survives; they do not leave all at once. Later blocks keep
//!   the same anchor (`anchor + samples / rate`), so the pick-up lag of the network thread does
//!   not move them. The anchor follows the *earliest* pick-ups: a block seen earlier than
//!   predicted moves it earlier at once (a pick-up is never early, so the anchor was taken
//!   late), while lateness moves it later only when every pick-up of a window of
//!   [`LATE_WINDOW_BLOCKS`] blocks was more than [`LATE_TOLERANCE_NS`] late (a host stall, or a
//!   sample clock slower than the wall clock) — one late pick-up under CPU load moves nothing.
//!   It restarts at once after a jump: a pick-up [`STALL_NS`] late or [`EARLY_TOLERANCE_NS`]
//!   early, a transport restart, offline rendering, a sample-rate change.
//! - **Network → track.** A message arriving at wall time `t` is due at sample
//!   `anchor + (t − anchor time) × rate + one block`: it lands in the next block, at the offset
//!   matching its arrival inside a block-long window. Messages whose sample has already passed
//!   go at offset 0 of the next block; the audio thread never holds a message for more than a few
//!   blocks ([`MAX_HOLD_BLOCKS`]).
//!
//! ## Latency this adds
//! - Track → network: the time until the network thread picks the block up (it polls the ring
//!   at least every [`crate::network::POLL_INTERVAL`], 1 ms) plus the event's offset in its block.
//!   The offset is not extra latency relative to the other events of the block — it is their
//!   spacing — so the added delay is ≤ 1 ms of polling plus the host's own process-ahead.
//! - Network → track: one block (e.g. 64 samples at 48 kHz = 1.3 ms; 512 samples = 10.7 ms),
//!   plus ≤ 1 ms of anchor error, plus the host's output latency as for any MIDI input.

/// When every pick-up of a window of [`LATE_WINDOW_BLOCKS`] blocks is this much later than
/// predicted, the anchor moves later by the smallest of them.
pub const LATE_TOLERANCE_NS: u64 = 5_000_000;
/// Blocks in a lateness window.
pub const LATE_WINDOW_BLOCKS: u32 = 16;
/// A pick-up this much later than predicted re-anchors at once (a host stall).
pub const STALL_NS: u64 = 50_000_000;
/// A prediction this far ahead of the observed pick-up re-anchors the clock (the host renders
/// faster than real time, or the sample counter jumped).
pub const EARLY_TOLERANCE_NS: u64 = 50_000_000;
/// With no block seen for this long the audio side is idle: incoming messages go at once.
pub const STALE_NS: u64 = 200_000_000;
/// The audio thread plays a message at offset 0 rather than wait more than this many blocks.
pub const MAX_HOLD_BLOCKS: u64 = 4;

/// The sample ↔ wall-time map of the network thread. Plain data, no clock reads: every method
/// takes `now_ns`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SampleClock {
    anchor: Option<Anchor>,
    last_block_len: u32,
    last_block_seen_ns: u64,
    /// The last sample handed to the audio thread, so network messages never go backwards.
    last_target: u64,
    /// The smallest lateness (pick-up − predicted) in the current window, and its blocks.
    window_min_late_ns: u64,
    window_blocks: u32,
}

#[derive(Clone, Copy, Debug)]
struct Anchor {
    sample: u64,
    wall_ns: u64,
    sample_rate: f64,
}

impl Anchor {
    fn wall_of(&self, sample: u64) -> u64 {
        let delta = sample as f64 - self.sample as f64;
        (self.wall_ns as f64 + delta * 1e9 / self.sample_rate).max(0.0) as u64
    }

    fn sample_at(&self, wall_ns: u64) -> u64 {
        let delta = wall_ns as f64 - self.wall_ns as f64;
        (self.sample as f64 + delta * self.sample_rate / 1e9).max(0.0) as u64
    }
}

impl SampleClock {
    /// The network thread saw the block starting at sample `start` at wall time `now_ns`.
    pub fn observe_block(&mut self, start: u64, len: u32, sample_rate: f32, now_ns: u64) {
        let rate = f64::from(sample_rate);
        self.last_block_len = len;
        self.last_block_seen_ns = now_ns;
        let Some(anchor) = self.anchor.as_mut().filter(|a| a.sample_rate == rate && start >= a.sample) else {
            self.reanchor(start, rate, now_ns);
            return;
        };
        let predicted = anchor.wall_of(start);
        if predicted > now_ns + EARLY_TOLERANCE_NS || now_ns > predicted + STALL_NS {
            self.reanchor(start, rate, now_ns);
        } else if predicted > now_ns {
            // Seen earlier than predicted: the anchor came from a late pick-up.
            anchor.wall_ns = anchor.wall_ns.saturating_sub(predicted - now_ns);
            self.start_window();
        } else {
            self.window_min_late_ns = self.window_min_late_ns.min(now_ns - predicted);
            self.window_blocks += 1;
            if self.window_blocks >= LATE_WINDOW_BLOCKS {
                if self.window_min_late_ns > LATE_TOLERANCE_NS {
                    anchor.wall_ns += self.window_min_late_ns;
                }
                self.start_window();
            }
        }
    }

    fn reanchor(&mut self, start: u64, rate: f64, now_ns: u64) {
        self.anchor = (rate > 0.0).then_some(Anchor { sample: start, wall_ns: now_ns, sample_rate: rate });
        self.start_window();
    }

    fn start_window(&mut self) {
        self.window_min_late_ns = u64::MAX;
        self.window_blocks = 0;
    }

    /// The wall time at which the event at absolute sample `sample` is due; `None` before any
    /// block was seen (send at once).
    pub fn wall_time_of(&self, sample: u64) -> Option<u64> {
        self.anchor.map(|a| a.wall_of(sample))
    }

    /// The absolute sample at which a message that arrived at `arrival_ns` should be played
    /// (seen at `now_ns`). 0 — "as soon as possible" — while no block has been seen recently.
    pub fn target_sample(&mut self, arrival_ns: u64, now_ns: u64) -> u64 {
        let target = match self.anchor {
            Some(a) if now_ns.saturating_sub(self.last_block_seen_ns) < STALE_NS => {
                a.sample_at(arrival_ns) + u64::from(self.last_block_len)
            }
            _ => 0,
        };
        // Arrival order is play order: a re-anchor must not send a message before an earlier one.
        let target = target.max(self.last_target);
        self.last_target = target;
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn events_keep_their_offset_in_the_block() {
        let mut clock = SampleClock::default();
        clock.observe_block(48_000, 480, 48_000.0, 1_000 * MS);
        assert_eq!(clock.wall_time_of(48_000), Some(1_000 * MS));
        // Offset 240 of a 48 kHz block: 5 ms after the block start.
        assert_eq!(clock.wall_time_of(48_240), Some(1_005 * MS));
    }

    #[test]
    fn pickup_jitter_does_not_move_the_anchor() {
        let mut clock = SampleClock::default();
        clock.observe_block(0, 480, 48_000.0, 1_000 * MS);
        // The next block (10 ms later in samples) is picked up 2 ms late: still on the grid.
        clock.observe_block(480, 480, 48_000.0, 1_012 * MS);
        assert_eq!(clock.wall_time_of(480), Some(1_010 * MS));
    }

    #[test]
    fn a_late_pickup_under_load_moves_nothing_but_an_early_one_corrects_the_anchor() {
        let mut clock = SampleClock::default();
        // The first pick-up was 3 ms late: the anchor is 3 ms late.
        clock.observe_block(0, 480, 48_000.0, 1_003 * MS);
        // 30 ms late (the thread was held up): still on the grid.
        clock.observe_block(480, 480, 48_000.0, 1_043 * MS);
        assert_eq!(clock.wall_time_of(480), Some(1_013 * MS));
        // On time: 3 ms earlier than predicted, so the anchor moves 3 ms earlier.
        clock.observe_block(960, 480, 48_000.0, 1_020 * MS);
        assert_eq!(clock.wall_time_of(960), Some(1_020 * MS));
        assert_eq!(clock.wall_time_of(0), Some(1_000 * MS));
    }

    #[test]
    fn lasting_lateness_moves_the_anchor_after_a_window() {
        let mut clock = SampleClock::default();
        clock.observe_block(0, 480, 48_000.0, 1_000 * MS);
        // The host stalled 8 ms: every block from now on is picked up 8–10 ms late.
        for i in 1..=u64::from(LATE_WINDOW_BLOCKS) {
            assert_eq!(clock.wall_time_of(i * 480), Some((1_000 + 10 * i) * MS), "block {i}");
            clock.observe_block(i * 480, 480, 48_000.0, (1_008 + 10 * i + i % 3) * MS);
        }
        // The smallest lateness of the window (8 ms) moved the anchor.
        assert_eq!(clock.wall_time_of(0), Some(1_008 * MS));
    }

    #[test]
    fn a_stall_reanchors() {
        let mut clock = SampleClock::default();
        clock.observe_block(0, 480, 48_000.0, 1_000 * MS);
        clock.observe_block(480, 480, 48_000.0, 2_000 * MS);
        assert_eq!(clock.wall_time_of(480), Some(2_000 * MS));
        // Running far ahead of real time (offline render) re-anchors too.
        clock.observe_block(48_000_480, 480, 48_000.0, 2_001 * MS);
        assert_eq!(clock.wall_time_of(48_000_480), Some(2_001 * MS));
    }

    #[test]
    fn arrivals_land_one_block_later_in_order() {
        let mut clock = SampleClock::default();
        assert_eq!(clock.target_sample(5 * MS, 5 * MS), 0, "no block seen yet: at once");
        clock.observe_block(1_000, 64, 64_000.0, 1_000 * MS);
        // 1 ms after the anchor = 64 samples, plus one block of 64.
        assert_eq!(clock.target_sample(1_001 * MS, 1_001 * MS), 1_000 + 64 + 64);
        // An earlier arrival stamp cannot be played before the previous message.
        assert_eq!(clock.target_sample(1_000 * MS, 1_001 * MS), 1_128);
        // Audio idle for long: at once (but still never before the previous one).
        assert_eq!(clock.target_sample(2_000 * MS, 2_000 * MS), 1_128);
    }
}
