//! The playout buffer on simulated clocks: a sender stream at 1 kHz, a link with jitter (in
//! order, like TCP: a message never overtakes an earlier one), drift between the two clocks,
//! stalls and route changes. Every test drives the buffer the way a poll loop would: deliver at
//! each `next_deadline` up to the next arrival, then push that arrival.

use midisock::timing::{DelayMode, Played, PlayoutBuffer, PlayoutConfig, PlayoutStats};
use midisock::Message;

const MS: u64 = 1_000_000;
/// Arbitrary, different clock origins: the two machines' clocks share nothing.
const SENDER_ORIGIN: u64 = 123_456_789_000;
const RECEIVER_ORIGIN: u64 = 9_876_543_210_000;

/// A small deterministic generator (SplitMix64), so every run sees the same link.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `centre ± spread`.
    fn around(&mut self, centre: u64, spread: u64) -> u64 {
        centre - spread + self.next() % (2 * spread + 1)
    }
}

/// One message of the simulated stream.
#[derive(Clone, Debug)]
struct Sent {
    /// True time of sending (receiver clock origin removed).
    true_ns: u64,
    /// The sender's clock reading.
    sender_ns: u64,
    /// When it reaches the receiver (receiver clock).
    arrival_ns: u64,
    message: Message,
}

/// The link: `delay(true send time) -> one-way delay` before the in-order rule.
struct Link<'a> {
    drift_ppm: i64,
    delay: Box<dyn FnMut(u64) -> u64 + 'a>,
}

/// A numbered message: control changes carry 18 bits of index (no notes: order is strict).
fn numbered(i: u64) -> Message {
    Message::ControlChange { channel: (i >> 14) as u8 & 15, control: (i >> 7) as u8 & 127, value: i as u8 & 127 }
}

fn number_of(message: &Message) -> u64 {
    match *message {
        Message::ControlChange { channel, control, value } => {
            (u64::from(channel) << 14) | (u64::from(control) << 7) | u64::from(value)
        }
        ref other => panic!("not a numbered message: {other:?}"),
    }
}

fn stream(count: u64, period_ns: u64, mut link: Link, message: impl Fn(u64) -> Message) -> Vec<Sent> {
    let mut last_arrival = 0;
    (0..count)
        .map(|i| {
            let true_ns = i * period_ns;
            let sender_ns = SENDER_ORIGIN + (true_ns as i128 * (1_000_000 + link.drift_ppm as i128) / 1_000_000) as u64;
            // In order: a message cannot arrive before the one sent before it.
            let arrival_ns = (RECEIVER_ORIGIN + true_ns + (link.delay)(true_ns)).max(last_arrival);
            last_arrival = arrival_ns;
            Sent { true_ns, sender_ns, arrival_ns, message: message(i) }
        })
        .collect()
}

/// A delivery: what came out, and when.
struct Delivery {
    at_ns: u64,
    played: Played,
}

/// Runs `sent` through `buffer` like a poll loop; returns every delivery in order.
fn play(buffer: &mut PlayoutBuffer, sent: &[Sent]) -> Vec<Delivery> {
    let mut out = Vec::new();
    let deliver_until = |buffer: &mut PlayoutBuffer, until: u64, out: &mut Vec<Delivery>| {
        while let Some(deadline) = buffer.next_deadline().filter(|&d| d <= until) {
            let before = out.len();
            buffer.pop_due(deadline, |played| out.push(Delivery { at_ns: deadline, played }));
            assert!(out.len() > before, "woken at its deadline, the buffer delivered nothing");
        }
    };
    for s in sent {
        deliver_until(buffer, s.arrival_ns, &mut out);
        let at = s.arrival_ns;
        buffer.push(Some(s.sender_ns), at, s.message.clone(), |played| out.push(Delivery { at_ns: at, played }));
    }
    deliver_until(buffer, u64::MAX, &mut out);
    assert!(buffer.is_empty());
    out
}

/// One-way latency of each delivery: delivery time − true send time (deliveries already checked
/// to be `sent` in order, exactly once).
fn latencies(sent: &[Sent], out: &[Delivery]) -> Vec<u64> {
    out.iter().zip(sent).map(|(d, s)| d.at_ns - RECEIVER_ORIGIN - s.true_ns).collect()
}

