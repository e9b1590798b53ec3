//! The jitter rows of `cargo xtask bench-report`: one-way latency of a 1 kHz stream through a
//! jittery link (`midisock_testkit::JitterProxy`, 20 ± 10 ms and 5 ± 3 ms, uniform, in order),
//! received by plain TCP, by mido 1.3.3, and by a midisock port without and with its jitter
//! buffer (auto). Latency = when the receiver had the message − when the sender wrote it (one
//! machine, one clock; see `midisock_testkit::latency`).
//!
//! ```text
//! jitter_link [--out DIR] [--python PYTHON] [--quick]
//! ```
//! With `--out`, writes `jitter20_<system>.samples` and `jitter5_<system>.samples` (one latency
//! in ns per line) into DIR; without it prints a table. mido runs only with `--python` (a Python
//! with mido 1.3.3, `benches/mido/jitter_receive.py`). Under `cargo test --benches` each run
//! shrinks to half a second.

mod common;

use common::Percentiles;
use midisock::timing::DelayMode;
use midisock_testkit::latency::{one_way, one_way_to_process, OneWay, Receiver};
use midisock_testkit::DelayDistribution;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The links: workload name, distribution.
const LINKS: [(&str, &str); 2] = [("jitter20", "20±10ms"), ("jitter5", "5±3ms")];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).map(|i| args.get(i + 1).cloned().expect(flag));
    let out = value("--out").map(PathBuf::from);
    let python = value("--python");
    let (run, warm_up) = if !common::bench_mode() {
        (Duration::from_millis(500), Duration::ZERO)
    } else if args.iter().any(|a| a == "--quick") {
        (Duration::from_secs(8), Duration::from_secs(2))
    } else {
        // The adaptive buffer chooses its delay about 3 s in (docs/timing.md): the first 10 s of
        // every receiver's run are left out, so each row shows the steady state.
        (Duration::from_secs(30), Duration::from_secs(10))
    };
    let mut results: Vec<(String, Vec<u64>)> = Vec::new();
    for (i, (workload, link)) in LINKS.into_iter().enumerate() {
        let link: DelayDistribution = link.parse().expect("a valid link");
        let seed = 300 + i as u64;
        let mut measure = |system: &str, measured: std::io::Result<OneWay>| {
            let measured = measured.unwrap_or_else(|e| panic!("jitter_link: {workload} {system}: {e}"));
            eprintln!("jitter_link: {workload} {system}: {} messages", measured.latencies_ns.len());
            results.push((format!("{workload}_{system}"), measured.latencies_ns));
        };
        measure("raw_tcp", one_way(link, Receiver::RawTcp, run, warm_up, seed));
        measure("midisock", one_way(link, Receiver::Midisock(None), run, warm_up, seed));
        measure("midisock_buffer", one_way(link, Receiver::Midisock(Some(DelayMode::adaptive())), run, warm_up, seed));
        if let Some(python) = &python {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/mido/jitter_receive.py");
            let mut command = Command::new(python);
            command.arg(script);
            measure("mido", one_way_to_process(link, &mut command, run, warm_up, seed));
        }
    }
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).expect("create output directory");
            for (name, samples) in &results {
                let text: String = samples.iter().map(|s| format!("{s}\n")).collect();
                std::fs::write(dir.join(format!("{name}.samples")), text).expect("write samples");
            }
            eprintln!("jitter_link: results in {}", dir.display());
        }
        None => {
            print!("{}", Percentiles::header());
            for (name, samples) in &mut results {
                print!("{}", Percentiles::of(samples).row(name));
            }
        }
    }
}
