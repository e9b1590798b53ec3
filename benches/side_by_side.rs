//! The measuring half of `cargo xtask bench-report`: runs midisock and the plain-TCP baseline on
//! the report's workloads and writes raw results for xtask to summarise (mido runs the same
//! workloads from `benches/mido/bench_mido.py`).
//!
//! ```text
//! side_by_side [--out DIR] [--quick]
//! ```
//! With `--out`, writes into DIR: `<workload>_<system>.samples` (one latency in ns per line; the
//! workloads are `rtt` (echo on the other CPU), `rtt1cpu` (echo on the caller's CPU) and
//! `oneway`) and `scalars_rust.txt` (`name value` lines). Without it (a plain `cargo bench`),
//! prints a short table. Under `cargo test --benches` every workload
//! shrinks to a few milliseconds.

mod common;

use common::fanout::{Fanout, Sender};
use common::{
    current_thread_cpu_ns, message_mix, midisock_stream_latency, note, parse_counting, pin_caller, raise_fd_limit,
    raw_tcp_stream_latency, EchoPlacement, MidisockEcho, MidisockStream, Percentiles, RawTcpEcho, RawTcpStream,
    NOTE_BYTES,
};
use midisock::Parser;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long and how often each workload runs.
struct Plan {
    rtt_chunks: usize,
    rtt_chunk: usize,
    stream: Duration,
    throughput_runs: usize,
    throughput_messages: usize,
    fanout_clients: &'static [usize],
    fanout_broadcasts: usize,
    parser_time: Duration,
}

const FULL: Plan = Plan {
    rtt_chunks: 20,
    rtt_chunk: 1000,
    stream: Duration::from_secs(10),
    throughput_runs: 5,
    throughput_messages: 4 << 20,
    fanout_clients: &[1, 10, 100, 1000],
    fanout_broadcasts: 300,
    parser_time: Duration::from_secs(1),
};

const QUICK: Plan = Plan {
    rtt_chunks: 5,
    rtt_chunk: 1000,
    stream: Duration::from_secs(3),
    throughput_runs: 3,
    throughput_messages: 1 << 20,
    fanout_clients: &[1000],
    fanout_broadcasts: 100,
    parser_time: Duration::from_millis(300),
};

const SMOKE: Plan = Plan {
    rtt_chunks: 2,
    rtt_chunk: 10,
    stream: Duration::from_millis(20),
    throughput_runs: 1,
    throughput_messages: 10_000,
    fanout_clients: &[10],
    fanout_broadcasts: 2,
    parser_time: Duration::from_millis(1),
};

struct Results {
    samples: Vec<(String, Vec<u64>)>,
    scalars: String,
}

impl Results {
    fn scalar(&mut self, name: &str, value: f64) {
        writeln!(self.scalars, "{name} {value}").unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.iter().position(|a| a == "--out").map(|i| PathBuf::from(args.get(i + 1).expect("--out DIR")));
    let plan = if !common::bench_mode() {
        &SMOKE
    } else if args.iter().any(|a| a == "--quick") || out.is_none() {
        &QUICK
    } else {
        &FULL
    };
    raise_fd_limit(4096);
    let mut results = Results { samples: Vec::new(), scalars: String::new() };
    round_trips(plan, &mut results);
    one_way(plan, &mut results);
    throughput(plan, &mut results);
    parser(plan, &mut results);
    fanout(plan, &mut results);
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).expect("create output directory");
            for (name, samples) in &results.samples {
                let text: String = samples.iter().map(|s| format!("{s}\n")).collect();
                std::fs::write(dir.join(format!("{name}.samples")), text).expect("write samples");
            }
            std::fs::write(dir.join("scalars_rust.txt"), &results.scalars).expect("write scalars");
            eprintln!("side_by_side: results in {}", dir.display());
        }
        None => {
            print!("{}", Percentiles::header());
            for (name, samples) in &mut results.samples {
                print!("{}", Percentiles::of(samples).row(name));
            }
            print!("{}", results.scalars);
        }
    }
}

/// Both systems interleaved in chunks, so machine noise hits both alike; once with the echo on
/// the other CPU (workload `rtt`) and once on the caller's (`rtt1cpu`).
fn round_trips(plan: &Plan, results: &mut Results) {
    round_trip(plan, results, EchoPlacement::OtherCpu, "rtt");
    round_trip(plan, results, EchoPlacement::SameCpu, "rtt1cpu");
}