fn percentile(samples: &[u64], q: f64) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The spread that matters: p99.9 − p50 of one-way latency.
fn spread(samples: &[u64]) -> u64 {
    percentile(samples, 0.999) - percentile(samples, 0.5)
}

fn assert_in_order_exactly_once(out: &[Delivery], count: u64) {
    let numbers: Vec<u64> = out.iter().map(|d| number_of(&d.played.message)).collect();
    assert_eq!(numbers.len() as u64, count, "lost or duplicated messages");
    // Numbers wrap at 2^18.
    assert!(numbers.first().is_none_or(|&n| n == 0));
    assert!(numbers.windows(2).all(|w| w[1] == (w[0] + 1) % (1 << 18)), "out of order");
}

/// The delay a user would pick: the link's p99.9 transit above its usual floor (the median of
/// the half-second minima, the floor the buffer estimates), measured on the simulated arrivals.
fn p999_jitter(sent: &[Sent]) -> u64 {
    let transits: Vec<u64> = sent.iter().map(|s| s.arrival_ns - RECEIVER_ORIGIN - s.true_ns).collect();
    let minima: Vec<u64> = transits.chunks(500).map(|c| *c.iter().min().unwrap()).collect();
    percentile(&transits, 0.999) - percentile(&minima, 0.5)
}

fn uniform_link(rng: &mut Rng, centre: u64, spread: u64, drift_ppm: i64) -> Link<'_> {
    Link { drift_ppm, delay: Box::new(move |_| rng.around(centre, spread)) }
}

fn fixed(delay_ns: u64) -> PlayoutBuffer {
    PlayoutBuffer::new(PlayoutConfig::new(DelayMode::fixed(delay_ns)))
}

fn report(name: &str, lat: &[u64], stats: &PlayoutStats) {
    let settled = &lat[WARM_UP.min(lat.len() / 2)..];
    eprintln!(
        "{name}: p50 {:.2} ms, p99.9 {:.2} ms, spread {:.3} ms (settled {:.3}); {stats:?}",
        percentile(lat, 0.5) as f64 / 1e6,
        percentile(lat, 0.999) as f64 / 1e6,
        spread(lat) as f64 / 1e6,
        spread(settled) as f64 / 1e6,
    );
}

/// Messages at the start while the estimate settles (2 s at 1 kHz): the first arrivals set a
/// floor that later, faster ones lower, and the schedule catches up at its bounded rate.
const WARM_UP: usize = 2_000;

fn check_jitter_absorbed(centre: u64, spread_ns: u64, seconds: u64, drift_ppm: i64) {
    let mut rng = Rng(centre ^ spread_ns ^ drift_ppm as u64);
    let count = seconds * 1000;
    let sent = stream(count, MS, uniform_link(&mut rng, centre, spread_ns, drift_ppm), numbered);
    let raw: Vec<u64> = sent.iter().map(|s| s.arrival_ns - RECEIVER_ORIGIN - s.true_ns).collect();
    let delay = p999_jitter(&sent);
    let mut buffer = fixed(delay);
    let out = play(&mut buffer, &sent);
    assert_in_order_exactly_once(&out, count);
    let lat = latencies(&sent, &out);
    let stats = buffer.stats();
    report(&format!("{centre}±{spread_ns} drift {drift_ppm} ppm, delay {delay}"), &lat, &stats);
    assert!(delay > spread_ns, "the link has jitter to absorb: {delay}");
    let settled = &lat[WARM_UP..];
    assert!(spread(settled) <= MS, "output spread {} ns > 1 ms", spread(settled));
    // The price: a median about the link's own p99.9 (plus the estimate's drift lag).
    assert!(percentile(settled, 0.5) <= percentile(&raw, 0.999) + 2 * MS);
    // About the 0.1 % the delay leaves out, give or take the floor's wander (late ones are late
    // by little: the spread above counts them).
    assert!(stats.late as f64 <= count as f64 * 0.01, "late {} of {count}", stats.late);
    assert_eq!(stats.restarts, 0);
}

#[test]
fn jitter_of_20_plus_minus_10_ms_becomes_a_fixed_latency() {
    check_jitter_absorbed(20 * MS, 10 * MS, 60, 0);
}

