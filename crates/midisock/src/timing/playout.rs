//! The playout (jitter) buffer: each message comes out at its sender time + the estimated clock
//! offset + a delay, in the order it was sent.
//!
//! - **Offset.** `arrival − sender time` of a message is the clock offset plus its network delay.
//!   Its minimum over a sliding window (8 s by default) is the offset plus the smallest delay the
//!   link showed lately: the schedule a message with no queueing at all would keep. No clock sync
//!   between the machines is assumed, and as the window slides the estimate follows drift between
//!   the clocks (200 ppm moves it 0.2 ms a second; the window lags that by at most its length).
//! - **Delay.** Fixed, or adaptive: the smallest delay that would have kept all but a target
//!   fraction of the last 16–20 s of arrivals on time (a quantile of `arrival − sender time −
//!   offset`), chosen once the estimate has settled (about 5 s in) and then held: it moves only
//!   when the link really changed, since every move shifts the whole schedule.
//! - **Moving the schedule.** A later schedule (the estimate or the delay went up) applies at
//!   once: playout pauses, nothing comes out early. An earlier one applies at once only when
//!   nothing is queued; otherwise the schedule catches up at a bounded rate (5 % by default), so
//!   queued messages are played a little faster rather than released in a burst.
//! - **Late messages** (arrived after their time) are delivered at once and counted. When every
//!   message has been late for a while (100 ms of arrivals by default) the link's delay went up
//!   for good — a route change: the estimate restarts from those arrivals. A stall's backlog,
//!   which arrives in a moment, does not restart it. What happens to late notes: see
//!   [`PlayoutConfig::stale_after_ns`] and [`PlayoutConfig::keep_late_note_length`].
//! - **Memory.** At most a fixed number of queued messages and of queued sysex bytes. The queue
//!   grows with what is queued (a 1 kHz stream at a 20 ms delay holds about 20 messages, not the
//!   4096 the bound allows) and is freed when a burst has drained; the tables for late notes are
//!   made when a note is first late. When either limit is reached the oldest message is
//!   delivered early, and counted.

use super::histogram::{bin_of, Histogram, BINS};
use super::late_notes::{note_key, HeldNoteOff, LateNotes};
use super::window::WindowedMin;
use crate::message::Message;
use std::collections::VecDeque;

/// How the playout delay is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DelayMode {
    /// The same delay always (on top of the smallest recent network delay).
    Fixed { delay_ns: u64 },
    /// The smallest delay that keeps all but `late_fraction` of messages on time, measured over
    /// the last 16–20 s of arrivals, within `min_ns..=max_ns`; `initial_ns` until there is data
    /// (about 5 s of a stream). Then held: raised when it would make more than twice
    /// `late_fraction` late, lowered when more than 10 % too long.
    Adaptive { late_fraction: f64, min_ns: u64, max_ns: u64, initial_ns: u64 },
}

impl DelayMode {
    /// Adaptive with the defaults: 0.1 % late, 1 ms to 1 s, 20 ms to start with.
    pub fn adaptive() -> DelayMode {
        DelayMode::Adaptive { late_fraction: 0.001, min_ns: 1_000_000, max_ns: 1_000_000_000, initial_ns: 20_000_000 }
    }

    /// A fixed delay of `delay_ns`.
    pub fn fixed(delay_ns: u64) -> DelayMode {
        DelayMode::Fixed { delay_ns }
    }
}

/// Playout settings. `PlayoutConfig::new(mode)` gives the documented defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlayoutConfig {
    pub mode: DelayMode,
    /// Messages queued at most (default 4096); the oldest is delivered early when full.
    pub capacity: usize,
    /// Sysex payload bytes queued at most (default 4 MiB); the oldest message is delivered early
    /// while over.
    pub max_sysex_bytes: usize,
    /// The offset estimate's window of arrivals (default 8 s, in 32 buckets of 0.25 s).
    pub window_ns: u64,
    /// A note-on later than its time by more than this is dropped, with its note-off
    /// (default 200 ms; `None`: late notes are always played). Only notes: every other message
    /// is delivered however late, so controllers and programs end in the state the sender left.
    pub stale_after_ns: Option<u64>,
    /// A late note-on's note-off is held so the note sounds as long as it was played (default
    /// true). Off: every message keeps strict sender order.
    pub keep_late_note_length: bool,
    /// When every arrival for this long was late, the estimate restarts (default 100 ms).
    pub restart_after_ns: u64,
    /// How fast an earlier schedule is caught up while messages are queued, in millionths of
    /// elapsed time (default 50 000: 5 %).
    pub catch_up_ppm: u32,
}

impl PlayoutConfig {
    pub fn new(mode: DelayMode) -> PlayoutConfig {
        PlayoutConfig {
            mode,
            capacity: 4096,
            max_sysex_bytes: 4 << 20,
            window_ns: 8_000_000_000,
            stale_after_ns: Some(200_000_000),
            keep_late_note_length: true,
            restart_after_ns: 100_000_000,
            catch_up_ppm: 50_000,
        }
    }
}

/// A message coming out of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Played {
    pub message: Message,
    /// The sender's time, when the message was stamped.
    pub sender_ns: Option<u64>,
    /// When it arrived (the caller's clock).
    pub arrival_ns: u64,
    /// When it was due (the caller's clock); an unstamped message is due on arrival.
    pub due_ns: u64,
    /// How much later than its time it arrived (0: on time).
    pub late_ns: u64,
}

