//! One-way latency of a 1 kHz stream through the jitter proxy, received by a midisock port with
//! and without its jitter buffer: the real API, as a user's program gets it
//! ([`midisock_testkit::latency`]).
//!
//! ```text
//! cargo run --release -p midisock-testkit --example playout_latency \
//!     [-- --seconds 24] [--warm-up 2] [--link 20±10ms] [--trace]
//! ```
//! `--link` runs one link instead of both; `--trace` prints each second of the buffered runs
//! (median, p99.9, and the delay, offset and late count in force).
//!
//! For each link (20±10 ms and 5±3 ms, uniform, in order) the stream runs three times: into a
//! port without a buffer, into one with the adaptive buffer (`DelayMode::adaptive()`), and into
//! one with a fixed delay at the value the adaptive run settled on (what a user would pin after
//! reading the stats). Latency = when `receive` handed the message over − when the sender wrote
//! it (one machine: one clock). The first `WARM_UP_S` seconds, while the estimate settles, are
//! left out of every row.

use midisock::timing::DelayMode;
use midisock_testkit::latency::{one_way, percentile, OneWay, Receiver};
use midisock_testkit::DelayDistribution;
use std::time::Duration;

const WARM_UP_S: u64 = 2;

fn row(label: &str, run: &mut OneWay, proxy_p999: u64, buffered: bool) -> bool {
    let ms = |ns: u64| ns as f64 / 1e6;
    let samples = &mut run.latencies_ns;
    let (p50, p999) = (percentile(samples, 0.5), percentile(samples, 0.999));
    let meets = p999 - p50 <= 1_000_000 && p50 <= proxy_p999 + 2_000_000;
    let extra = run.playout.map_or(String::new(), |stats| {
        format!(
            " (delay {:.2} ms, late {}, jitter p99.9 {:.2} ms)",
            ms(stats.delay_ns),
            stats.late,
            ms(stats.jitter_p999_ns.unwrap_or(0))
        )
    });
    println!(
        "  {label:<22} {:>8} {:>9.3} {:>9.3} {:>11.3}   {}{extra}",
        samples.len(),
        ms(p50),
        ms(p999),
        ms(p999 - p50),
        match (buffered, meets) {
            (false, _) => "",
            (true, true) => "meets target",
            (true, false) => "misses target",
        },
    );
    meets
}

/// Each second of a buffered run: its latency median and p99.9, and the buffer's state after it.
fn print_seconds(label: &str, run: &OneWay) {
    let ms = |ns: u64| ns as f64 / 1e6;
    println!("  each second, {label}: p50 p99.9 (ms) | delay, offset (relative to the first), late");
    let first_offset = run.seconds.iter().find_map(|s| s.playout.and_then(|p| p.offset_ns)).unwrap_or(0);
    for (s, second) in run.seconds.iter().enumerate() {
        let state = second.playout.map_or(String::new(), |p| {
            let offset = p.offset_ns.map_or(0.0, |o| (o - first_offset) as f64 / 1e6);
            format!("| {:6.2} {:+6.2} {:5}", ms(p.delay_ns), offset, p.late)
        });
        println!("    {s:3} {:7.2} {:7.2} {state}", ms(second.p50_ns), ms(second.p999_ns));
    }
}

fn main() {
    let usage = || -> ! {
        eprintln!("usage: playout_latency [--seconds N] [--warm-up N] [--link DISTRIBUTION] [--trace]");
        std::process::exit(2)
    };
    let (mut seconds, mut warm_up_s, mut trace) = (24u64, WARM_UP_S, false);
    let mut links = vec!["20±10ms".to_string(), "5±3ms".to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or_else(|| usage());
        match arg.as_str() {
            "--seconds" => seconds = number(),
            "--warm-up" => warm_up_s = number(),
            "--link" => links = vec![args.next().unwrap_or_else(|| usage())],
            "--trace" => trace = true,
            _ => usage(),
        }
    }
    if seconds <= warm_up_s {
        eprintln!("--seconds wants a whole number above the warm-up ({warm_up_s} s)");
        std::process::exit(2)
    }
    let links: Vec<DelayDistribution> = links
        .iter()
        .map(|l| {
            l.parse().unwrap_or_else(|e| {
                eprintln!("playout_latency: --link {l}: {e}");
                std::process::exit(2)
            })
        })
        .collect();
    let duration = Duration::from_secs(seconds);
    let warm_up = Duration::from_secs(warm_up_s);
    let measure = |link, receiver, seed| {
        one_way(link, receiver, duration, warm_up, seed).unwrap_or_else(|e| {
            eprintln!("playout_latency: {e}");
            std::process::exit(1)
        })
    };
    println!(
        "1 kHz stream through the jitter proxy into a SocketPort, {seconds} s per run, first {warm_up_s} s left out"
    );
    println!("  target: with the buffer p99.9 - p50 <= 1 ms and p50 <= the proxy's p99.9 + 2 ms");
    let mut all_buffered_meet = true;
    for (i, link) in links.into_iter().enumerate() {
        let seed = 100 + i as u64;
        let mut plain = measure(link, Receiver::Midisock(None), seed);
        let mut adaptive = measure(link, Receiver::Midisock(Some(DelayMode::adaptive())), seed);
        let settled = adaptive.playout.map_or(0, |stats| stats.delay_ns);
        let fixed_delay = settled.div_ceil(500_000) * 500_000;
        let mut fixed = measure(link, Receiver::Midisock(Some(DelayMode::fixed(fixed_delay))), seed);
        let proxy_p999 = percentile(&mut adaptive.proxy_held_ns, 0.999);
        println!(
            "\nlink {link} (proxy held: p50 {:.3} ms, p99.9 {:.3} ms)",
            percentile(&mut adaptive.proxy_held_ns, 0.5) as f64 / 1e6,
            proxy_p999 as f64 / 1e6
        );
        println!("  {:<22} {:>8} {:>9} {:>9} {:>11}", "ms", "n", "p50", "p99.9", "p99.9-p50");
        let plain_proxy_p999 = percentile(&mut plain.proxy_held_ns, 0.999);
        row("no buffer", &mut plain, plain_proxy_p999, false);
        all_buffered_meet &= row("buffer, auto", &mut adaptive, proxy_p999, true);
        let fixed_proxy_p999 = percentile(&mut fixed.proxy_held_ns, 0.999);
        all_buffered_meet &=
            row(&format!("buffer, fixed {:.1} ms", fixed_delay as f64 / 1e6), &mut fixed, fixed_proxy_p999, true);
        let medians = |r: &OneWay| {
            r.segment_medians_ns.iter().map(|m| format!("{:.1}", *m as f64 / 1e6)).collect::<Vec<_>>().join(" ")
        };
        println!("  medians per 2 s (ms), auto:  {}", medians(&adaptive));
        println!("  medians per 2 s (ms), fixed: {}", medians(&fixed));
        if trace {
            print_seconds("auto", &adaptive);
            print_seconds(&format!("fixed {:.1} ms", fixed_delay as f64 / 1e6), &fixed);
        }
    }
    if !all_buffered_meet {
        println!("\nsome buffered rows miss the target");
        std::process::exit(1);
    }
}