#[test]
fn jitter_of_5_plus_minus_3_ms_becomes_a_fixed_latency() {
    check_jitter_absorbed(5 * MS, 3 * MS, 60, 0);
}

#[test]
fn clocks_drifting_200_ppm_apart_either_way_are_tracked_over_five_minutes() {
    for drift in [0, 200, -200] {
        check_jitter_absorbed(20 * MS, 10 * MS, 300, drift);
        check_jitter_absorbed(5 * MS, 3 * MS, 300, drift);
    }
}

#[test]
fn without_stamps_messages_come_out_on_arrival_in_order() {
    let mut buffer = fixed(30 * MS);
    let mut out = Vec::new();
    buffer.push(None, 5 * MS, numbered(0), |p| out.push(p));
    buffer.push(None, 6 * MS, numbered(1), |p| out.push(p));
    assert_eq!(buffer.next_deadline(), Some(5 * MS));
    buffer.pop_due(6 * MS, |p| out.push(p));
    assert_eq!(out.iter().map(|p| (number_of(&p.message), p.due_ns)).collect::<Vec<_>>(), [(0, 5 * MS), (1, 6 * MS)]);
}

#[test]
fn a_two_second_stall_recovers_without_restarting_the_estimate() {
    let mut rng = Rng(7);
    let stall = (10_000 * MS, 12_000 * MS);
    let link = Link {
        drift_ppm: 0,
        delay: Box::new(|t| {
            let d = rng.around(20 * MS, 10 * MS);
            if (stall.0..stall.1).contains(&t) {
                stall.1 - t + d
            } else {
                d
            }
        }),
    };
    let count = 30_000;
    let sent = stream(count, MS, link, numbered);
    let mut buffer = fixed(20 * MS);
    let out = play(&mut buffer, &sent);
    assert_in_order_exactly_once(&out, count);
    let stats = buffer.stats();
    let lat = latencies(&sent, &out);
    report("stall", &lat, &stats);
    assert_eq!(stats.restarts, 0, "a stall is not a route change");
    // Everything held up by the stall is late (delivered at once); nothing else is.
    assert!((1_990..2_100).contains(&stats.late), "late {}", stats.late);
    let before: Vec<u64> = lat[..9_000].to_vec();
    let after: Vec<u64> = lat[12_100..].to_vec();
    assert!(spread(&after) <= MS, "after the stall: spread {}", spread(&after));
    assert!(percentile(&after, 0.5).abs_diff(percentile(&before, 0.5)) <= MS, "the same latency as before");
}

#[test]
fn a_route_change_to_a_longer_path_restarts_the_estimate_quickly() {
    let mut rng = Rng(11);
    let step_at = 10_000 * MS;
    let link = Link {
        drift_ppm: 0,
        delay: Box::new(|t| rng.around(20 * MS, 10 * MS) + if t >= step_at { 40 * MS } else { 0 }),
    };
    let count = 30_000;
    let sent = stream(count, MS, link, numbered);
    let mut buffer = fixed(22 * MS);
    let out = play(&mut buffer, &sent);
    assert_in_order_exactly_once(&out, count);
    let stats = buffer.stats();
    let lat = latencies(&sent, &out);
    report("route +40 ms", &lat, &stats);
    assert_eq!(stats.restarts, 1);
    // Late for about the restart time, then on time at the new latency, 40 ms later.
    assert!(stats.late < 400, "late {}", stats.late);
    // The new path's floor fills the estimate's window (8 s) before it is as steady as before.
    let before = &lat[WARM_UP..9_900];
    let after = &lat[19_000..];
    assert!(spread(after) <= MS, "after: {}", spread(after));
    let moved = percentile(after, 0.5) as i64 - percentile(before, 0.5) as i64;
    assert!((39 * MS as i64..=42 * MS as i64).contains(&moved), "moved by {moved}");
}