/// What a user can read about the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlayoutStats {
    /// The estimated `receiver clock − sender clock` plus the smallest recent network delay, in
    /// nanoseconds (`None` before the first stamped message).
    pub offset_ns: Option<i64>,
    /// Network jitter over the last 16–20 s: the median and the 99.9th percentile of each
    /// arrival's delay above the smallest (`None` before data).
    pub jitter_p50_ns: Option<u64>,
    pub jitter_p999_ns: Option<u64>,
    /// The delay in force.
    pub delay_ns: u64,
    /// Messages queued now, and note-offs held for late notes.
    pub queued: usize,
    pub held_note_offs: usize,
    /// Messages pushed / delivered so far.
    pub pushed: u64,
    pub delivered: u64,
    /// Messages that arrived after their time (delivered at once).
    pub late: u64,
    /// Late note-ons dropped as stale, and the note-offs dropped with them.
    pub stale_notes_dropped: u64,
    pub stale_note_offs_dropped: u64,
    /// Messages delivered before their time because the buffer was full.
    pub delivered_early_full: u64,
    /// Times the estimate restarted after a lasting delay increase.
    pub restarts: u64,
}

#[derive(Debug)]
struct Entry {
    message: Message,
    sender_ns: Option<u64>,
    arrival_ns: u64,
}

/// The schedule: `due = sender time + playout offset`, where the playout offset is the offset
/// estimate + the delay, reached at once when it goes up and at a bounded rate when it goes down.
#[derive(Clone, Copy, Debug)]
struct Schedule {
    /// The offset the schedule is heading for.
    target: i64,
    /// The offset in force at `at`.
    current: i64,
    at: u64,
}

impl Schedule {
    /// The offset in force at `now` (not before `at`).
    fn offset_at(&self, now: u64, ppm: u32) -> i64 {
        if self.current <= self.target {
            return self.target;
        }
        let caught_up = (i128::from(now.saturating_sub(self.at)) * i128::from(ppm) / 1_000_000) as i64;
        (self.current - caught_up).max(self.target)
    }