fn round_trip(plan: &Plan, results: &mut Results, placement: EchoPlacement, workload: &str) {
    eprintln!("side_by_side: round trip, echo {placement:?}");
    let _pinned = pin_caller();
    let midisock = MidisockEcho::start(placement);
    let mut raw = RawTcpEcho::start(placement);
    let message = note();
    for _ in 0..plan.rtt_chunk {
        midisock.round_trip(&message);
        raw.round_trip(&NOTE_BYTES);
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..plan.rtt_chunks {
        ours.extend((0..plan.rtt_chunk).map(|_| midisock.round_trip(&message)));
        theirs.extend((0..plan.rtt_chunk).map(|_| raw.round_trip(&NOTE_BYTES)));
    }
    results.samples.push((format!("{workload}_midisock"), ours));
    results.samples.push((format!("{workload}_raw_tcp"), theirs));
}

fn one_way(plan: &Plan, results: &mut Results) {
    eprintln!("side_by_side: 1 kHz stream, {:?} per system", plan.stream);
    results.samples.push(("oneway_midisock".into(), midisock_stream_latency(1000, plan.stream)));
    results.samples.push(("oneway_raw_tcp".into(), raw_tcp_stream_latency(1000, plan.stream)));
}

/// The median of several runs, in messages per second.
fn throughput(plan: &Plan, results: &mut Results) {
    eprintln!("side_by_side: stream throughput");
    let median = |mut rates: Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let midisock = MidisockStream::start(4096);
    midisock.run(plan.throughput_messages / 4);
    let rates = (0..plan.throughput_runs)
        .map(|_| plan.throughput_messages as f64 / midisock.run(plan.throughput_messages).as_secs_f64())
        .collect();
    results.scalar("stream_msgs_per_s.midisock", median(rates));
    drop(midisock);
    let mut raw = RawTcpStream::start(4096);
    raw.run(plan.throughput_messages / 4);
    let rates = (0..plan.throughput_runs)
        .map(|_| {
            let (messages, took) = raw.run(plan.throughput_messages);
            messages as f64 / took.as_secs_f64()
        })
        .collect();
    results.scalar("stream_msgs_per_s.raw_tcp", median(rates));
}

/// Parser alone on the message mix, bytes per second: the median of several timed runs, like
/// the stream throughput, so a burst of noise on the shared machine moves one run, not the result.
///
/// NOTE: timed by the thread's CPU time, not the wall clock: on a machine shared with other
/// work, wall-clock time counts the slices other processes ran in, and measured their load
/// rather than the parser (a report on the shared 2-CPU VM gave 0.67 GB/s by the wall clock for
/// the same machine code that runs at 1.23 GB/s per CPU-second there). Both are reported; on an
/// idle machine they agree.
fn parser(plan: &Plan, results: &mut Results) {
    const RUNS: u32 = 9;
    let mut bytes = Vec::new();
    for message in message_mix(24 * 1024) {
        message.encode_to_vec(&mut bytes);
    }
    let budget_ns = (plan.parser_time / RUNS).as_nanos() as u64;
    let mut parser = Parser::new();
    let (mut per_cpu, mut per_wall): (Vec<f64>, Vec<f64>) = (0..RUNS)
        .map(|_| {
            let mut fed = 0usize;
            let (wall, cpu) = (Instant::now(), current_thread_cpu_ns());
            while current_thread_cpu_ns() - cpu < budget_ns || fed == 0 {
                parse_counting(&mut parser, &bytes);
                fed += bytes.len();
            }
            let cpu_s = (current_thread_cpu_ns() - cpu) as f64 / 1e9;
            (fed as f64 / cpu_s, fed as f64 / wall.elapsed().as_secs_f64())
        })
        .unzip();
    per_cpu.sort_by(f64::total_cmp);
    per_wall.sort_by(f64::total_cmp);
    results.scalar("parser_bytes_per_s.midisock", per_cpu[per_cpu.len() / 2]);
    results.scalar("parser_wall_bytes_per_s.midisock", per_wall[per_wall.len() / 2]);
}

fn fanout(plan: &Plan, results: &mut Results) {
    for (system, sender) in [("midisock", Sender::Midisock), ("raw_tcp", Sender::PlainTcp)] {
        for &clients in plan.fanout_clients {
            eprintln!("side_by_side: fan-out to {clients} clients ({system})");
            let fixture = Fanout::start(clients, sender);
            let mut run = fixture.steady(plan.fanout_broadcasts, Duration::from_millis(10));
            let p = Percentiles::of(&mut run.latencies);
            results.scalar(&format!("fanout_{clients}_p50_ns.{system}"), p.p50 as f64);
            results.scalar(&format!("fanout_{clients}_p99_ns.{system}"), p.p99 as f64);
            results.scalar(&format!("fanout_{clients}_max_ns.{system}"), p.max as f64);
            results.scalar(
                &format!("fanout_{clients}_server_cpu_pct.{system}"),
                run.server_cpu_ns as f64 / run.wall_ns as f64 * 100.0,
            );
        }
    }
}