#[test]
fn a_route_change_to_a_shorter_path_catches_up_without_a_burst() {
    let mut rng = Rng(13);
    let step_at = 10_000 * MS;
    let link = Link {
        drift_ppm: 0,
        delay: Box::new(|t| rng.around(20 * MS, 10 * MS) + if t >= step_at { 0 } else { 40 * MS }),
    };
    let count = 30_000;
    let sent = stream(count, MS, link, numbered);
    let mut buffer = fixed(22 * MS);
    let out = play(&mut buffer, &sent);
    assert_in_order_exactly_once(&out, count);
    let stats = buffer.stats();
    let lat = latencies(&sent, &out);
    report("route -40 ms", &lat, &stats);
    // Messages sent 1 ms apart come out at least 0.9 ms apart throughout: no burst.
    let smallest_gap = out.windows(2).map(|w| w[1].at_ns - w[0].at_ns).min().unwrap();
    assert!(smallest_gap >= 9 * MS / 10, "a burst: gap {smallest_gap}");
    assert_eq!(stats.late, 0);
    // The floor follows once half the window saw the shorter path (4 s), then catches up at 5 %.
    let before = &lat[WARM_UP..9_900];
    let after = &lat[16_000..];
    assert!(spread(after) <= MS, "after: {}", spread(after));
    let moved = percentile(before, 0.5) as i64 - percentile(after, 0.5) as i64;
    assert!((39 * MS as i64..=41 * MS as i64).contains(&moved), "moved by {moved}");
}

#[test]
fn adaptive_mode_finds_the_delay_of_the_link() {
    for (centre, spread_ns) in [(20 * MS, 10 * MS), (5 * MS, 3 * MS)] {
        let mut rng = Rng(centre);
        let count = 60_000;
        let sent = stream(count, MS, uniform_link(&mut rng, centre, spread_ns, 150), numbered);
        let mut buffer = PlayoutBuffer::new(PlayoutConfig::new(DelayMode::adaptive()));
        let out = play(&mut buffer, &sent);
        assert_in_order_exactly_once(&out, count);
        let stats = buffer.stats();
        let lat = latencies(&sent, &out);
        report(&format!("adaptive {centre}±{spread_ns}"), &lat, &stats);
        for from in [7_000, 15_000] {
            let after = &lat[from..];
            eprintln!(
                "adaptive {centre}±{spread_ns} from {} s: p50 {:.2} ms, spread {:.3} ms",
                from / 1000,
                percentile(after, 0.5) as f64 / 1e6,
                spread(after) as f64 / 1e6
            );
        }
        let settled = &lat[15_000..];
        assert!(spread(settled) <= MS, "settled spread {}", spread(settled));
        let raw: Vec<u64> = sent.iter().map(|s| s.arrival_ns - RECEIVER_ORIGIN - s.true_ns).collect();
        assert!(percentile(settled, 0.5) <= percentile(&raw, 0.999) + 2 * MS);
        assert!(stats.late as f64 <= count as f64 * 0.003, "late {} of {count}", stats.late);
        let wanted = p999_jitter(&sent);
        assert!(
            stats.delay_ns >= wanted * 9 / 10 && stats.delay_ns <= wanted * 12 / 10 + MS,
            "delay {} for a link whose p99.9 jitter is {wanted}",
            stats.delay_ns
        );
        let jitter = stats.jitter_p999_ns.unwrap();
        assert!(jitter.abs_diff(wanted) <= wanted / 5 + MS, "reported jitter {jitter} vs {wanted}");
    }
}

#[test]
fn a_full_buffer_delivers_its_oldest_early_and_counts_it() {
    let mut config = PlayoutConfig::new(DelayMode::fixed(1_000 * MS));
    config.capacity = 16;
    let mut buffer = PlayoutBuffer::new(config);
    let mut rng = Rng(3);
    let sent = stream(1_000, MS, uniform_link(&mut rng, 5 * MS, MS, 0), numbered);
    let out = play(&mut buffer, &sent);
    assert_in_order_exactly_once(&out, 1_000);
    let stats = buffer.stats();
    assert_eq!(stats.delivered_early_full, 1_000 - 16);
    assert!(stats.queued == 0 && stats.delivered == 1_000);
}

#[test]
fn queued_sysex_bytes_are_bounded() {
    let mut config = PlayoutConfig::new(DelayMode::fixed(1_000 * MS));
    config.max_sysex_bytes = 10_000;
    let mut buffer = PlayoutBuffer::new(config);
    let mut early = 0;
    for i in 0..100u64 {
        buffer.push(Some(i * MS), i * MS, Message::sysex(vec![1; 3_000]).unwrap(), |_| early += 1);
        assert!(buffer.stats().queued <= 3);
    }
    assert_eq!(early, 97);
}