    /// The time a message sent at `sender` is due: the `t` with `t = sender + offset_at(t)`.
    fn due(&self, sender: u64, ppm: u32) -> u64 {
        let on_target = i128::from(sender) + i128::from(self.target);
        if self.current > self.target && ppm > 0 {
            // Still catching up: the offset falls along a line until it meets the target.
            let scale = 1_000_000i128;
            let ppm = i128::from(ppm);
            let on_line =
                (scale * (i128::from(sender) + i128::from(self.current)) + ppm * i128::from(self.at)) / (scale + ppm);
            let meets_target = i128::from(self.at) + (i128::from(self.current - self.target) * scale + ppm - 1) / ppm;
            if on_line <= meets_target {
                return on_line.clamp(0, i128::from(u64::MAX)) as u64;
            }
        }
        on_target.clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// The playout buffer. See the module docs; `docs/timing.md` has the whole algorithm.
///
/// Use it from one thread: `push` every message as it arrives (`arrival_ns` on the clock you
/// will pass to `pop_due`, normally [`crate::monotonic_ns`]), wait until
/// [`next_deadline`](Self::next_deadline) (or until more bytes arrive), then `pop_due(now)`.
#[derive(Debug)]
pub struct PlayoutBuffer {
    config: PlayoutConfig,
    queue: VecDeque<Entry>,
    queued_sysex_bytes: usize,
    window: WindowedMin,
    schedule: Option<Schedule>,
    delay_ns: u64,
    /// Arrival jitter: the last `JITTER_EPOCHS` epochs of `EPOCH_NS` arrival time, a ring
    /// indexed by epoch number.
    jitter: [Histogram; JITTER_EPOCHS],
    /// The reference each epoch's excess was measured against, on average.
    epoch_references: [EpochReference; JITTER_EPOCHS],
    epoch: u64,
    /// The current epoch's reference: the floor when the epoch began, carried by the drift.
    reference: Option<Reference>,
    /// Adaptive mode: the playout offset (floor + delay) chosen last. It follows drift between
    /// choices, and the floor's wander only beyond a band: see `choose_delay`.
    chosen_offset: Option<Chosen>,
    /// Room to add up the epochs' counts when choosing: made at the first adaptive choice (a
    /// fixed delay never needs it, and a server keeps one buffer per stamping client), then
    /// kept, so choosing allocates nothing after that.
    cumulative: Option<Box<[[u32; BINS]; JITTER_EPOCHS]>>,
    /// The observation being gathered: `(millisecond of arrival, largest excess in µs, late)`.
    /// One per millisecond of arrivals, and one per run of late arrivals.
    observation: Option<(u64, u64, bool)>,
    /// The offset window has held `FLOOR_SETTLED_BUCKETS` buckets since the last (re)start.
    floor_settled: bool,
    /// When the delay was last re-chosen (adaptive mode).
    last_choice_ns: u64,
    /// A run of late arrivals: `(first arrival, smallest arrival − sender time)`.
    late_run: Option<(u64, i64)>,
    notes: LateNotes,
    stats: PlayoutStats,
}

/// An adaptive choice: the playout offset `offset` at `at`, for a delay of `delay` above the
/// floor then.
#[derive(Clone, Copy, Debug)]
struct Chosen {
    offset: i64,
    at: u64,
    delay: u64,
    /// How fast the offset moves (the floor's trend: clock drift), in ns per ns.
    slope: f64,
}

/// The trend (a line through the epochs' mean references with the drift's slope), a quantile
/// of the excess measured from it, and how much of the history the schedule in force would
/// have made late.
struct Trend {
    quantile_ns: i64,
    /// The share of the history that would be late under the schedule in force.
    late_share: f64,
    /// The line now, and its slope (ns per ns).
    line_now: i64,
    slope: f64,
}

/// How far (a fraction of the delay) the adaptive offset may stray from today's floor + its
/// delay: a safety net under the trend it follows.
const FLOOR_BAND: f64 = 0.1;

/// The mean reference (and arrival time) over the observations of one epoch.
#[derive(Clone, Copy, Debug, Default)]
struct EpochReference {
    reference_sum: i128,
    at_sum: i128,
    count: u64,
}

/// What an epoch's excess is measured against: the floor when the epoch began (`value` at
/// `at`), carried along the drift estimate of then (`slope`, ns per ns). Within an epoch it is a
/// straight line, so the floor's wander (a few tenths of a millisecond as the window's buckets
/// come and go) does not blur the excess; between epochs the trend takes the steps out.
#[derive(Clone, Copy, Debug)]
struct Reference {
    epoch: u64,
    value: i64,
    at: u64,
    slope: f64,
}

/// An epoch whose reference differs from today's by more than this (after drift) was measured on
/// another path (a route change, or the floor catching up with one): it is left out of choices.
const OTHER_PATH_NS: i64 = 5_000_000;

/// The length of a jitter epoch, and how many are kept: adaptive decisions look at the last
/// 16–20 s. A long history keeps the delay still: its p99.9 is then the 5th or a later largest of
/// thousands of observations (about 300 a second on a 20 ± 10 ms link, whose in-order bursts
/// share milliseconds; up to 1 000 on smoother ones), so one or two stray ones (a stall's
/// backlog, a busy receiver) do not move it.
const EPOCH_NS: u64 = 4_000_000_000;
const JITTER_EPOCHS: usize = 5;
/// Arrivals this close together are one observation of the link (a burst, a stall's backlog).
/// So are consecutive late arrivals, however long they take to come: a moment the link or the
/// receiver stood still is one event, not one per message it held up.
const OBSERVATION_NS: u64 = 1_000_000;
/// The adaptive delay is re-chosen this often, and covers scheduling slack with this margin.
const CHOOSE_EVERY_NS: u64 = 100_000_000;
const ADAPTIVE_MARGIN_NS: u64 = 250_000;
/// Observations the adaptive mode wants before it trusts its quantile over `initial_ns` (1 to
/// 2 s of a 1 kHz stream: arrivals in the same millisecond are one). Fewer make the p99.9 the
/// largest excess seen, and on a busy machine that is often a moment the receiver was not
/// running, which then holds the delay high until it leaves the history; with 1 000 it is the
/// second largest.
const MIN_OBSERVATIONS: u64 = 1_000;
/// Jitter is observed only once the floor is the median of this many buckets of the offset
/// window. A stream's first arrivals have nothing ahead of them on the link, so the first
/// bucket's minimum is unusually low; excess measured against it would set the delay far too
/// high until that epoch left the history.
const FLOOR_BUCKETS_BEFORE_JITTER: usize = 3;
/// The adaptive schedule moves only when it must: raised when it would have made more than
/// twice the target fraction of the history late, lowered when the wanted delay is more than
/// 10 % below it. Every move shifts the whole schedule, which the output shows as spread.
const RAISE_AT_LATE_TIMES: f64 = 2.0;
const LOWER_BAND: f64 = 0.9;
/// Observations before the adaptive delay may be lowered (about 10 s on a 20 ± 10 ms link).
const LOWER_AFTER_OBSERVATIONS: u64 = 3 * MIN_OBSERVATIONS;
/// When the offset window first holds this many buckets (2 s of arrivals by default) the floor
/// has settled: the jitter seen so far, measured against a younger floor, is forgotten once.
const FLOOR_SETTLED_BUCKETS: usize = 8;

impl PlayoutBuffer {
    pub fn new(config: PlayoutConfig) -> PlayoutBuffer {
        let capacity = config.capacity.max(1);
        let delay_ns = initial_delay(&config);
        PlayoutBuffer {
            config: PlayoutConfig { capacity, ..config },
            queue: VecDeque::new(),
            queued_sysex_bytes: 0,
            window: WindowedMin::new(config.window_ns),
            schedule: None,
            delay_ns,
            jitter: std::array::from_fn(|_| Histogram::new()),
            epoch_references: [EpochReference::default(); JITTER_EPOCHS],
            reference: None,
            chosen_offset: None,
            cumulative: None,
            epoch: 0,
            observation: None,
            floor_settled: false,
            last_choice_ns: 0,
            late_run: None,
            notes: LateNotes::new(),
            stats: PlayoutStats { delay_ns, ..PlayoutStats::default() },
        }
    }

    /// The statistics of a buffer built from `config` that has seen nothing yet.
    pub(crate) fn stats_before_data(config: &PlayoutConfig) -> PlayoutStats {
        PlayoutStats { delay_ns: initial_delay(config), ..PlayoutStats::default() }
    }

    pub fn config(&self) -> &PlayoutConfig {
        &self.config
    }

    /// The counters and estimates.
    pub fn stats(&self) -> PlayoutStats {
        let us = |v: Option<u64>| v.map(|us| us * 1_000);
        PlayoutStats {
            offset_ns: self.schedule.map(|s| s.target - self.delay_ns as i64),
            jitter_p50_ns: us(Histogram::quantile_of(&self.jitter, 0.5)),
            jitter_p999_ns: us(Histogram::quantile_of(&self.jitter, 0.999)),
            delay_ns: self.delay_ns,
            queued: self.queue.len(),
            held_note_offs: self.notes.held_count(),
            ..self.stats
        }
    }

    /// What the buffer holds: messages queued or held (note-offs of late notes), and the sysex
    /// payload bytes queued. A server counts these in its memory bound.
    pub(crate) fn held(&self) -> (usize, usize) {
        (self.queue.len() + self.notes.held_count(), self.queued_sysex_bytes)
    }

    /// Delivers the oldest message now, before its time, the way a full buffer does (counted in
    /// `delivered_early_full`); a held note-off once nothing is queued. False when the buffer
    /// holds nothing. A server whose buffers together fill its memory bound calls this.
    pub(crate) fn deliver_early(&mut self, now_ns: u64, mut deliver: impl FnMut(Played)) -> bool {
        if !self.queue.is_empty() {
            self.stats.delivered_early_full += 1;
            self.deliver_head(now_ns, &mut deliver);
        } else if self.notes.held_count() > 0 {
            self.stats.delivered_early_full += 1;
            self.deliver_held(u64::MAX, &mut deliver);
        } else {
            return false;
        }
        self.give_back_queue();
        true
    }

    /// Frees the queue's memory once it is empty after a burst: a buffer that once held
    /// thousands of messages does not keep their room for ever.
    fn give_back_queue(&mut self) {
        const KEEP: usize = 256;
        if self.queue.is_empty() && self.queue.capacity() > KEEP {
            self.queue = VecDeque::new();
        }
    }

    /// True when nothing is queued or held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.notes.held_count() == 0
    }

    /// Takes a message that arrived at `arrival_ns`, stamped with its sender's time `sender_ns`
    /// (`None`: unstamped, due on arrival, still in order behind what is queued). `deliver` gets
    /// what must come out at once: the oldest queued message when the buffer is full.
    pub fn push(&mut self, sender_ns: Option<u64>, arrival_ns: u64, message: Message, mut deliver: impl FnMut(Played)) {
        self.stats.pushed += 1;
        let mut late_ns = 0;
        if let Some(sender) = sender_ns {
            self.observe(sender, arrival_ns);
            let schedule = self.schedule.expect("observe() set the schedule");
            late_ns = arrival_ns.saturating_sub(schedule.due(sender, self.config.catch_up_ppm));
            self.track_late_run(sender, arrival_ns, late_ns > 0);
        }
        if late_ns > 0 {
            self.stats.late += 1;
            if let Some((key, starts)) = note_key(&message) {
                if starts && self.config.stale_after_ns.is_some_and(|limit| late_ns > limit) {
                    self.notes.drop_note(key);
                    self.stats.stale_notes_dropped += 1;
                    return;
                }
            }
        }
        if let Some((key, false)) = note_key(&message) {
            if self.notes.take_dropped_end(key) {
                self.stats.stale_note_offs_dropped += 1;
                return;
            }
        }
        let sysex_len = sysex_len(&message);
        while !self.queue.is_empty()
            && (self.queue.len() >= self.config.capacity
                || self.queued_sysex_bytes + sysex_len > self.config.max_sysex_bytes)
        {
            self.stats.delivered_early_full += 1;
            self.deliver_head(arrival_ns, &mut deliver);
        }
        self.queued_sysex_bytes += sysex_len;
        self.queue.push_back(Entry { message, sender_ns, arrival_ns });
    }

    /// When the next message is due (the caller's clock): wake up then and call `pop_due`.
    /// `None` when nothing is queued or held.
    pub fn next_deadline(&self) -> Option<u64> {
        let head = self.queue.front().map(|entry| self.due_of(entry));
        match (head, self.notes.next_release()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Delivers, in order, every message due at or before `now_ns`.
    pub fn pop_due(&mut self, now_ns: u64, mut deliver: impl FnMut(Played)) {
        loop {
            let head_due = self.queue.front().map(|entry| self.due_of(entry)).filter(|&due| due <= now_ns);
            let release = self.notes.next_release().filter(|&release| release <= now_ns);
            match (head_due, release) {
                (Some(due), Some(release)) if release <= due => self.deliver_held(now_ns, &mut deliver),
                (Some(_), _) => self.deliver_head(now_ns, &mut deliver),
                (None, Some(_)) => self.deliver_held(now_ns, &mut deliver),
                (None, None) => break,
            }
        }
        if let Some(schedule) = &mut self.schedule {
            let offset = schedule.offset_at(now_ns, self.config.catch_up_ppm);
            *schedule = Schedule { current: offset, at: now_ns.max(schedule.at), ..*schedule };
        }
        self.give_back_queue();
    }

    /// Delivers everything queued and held at once, in order (for a port that closes).
    pub fn drain(&mut self, now_ns: u64, mut deliver: impl FnMut(Played)) {
        while !self.queue.is_empty() {
            self.deliver_head(now_ns, &mut deliver);
        }
        while self.notes.held_count() > 0 {
            self.deliver_held(u64::MAX, &mut deliver);
        }
        self.give_back_queue();
    }

    fn due_of(&self, entry: &Entry) -> u64 {
        match (entry.sender_ns, &self.schedule) {
            (Some(sender), Some(schedule)) => schedule.due(sender, self.config.catch_up_ppm),
            _ => entry.arrival_ns,
        }
    }

    fn deliver_held(&mut self, now_ns: u64, deliver: &mut impl FnMut(Played)) {
        if let Some(held) = self.notes.take_released(now_ns) {
            self.emit_held(held, deliver);
        }
    }

    fn emit_held(&mut self, held: HeldNoteOff, deliver: &mut impl FnMut(Played)) {
        self.stats.delivered += 1;
        deliver(Played {
            message: held.message,
            sender_ns: held.sender_ns,
            arrival_ns: held.arrival_ns,
            due_ns: held.release_ns,
            late_ns: 0,
        });
    }

    /// Delivers the oldest queued message (now due, or pushed out by a full buffer).
    fn deliver_head(&mut self, now_ns: u64, deliver: &mut impl FnMut(Played)) {
        let Some(entry) = self.queue.pop_front() else { return };
        let due_ns = self.due_of(&entry);
        self.queued_sysex_bytes -= sysex_len(&entry.message);
        let late_ns = entry.arrival_ns.saturating_sub(due_ns);
        if self.config.keep_late_note_length {
            match (note_key(&entry.message), entry.sender_ns) {
                (Some((key, true)), Some(sender)) => {
                    if let Some(held) = self.notes.note_on_delivered(key, sender, now_ns, late_ns > 0) {
                        self.emit_held(held, deliver);
                    }
                }
                (Some((key, false)), Some(sender)) => {
                    if let Some(held) = self.notes.take_held(key) {
                        self.emit_held(held, deliver);
                    }
                    if let Some(release_ns) = self.notes.hold_until(key, sender, now_ns) {
                        let held = HeldNoteOff {
                            release_ns,
                            message: entry.message,
                            sender_ns: entry.sender_ns,
                            arrival_ns: entry.arrival_ns,
                        };
                        self.notes.hold(key, held);
                        return;
                    }
                }
                _ => {
                    // All notes off, all sound off and reset end held notes' lives too: their
                    // note-offs go first.
                    if let Some(channel) = ends_all_notes(&entry.message) {
                        while let Some(held) = self.notes.take_held_of_channel(channel) {
                            self.emit_held(held, deliver);
                        }
                    }
                }
            }
        }
        self.stats.delivered += 1;
        deliver(Played {
            message: entry.message,
            sender_ns: entry.sender_ns,
            arrival_ns: entry.arrival_ns,
            due_ns,
            late_ns,
        });
    }

    /// Takes one arrival into the estimates and moves the schedule.
    fn observe(&mut self, sender_ns: u64, arrival_ns: u64) {
        let transit = clamp_i64(i128::from(arrival_ns) - i128::from(sender_ns));
        self.window.push(arrival_ns, transit);
        let floor = self.window.floor().unwrap_or(transit);
        let buckets = self.window.buckets();
        if buckets >= FLOOR_SETTLED_BUCKETS && !self.floor_settled {
            self.floor_settled = true;
            self.forget_jitter();
        }
        if buckets >= FLOOR_BUCKETS_BEFORE_JITTER {
            let late = self.schedule.is_some_and(|s| arrival_ns > s.due(sender_ns, self.config.catch_up_ppm));
            let reference = self.reference_at(arrival_ns, floor);
            self.record_jitter(arrival_ns, reference, (transit - reference).max(0) as u64 / 1_000, late);
        }
        self.choose_delay(arrival_ns, floor);
        self.reschedule(arrival_ns, floor);
    }

    fn reschedule(&mut self, now_ns: u64, floor: i64) {
        let target = match self.chosen_offset {
            Some(chosen) => {
                let target = self.offset_in_force(chosen, now_ns, floor);
                self.delay_ns = target.saturating_sub(floor).max(0) as u64;
                target
            }
            None => floor.saturating_add(self.delay_ns as i64),
        };
        let current = match self.schedule {
            // Nothing queued: no message can be rushed, so an earlier schedule applies at once.
            Some(_) if self.queue.is_empty() => target,
            Some(schedule) => schedule.offset_at(now_ns.max(schedule.at), self.config.catch_up_ppm).max(target),
            None => target,
        };
        let at = self.schedule.map_or(now_ns, |s| now_ns.max(s.at));
        self.schedule = Some(Schedule { target, current, at });
    }

    /// The current epoch's reference at `arrival_ns`; a new epoch anchors it at `floor`.
    fn reference_at(&mut self, arrival_ns: u64, floor: i64) -> i64 {
        let epoch = arrival_ns / EPOCH_NS;
        match self.reference {
            Some(r) if r.epoch == epoch => {
                r.value.saturating_add((r.slope * arrival_ns.saturating_sub(r.at) as f64) as i64)
            }
            _ => {
                let slope = self.window.drift_rate();
                self.reference = Some(Reference { epoch, value: floor, at: arrival_ns, slope });
                floor
            }
        }
    }

    fn record_jitter(&mut self, arrival_ns: u64, reference: i64, excess_us: u64, late: bool) {
        let epoch = arrival_ns / EPOCH_NS;
        if epoch > self.epoch {
            // The epochs that start now (and any skipped over) begin empty.
            for skipped in (self.epoch + 1..=epoch).take(JITTER_EPOCHS) {
                let slot = (skipped % JITTER_EPOCHS as u64) as usize;
                self.jitter[slot].clear();
                self.epoch_references[slot] = EpochReference::default();
            }
            self.epoch = epoch;
        }
        let references = &mut self.epoch_references[(self.epoch % JITTER_EPOCHS as u64) as usize];
        references.reference_sum += i128::from(reference);
        references.at_sum += i128::from(arrival_ns);
        references.count += 1;
        let slot = arrival_ns / OBSERVATION_NS;
        match &mut self.observation {
            Some((at, worst, run_late)) if *at == slot || (late && *run_late) => {
                *at = slot;
                *worst = (*worst).max(excess_us);
                *run_late &= late;
            }
            observation => {
                if let Some((_, worst, _)) = observation.take() {
                    self.jitter[(self.epoch % JITTER_EPOCHS as u64) as usize].record(worst);
                }
                *observation = Some((slot, excess_us, late));
            }
        }
    }

    /// Adaptive mode, every `CHOOSE_EVERY_NS`: the playout offset that keeps all but the target
    /// fraction of the recent arrivals on time.
    ///
    /// The choice is made against the *trend*: a line of the drift's slope through the epochs'
    /// mean references (16–20 s of arrivals). Each epoch's excess is moved onto it and the
    /// quantile is taken there, so the floor's wander is not in it. The first choice sets the
    /// playout offset to trend + delay; after that the offset in force is carried along the
    /// drift, and moves only when it would make more than twice the target fraction late
    /// (raised to the choice) or the choice is more than 10 % below it (lowered).
    fn choose_delay(&mut self, now_ns: u64, floor: i64) {
        let DelayMode::Adaptive { late_fraction, min_ns, max_ns, .. } = self.config.mode else { return };
        if now_ns.saturating_sub(self.last_choice_ns) < CHOOSE_EVERY_NS && self.stats.pushed > 1 {
            return;
        }
        self.last_choice_ns = now_ns;
        let observations: u64 = self.jitter.iter().map(Histogram::total).sum();
        if observations < MIN_OBSERVATIONS {
            // Too little to go on: what is in force stays (`initial_ns` at first).
            return;
        }
        let late_fraction = late_fraction.clamp(0.0, 1.0);
        let in_force = self.chosen_offset.map(|chosen| self.offset_in_force(chosen, now_ns, floor));
        let Some(trend) = self.quantile_on_trend(1.0 - late_fraction, in_force, floor, now_ns) else {
            return;
        };
        let max_ns = max_ns.max(min_ns);
        let wanted = (trend.quantile_ns.max(0) as u64 + ADAPTIVE_MARGIN_NS).clamp(min_ns, max_ns);
        let wanted_offset = trend.line_now.saturating_add(wanted as i64);
        // Lowered only from a history of some length: a young one's p99.9 is one of its two or
        // three largest observations, and lowering on that would soon be undone by a raise.
        let may_lower = observations >= LOWER_AFTER_OBSERVATIONS;
        let chosen = match (self.chosen_offset, in_force) {
            (Some(chosen), Some(in_force)) => {
                // The schedule in force moves only when it would make more than twice the
                // target fraction late (raised to the wanted one), or when the wanted one is
                // well below it (lowered). Otherwise it goes on (its slope updated):
                // re-anchoring it on every choice would move it with the trend's own noise.
                let delay = chosen.delay as f64;
                let raise = trend.late_share > RAISE_AT_LATE_TIMES * late_fraction;
                let lower = may_lower && (wanted_offset as f64) < in_force as f64 - delay * (1.0 - LOWER_BAND);
                if raise {
                    // (The wanted offset is above the one in force when this much is late
                    // under it; `max` only guards the bins' rounding.)
                    Chosen { offset: wanted_offset.max(in_force), at: now_ns, delay: wanted, slope: trend.slope }
                } else if lower {
                    Chosen { offset: wanted_offset, at: now_ns, delay: wanted, slope: trend.slope }
                } else {
                    Chosen { offset: in_force, at: now_ns, slope: trend.slope, ..chosen }
                }
            }
            _ => Chosen { offset: wanted_offset, at: now_ns, delay: wanted, slope: trend.slope },
        };
        self.chosen_offset = Some(chosen);
    }

    /// The chosen offset carried forward to `now_ns` along the floor's trend, kept within
    /// `FLOOR_BAND` of `floor` + its delay (a safety net should the trend go astray).
    fn offset_in_force(&self, chosen: Chosen, now_ns: u64, floor: i64) -> i64 {
        let carried = chosen.offset.saturating_add((chosen.slope * now_ns.saturating_sub(chosen.at) as f64) as i64);
        let anchor = floor.saturating_add(chosen.delay as i64);
        let band = (chosen.delay as f64 * FLOOR_BAND) as i64;
        carried.clamp(anchor - band, anchor + band)
    }

    /// The trend over the history, the `q` quantile of the recorded excess moved onto it (the
    /// histograms' bins make it about 3 % coarse), and the share of the history above the
    /// offset `in_force`. Epochs measured on another path (their reference far from today's
    /// floor, drift aside) are left out, so after a route change to a
    /// shorter path the choice rests on the epochs measured since.
    fn quantile_on_trend(&mut self, q: f64, in_force: Option<i64>, floor: i64, now_ns: u64) -> Option<Trend> {
        let rate = self.window.drift_rate();
        // The epochs that count: (slot, mean reference, mean arrival time, weight).
        let mut epochs = [None; JITTER_EPOCHS];
        for (e, (histogram, references)) in self.jitter.iter().zip(&self.epoch_references).enumerate() {
            if histogram.total() == 0 || references.count == 0 {
                continue;
            }
            let count = i128::from(references.count);
            let mean_reference = (references.reference_sum / count) as f64;
            let mean_at = (references.at_sum / count) as u64;
            let carried = mean_reference + rate * now_ns.saturating_sub(mean_at) as f64;
            if (carried - floor as f64).abs() > OTHER_PATH_NS as f64 {
                continue;
            }
            epochs[e] = Some((mean_reference, mean_at, references.count as f64));
        }
        // The trend: a line of the drift's slope through the epochs' mean references (weighted by
        // their observations), on times relative to now.
        let counted = epochs.iter().flatten();
        let weight: f64 = counted.clone().map(|(_, _, w)| w).sum();
        if weight == 0.0 {
            return None;
        }
        let age = |at: u64| -(now_ns.saturating_sub(at) as f64);
        let mean_t = counted.clone().map(|&(_, at, w)| w * age(at)).sum::<f64>() / weight;
        let mean_f = counted.clone().map(|&(f, _, w)| w * f).sum::<f64>() / weight;
        let slope = rate;
        let line = |t: f64| mean_f + slope * (t - mean_t);
        // How far above the line (µs) each epoch's reference was.
        let mut shifts_us = [None; JITTER_EPOCHS];
        let mut total = 0;
        let cumulative = self.cumulative.get_or_insert_with(|| Box::new([[0; BINS]; JITTER_EPOCHS]));
        for (e, epoch) in epochs.iter().enumerate() {
            let Some((mean_reference, mean_at, _)) = *epoch else { continue };
            shifts_us[e] = Some(((mean_reference - line(age(mean_at))) / 1_000.0).round() as i64);
            total += self.jitter[e].total();
            cumulative[e].fill(0);
            self.jitter[e].add_cumulative(&mut cumulative[e]);
        }
        let cumulative = &**cumulative;
        // Values at or below `v` µs above the line.
        let count_at_most = |v: i64| -> u64 {
            shifts_us
                .iter()
                .zip(cumulative.iter())
                .filter_map(|(shift, cumulative)| {
                    let x = v - (*shift)?;
                    (x >= 0).then(|| u64::from(cumulative[bin_of(x as u64)]))
                })
                .sum()
        };
        // The smallest `v` with enough values at or below it.
        let quantile_ns = |q: f64| {
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
            let (mut low, mut high) = (-OTHER_PATH_NS / 1_000 - 1, 1i64 << 33);
            while high - low > 1 {
                let mid = low + (high - low) / 2;
                if count_at_most(mid) >= rank {
                    high = mid;
                } else {
                    low = mid;
                }
            }
            high * 1_000
        };
        let line_now = line(0.0) as i64;
        // Values in the bin of the schedule in force count as on time: a raise needs values
        // clearly above it, not one histogram bin's rounding.
        let late_share = in_force.map_or(0.0, |offset| {
            let excess_us = (offset - line_now - ADAPTIVE_MARGIN_NS as i64).div_euclid(1_000);
            total.saturating_sub(count_at_most(excess_us)) as f64 / total.max(1) as f64
        });
        Some(Trend { quantile_ns: quantile_ns(q), late_share, line_now, slope })
    }

    /// Restarts the estimate when every arrival has been late for `restart_after_ns`: the link's
    /// delay went up for good (a route change). A stall's backlog arrives within a moment, so it
    /// never lasts that long.
    fn track_late_run(&mut self, sender_ns: u64, arrival_ns: u64, late: bool) {
        if !late {
            self.late_run = None;
            return;
        }
        let transit = clamp_i64(i128::from(arrival_ns) - i128::from(sender_ns));
        let (since, floor) = match self.late_run {
            Some((since, floor)) => (since, floor.min(transit)),
            None => (arrival_ns, transit),
        };
        self.late_run = Some((since, floor));
        if arrival_ns - since >= self.config.restart_after_ns {
            self.stats.restarts += 1;
            self.late_run = None;
            self.window.restart(arrival_ns, floor);
            self.floor_settled = false;
            self.chosen_offset = None;
            self.forget_jitter();
            self.reschedule(arrival_ns, floor);
        }
    }
}

impl PlayoutBuffer {
    fn forget_jitter(&mut self) {
        for histogram in &mut self.jitter {
            histogram.clear();
        }
        self.epoch_references = [EpochReference::default(); JITTER_EPOCHS];
        self.reference = None;
        self.observation = None;
    }
}

/// The delay in force before any data: the fixed delay, or the adaptive mode's `initial_ns`.
fn initial_delay(config: &PlayoutConfig) -> u64 {
    match config.mode {
        DelayMode::Fixed { delay_ns } => delay_ns,
        DelayMode::Adaptive { initial_ns, min_ns, max_ns, .. } => initial_ns.clamp(min_ns, max_ns.max(min_ns)),
    }
}

fn clamp_i64(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn sysex_len(message: &Message) -> usize {
    match message {
        Message::SysEx { data } => data.len(),
        _ => 0,
    }
}

/// `Some(channel)` for a message that ends every note of a channel (all sound off, all notes
/// off, and the mode messages that imply it), `Some(None)` for a reset (every channel).
fn ends_all_notes(message: &Message) -> Option<Option<u8>> {
    match *message {
        Message::ControlChange { channel, control: 120 | 123..=127, .. } => Some(Some(channel)),
        Message::Reset => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn on(note: u8) -> Message {
        Message::NoteOn { channel: 0, note, velocity: 100 }
    }

    fn off(note: u8) -> Message {
        Message::NoteOff { channel: 0, note, velocity: 0 }
    }

    #[test]
    fn the_queue_grows_with_what_is_held_and_is_given_back_after_a_burst() {
        let (mut buffer, _) = primed(PlayoutConfig::new(DelayMode::fixed(5 * MS)));
        assert!(buffer.queue.capacity() < 64, "nothing reserved up front");
        for i in 0..3000u64 {
            buffer.push(Some(20 * MS + i), 30 * MS, Message::Clock, |_| panic!("not full"));
        }
        assert_eq!(buffer.held(), (3000, 0));
        assert!(buffer.queue.capacity() >= 3000);
        let mut early = 0;
        while buffer.deliver_early(31 * MS, |_| early += 1) {}
        assert_eq!((early, buffer.stats().delivered_early_full), (3000, 3000));
        assert_eq!(buffer.held(), (0, 0));
        assert_eq!(buffer.queue.capacity(), 0, "a drained burst gives its memory back");
        buffer.push(Some(40 * MS), 50 * MS, Message::Clock, |_| panic!("not full"));
        assert!(buffer.queue.capacity() < 64);
    }

    /// A buffer whose floor is 10 ms (sender 0 arrived at 10 ms) and delay 5 ms: due = s + 15 ms.
    fn primed(config: PlayoutConfig) -> (PlayoutBuffer, Vec<(u64, Message)>) {
        let mut buffer = PlayoutBuffer::new(config);
        let mut out = Vec::new();
        buffer.push(Some(0), 10 * MS, Message::Start, |p| out.push((0, p.message)));
        buffer.pop_due(15 * MS, |p| out.push((15 * MS, p.message)));
        (buffer, out)
    }

    fn pop(buffer: &mut PlayoutBuffer, now: u64, out: &mut Vec<(u64, Message)>) {
        buffer.pop_due(now, |p| out.push((now, p.message)));
    }

    #[test]
    fn a_late_note_keeps_its_length_and_a_replayed_key_releases_it_first() {
        let (mut buffer, mut out) = primed(PlayoutConfig::new(DelayMode::fixed(5 * MS)));
        // A note sent at 100 ms (due 115 ms) and its note-off at 150 ms (due 165 ms) both arrive
        // at 190 ms: the note-on is late, the note-off is held 50 ms after it.
        buffer.push(Some(100 * MS), 190 * MS, on(60), |_| unreachable!());
        buffer.push(Some(150 * MS), 190 * MS, off(60), |_| unreachable!());
        pop(&mut buffer, 190 * MS, &mut out);
        assert_eq!(out[1..], [(190 * MS, on(60))]);
        assert_eq!(buffer.next_deadline(), Some(240 * MS));
        assert_eq!(buffer.stats().held_note_offs, 1);
        // The key is played again (sent at 180 ms, due 195 ms): the held note-off goes first.
        buffer.push(Some(180 * MS), 191 * MS, on(60), |_| unreachable!());
        pop(&mut buffer, 195 * MS, &mut out);
        assert_eq!(out[2..], [(195 * MS, off(60)), (195 * MS, on(60))]);
        assert_eq!(buffer.stats().late, 2);
    }

    #[test]
    fn all_notes_off_lets_held_note_offs_out_before_it() {
        let (mut buffer, mut out) = primed(PlayoutConfig::new(DelayMode::fixed(5 * MS)));
        buffer.push(Some(100 * MS), 190 * MS, on(60), |_| unreachable!());
        buffer.push(Some(150 * MS), 190 * MS, off(60), |_| unreachable!());
        let all_off = Message::ControlChange { channel: 0, control: 123, value: 0 };
        buffer.push(Some(160 * MS), 190 * MS, all_off.clone(), |_| unreachable!());
        pop(&mut buffer, 190 * MS, &mut out);
        assert_eq!(out[1..], [(190 * MS, on(60)), (190 * MS, off(60)), (190 * MS, all_off)]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_stale_note_is_dropped_with_its_note_off_and_other_messages_still_come() {
        let (mut buffer, mut out) = primed(PlayoutConfig::new(DelayMode::fixed(5 * MS)));
        // Sent at 100 ms, due 115 ms, arriving at 400 ms: 285 ms late, past the 200 ms limit.
        let bend = Message::PitchWheel { channel: 0, pitch: 100 };
        buffer.push(Some(100 * MS), 400 * MS, on(60), |_| unreachable!());
        buffer.push(Some(110 * MS), 400 * MS, bend.clone(), |_| unreachable!());
        buffer.push(Some(120 * MS), 400 * MS, off(60), |_| unreachable!());
        pop(&mut buffer, 400 * MS, &mut out);
        assert_eq!(out[1..], [(400 * MS, bend)]);
        let stats = buffer.stats();
        assert_eq!((stats.stale_notes_dropped, stats.stale_note_offs_dropped, stats.late), (1, 1, 3));
    }

    #[test]
    fn without_a_stale_limit_or_note_lengths_order_is_strict() {
        let mut config = PlayoutConfig::new(DelayMode::fixed(5 * MS));
        config.stale_after_ns = None;
        config.keep_late_note_length = false;
        let (mut buffer, mut out) = primed(config);
        buffer.push(Some(100 * MS), 400 * MS, on(60), |_| unreachable!());
        buffer.push(Some(120 * MS), 400 * MS, off(60), |_| unreachable!());
        pop(&mut buffer, 400 * MS, &mut out);
        assert_eq!(out[1..], [(400 * MS, on(60)), (400 * MS, off(60))]);
    }

    #[test]
    fn an_earlier_schedule_is_caught_up_along_the_line_next_deadline_predicts() {
        let (mut buffer, mut out) = primed(PlayoutConfig::new(DelayMode::fixed(5 * MS)));
        // Queue messages, then a much faster arrival lowers the floor by 8 ms while they wait.
        for i in 1..=40u64 {
            buffer.push(Some(i * MS), 10 * MS + i * MS, Message::Clock, |_| unreachable!());
        }
        buffer.push(Some(41 * MS), 43 * MS, Message::Clock, |_| unreachable!());
        let mut last = 0;
        while let Some(deadline) = buffer.next_deadline() {
            let before = out.len();
            pop(&mut buffer, deadline, &mut out);
            assert!(out.len() > before, "nothing was due at the predicted deadline {deadline}");
            // Messages 1 ms apart never come out closer than 1 ms / 1.05.
            if last > 0 {
                assert!(deadline - last >= 952_000, "{}", deadline - last);
            }
            last = deadline;
        }
        // Message 41 is due on the new schedule (41 + 2 + 5 = 48 ms) or later.
        assert!((48 * MS..=56 * MS).contains(&last), "{last}");
    }

    #[test]
    fn unstamped_messages_are_due_on_arrival() {
        let mut buffer = PlayoutBuffer::new(PlayoutConfig::new(DelayMode::adaptive()));
        let mut out = Vec::new();
        buffer.push(None, 7, Message::Stop, |p| out.push(p));
        assert_eq!(buffer.next_deadline(), Some(7));
        buffer.pop_due(7, |p| out.push(p));
        assert_eq!(out[0].due_ns, 7);
        assert_eq!(buffer.stats().offset_ns, None);
    }
}