/// Notes: 1 kHz is a flood, but it makes every effect visible. Note `k` (key k % 128) starts at
/// `k × 10 ms` and ends 5 ms later.
fn note_stream(count: u64, link: Link) -> Vec<Sent> {
    stream(count * 2, 5 * MS, link, |i| {
        let key = ((i / 2) % 128) as u8;
        if i % 2 == 0 {
            Message::NoteOn { channel: 0, note: key, velocity: 100 }
        } else {
            Message::NoteOff { channel: 0, note: key, velocity: 0 }
        }
    })
}

#[test]
fn after_a_stall_stale_notes_are_dropped_whole_and_late_ones_keep_their_length() {
    let mut rng = Rng(17);
    let stall = (10_000 * MS, 12_000 * MS);
    let link = Link {
        drift_ppm: 0,
        delay: Box::new(|t| {
            let d = rng.around(20 * MS, 10 * MS);
            if (stall.0..stall.1).contains(&t) {
                stall.1 - t + d
            } else {
                d
            }
        }),
    };
    let sent = note_stream(3_000, link);
    let mut buffer = fixed(20 * MS);
    let mut out = Vec::new();
    // Drive it by hand here: note messages are not numbered.
    for s in &sent {
        while let Some(deadline) = buffer.next_deadline().filter(|&d| d <= s.arrival_ns) {
            buffer.pop_due(deadline, |p| out.push((deadline, p)));
        }
        buffer.push(Some(s.sender_ns), s.arrival_ns, s.message.clone(), |p| out.push((s.arrival_ns, p)));
    }
    while let Some(deadline) = buffer.next_deadline() {
        buffer.pop_due(deadline, |p| out.push((deadline, p)));
    }
    let stats = buffer.stats();
    eprintln!("{stats:?}");
    // The stall held 200 notes: those more than 200 ms late are dropped, on and off together.
    assert!((170..=185).contains(&stats.stale_notes_dropped), "{}", stats.stale_notes_dropped);
    assert_eq!(stats.stale_notes_dropped, stats.stale_note_offs_dropped);
    // Every note that sounds ends, after it started, and no key is left on.
    let mut on_since: [Option<u64>; 128] = [None; 128];
    let mut lengths = Vec::new();
    for (at, played) in &out {
        match played.message {
            Message::NoteOn { note, .. } => {
                assert!(on_since[note as usize].is_none(), "key {note} started twice");
                on_since[note as usize] = Some(*at);
            }
            Message::NoteOff { note, .. } => {
                let started = on_since[note as usize].take().expect("a note-off without its note");
                lengths.push(at - started);
            }
            _ => unreachable!(),
        }
    }
    assert!(on_since.iter().all(Option::is_none), "a note was left on");
    assert_eq!(lengths.len() as u64, 3_000 - stats.stale_notes_dropped);
    // Late notes kept their 5 ms length; no note collapsed into a click.
    assert!(lengths.iter().all(|&l| l >= 4 * MS), "shortest note {:?}", lengths.iter().min());
    // And the backlog came out as at most the 200 ms of notes the stale limit lets through.
    let burst = out.iter().filter(|(at, p)| {
        matches!(p.message, Message::NoteOn { .. })
            && (stall.1 + RECEIVER_ORIGIN..stall.1 + RECEIVER_ORIGIN + 30 * MS).contains(at)
    });
    assert!(burst.count() <= 25);
}

/// The receiving thread's own hiccups: pauses (`(start, end)`, receiver clock, sorted) during
/// which it neither reads nor delivers, as a busy machine's scheduler makes them.
fn receiver_pauses(rng: &mut Rng, until_ns: u64, every_ns: u64, longest_ns: u64) -> Vec<(u64, u64)> {
    let mut pauses = Vec::new();
    let mut at = RECEIVER_ORIGIN;
    while at < RECEIVER_ORIGIN + until_ns {
        at += rng.around(every_ns, every_ns / 2);
        let length = 500_000 + rng.next() % longest_ns.saturating_sub(500_000).max(1);
        pauses.push((at, at + length));
        at += length;
    }
    pauses
}

/// When the receiver gets to act at `t`: the end of the pause holding `t`, if any.
fn after_pauses(pauses: &[(u64, u64)], t: u64) -> u64 {
    let i = pauses.partition_point(|&(_, end)| end <= t);
    match pauses.get(i) {
        Some(&(start, end)) if start <= t => end,
        _ => t,
    }
}

/// [`play`] by a receiver that pauses: arrivals are read, and due messages delivered, only when
/// it runs. Also returns the buffer's stats after each second of sent messages.
fn play_pausing(
    buffer: &mut PlayoutBuffer,
    sent: &[Sent],
    pauses: &[(u64, u64)],
) -> (Vec<Delivery>, Vec<PlayoutStats>) {
    let mut out = Vec::new();
    let mut each_second = Vec::new();
    let deliver_until = |buffer: &mut PlayoutBuffer, until: u64, out: &mut Vec<Delivery>| {
        while let Some(deadline) = buffer.next_deadline().filter(|&d| d <= until) {
            let at = after_pauses(pauses, deadline).max(deadline);
            buffer.pop_due(at, |played| out.push(Delivery { at_ns: at, played }));
        }
    };
    for (i, s) in sent.iter().enumerate() {
        let at = after_pauses(pauses, s.arrival_ns);
        deliver_until(buffer, at, &mut out);
        buffer.push(Some(s.sender_ns), at, s.message.clone(), |played| out.push(Delivery { at_ns: at, played }));
        if i % 1000 == 999 {
            each_second.push(buffer.stats());
        }
    }
    deliver_until(buffer, u64::MAX, &mut out);
    (out, each_second)
}

/// The adaptive buffer on the 20 ± 10 ms link, 30 s, driven by `play_pausing` (no pauses:
/// `pauses` empty). Returns the latencies and the stats after each second.
fn adaptive_run(seed: u64, pauses: &[(u64, u64)]) -> (Vec<u64>, Vec<PlayoutStats>) {
    adaptive_run_on(seed, (20 * MS, 10 * MS), pauses)
}

/// [`adaptive_run`] on a uniform link of `(centre, spread)`.
fn adaptive_run_on(seed: u64, (centre, spread): (u64, u64), pauses: &[(u64, u64)]) -> (Vec<u64>, Vec<PlayoutStats>) {
    let mut rng = Rng(seed);
    let count = 30_000;
    let sent = stream(count, MS, uniform_link(&mut rng, centre, spread, 0), numbered);
    let mut buffer = PlayoutBuffer::new(PlayoutConfig::new(DelayMode::adaptive()));
    let (out, each_second) = play_pausing(&mut buffer, &sent, pauses);
    assert_in_order_exactly_once(&out, count);
    let lat = latencies(&sent, &out);
    for (second, (chunk, stats)) in lat.chunks(1000).zip(&each_second).enumerate() {
        eprintln!(
            "seed {seed} {second:2} s: p50 {:.2} p99.9 {:.2} ms | delay {:.2} ms, late {}",
            percentile(chunk, 0.5) as f64 / 1e6,
            percentile(chunk, 0.999) as f64 / 1e6,
            stats.delay_ns as f64 / 1e6,
            stats.late
        );
    }
    (lat, each_second)
}

#[test]
fn adaptive_mode_settles_within_six_seconds_and_then_holds_its_latency() {
    for link @ (centre, link_spread) in [(20 * MS, 10 * MS), (5 * MS, 3 * MS)] {
        for seed in 1..=12 {
            let (lat, each_second) = adaptive_run_on(seed, link, &[]);
            // The delay is chosen by 6 s: there it is within 10 % of where the run ends.
            let (at_6_s, last) = (each_second[6].delay_ns, each_second.last().unwrap().delay_ns);
            assert!(at_6_s.abs_diff(last) <= last / 10, "seed {seed}: delay {at_6_s} at 6 s, {last} at the end");
            // From 7 s on (the second after the choice still holds messages scheduled before
            // it), the spread is a fraction of the 1 ms target (in simulated time: no scheduler
            // here). The schedule is held: what is left is the drift estimate's noise (there
            // is no drift here) and a rare raise.
            let settled = &lat[7_000..];
            eprintln!(
                "{}±{} ms, seed {seed} from 7 s: p50 {:.2} ms, spread {:.3} ms",
                centre / MS,
                link_spread / MS,
                percentile(settled, 0.5) as f64 / 1e6,
                spread(settled) as f64 / 1e6
            );
            assert!(spread(settled) <= 4 * MS / 10, "seed {seed}: spread {}", spread(settled));
            // At the price a user expects: the link's p99.9 (its largest delay at most) + 2 ms.
            let limit = centre + link_spread + 2 * MS;
            assert!(percentile(settled, 0.5) <= limit, "seed {seed}: p50 {}", percentile(settled, 0.5));
            // Late: under the 0.1 % target.
            let late = each_second.last().unwrap().late;
            assert!(late <= 30, "seed {seed}: {late} late");
        }
    }
}

#[test]
fn a_receiver_that_pauses_now_and_then_does_not_push_the_adaptive_delay_up() {
    // A busy machine: about once a second the receiving thread neither reads nor delivers for
    // 0.5–4 ms. Its arrivals look late by that much, but they are few: the delay must stay
    // where the same link without pauses puts it.
    for seed in 1..=4 {
        let (calm_lat, calm) = adaptive_run(seed, &[]);
        let pauses = receiver_pauses(&mut Rng(seed + 100), 40_000 * MS, 1_000 * MS, 4 * MS);
        let (lat, paused) = adaptive_run(seed, &pauses);
        let calm_delay = calm.last().unwrap().delay_ns;
        let paused_delay = paused.last().unwrap().delay_ns;
        assert!(
            paused_delay <= calm_delay + calm_delay / 20,
            "seed {seed}: {paused_delay} ns with pauses, {calm_delay} ns without"
        );
        // The pauses themselves hold some messages up (by up to 4 ms, about 0.2 % of them);
        // the latency is otherwise the calm run's, give or take what the first choice (from
        // 2 s of arrivals, pauses among them) put on top.
        let (p50, calm_p50) = (percentile(&lat[7_000..], 0.5), percentile(&calm_lat[7_000..], 0.5));
        assert!(p50.abs_diff(calm_p50) <= 6 * MS / 10, "seed {seed}: p50 {p50} with pauses, {calm_p50} without");
    }
}

#[test]
fn adaptive_mode_follows_route_changes_both_ways() {
    // 20 ± 10 ms, 40 ms longer from 15 s to 35 s, then back: the adaptive delay's choices rest
    // on the floor's trend, so check that they let go of the old path each time.
    let mut rng = Rng(19);
    let link = Link {
        drift_ppm: 0,
        delay: Box::new(|t| {
            rng.around(20 * MS, 10 * MS) + if (15_000 * MS..35_000 * MS).contains(&t) { 40 * MS } else { 0 }
        }),
    };
    let count = 55_000;
    let sent = stream(count, MS, link, numbered);
    let mut buffer = PlayoutBuffer::new(PlayoutConfig::new(DelayMode::adaptive()));
    let out = play(&mut buffer, &sent);
    assert_in_order_exactly_once(&out, count);
    let stats = buffer.stats();
    let lat = latencies(&sent, &out);
    report("adaptive, route +40 ms and back", &lat, &stats);
    for (second, chunk) in lat.chunks(1000).enumerate() {
        eprintln!(
            "{second:2} s: p50 {:.2} p99.9 {:.2}",
            percentile(chunk, 0.5) as f64 / 1e6,
            percentile(chunk, 0.999) as f64 / 1e6
        );
    }
    assert_eq!(stats.restarts, 1, "the longer path restarts the estimate once");
    let (before, longer, after) = (&lat[8_000..15_000], &lat[25_000..35_000], &lat[45_000..]);
    let moved_up = percentile(longer, 0.5) as i64 - percentile(before, 0.5) as i64;
    assert!((39 * MS as i64..=42 * MS as i64).contains(&moved_up), "moved up by {moved_up}");
    let moved_down = percentile(longer, 0.5) as i64 - percentile(after, 0.5) as i64;
    assert!((39 * MS as i64..=42 * MS as i64).contains(&moved_down), "moved down by {moved_down}");
    for part in [before, longer, after] {
        assert!(spread(part) <= MS, "spread {}", spread(part));
    }
    // Back on the shorter path nothing came out in a burst: 1 ms apart stays ≥ 0.9 ms apart.
    let smallest_gap = out[35_000..].windows(2).map(|w| w[1].at_ns - w[0].at_ns).min().unwrap();
    assert!(smallest_gap >= 9 * MS / 10, "a burst: gap {smallest_gap}");
}
