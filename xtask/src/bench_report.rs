//! `cargo xtask bench-report [--quick]`: midisock, a plain-TCP baseline and mido 1.3.3 side by
//! side on the same workloads, summarised into `target/bench-report/`:
//!
//! - `summary.json` — percentiles and rates per system (`rtt_p50_ns`, `rtt_p99_ns`,
//!   `stream_msgs_per_s`, `jitter_p999_minus_p50_ns`, ...), midisock-only figures (parser, fan-out)
//!   and every performance target of docs/performance.md with its measured ratio;
//! - `summary.md` — the same as Markdown tables (a full run publishes it to docs/bench/, which
//!   the README links);
//! - `*_cdf.svg`, `*_hist.svg` — latency CDF and histogram per system, per workload;
//! - `raw/` — the samples (`<workload>_<system>.samples`, ns per line) and scalars they came from.
//!
//! The Rust systems are measured by the `side_by_side` bench (benches/side_by_side.rs, built with
//! the bench profile); mido by `benches/mido/bench_mido.py` in the venv `env::python_with_mido`
//! provides; the Python package by `bindings/python/bench/bench_python.py` in the same venv, with
//! the package built by `python::python_with_package`. Workloads: round trip of a 3-byte note_on echoed by a peer; one-way latency of a
//! steady 1 kHz stream (send time → receive timestamp, CLOCK_MONOTONIC in one process); stream
//! throughput (messages sent in batches, each one parsed and received). `--quick` shortens every
//! workload (3 s streams instead of 10 s, fewer round trips, fan-out to 1,000 clients only).

#[path = "bench_plots.rs"]
mod plots;

use crate::env;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The systems compared, in table order ("python": the midisock Python package).
pub const SYSTEMS: [&str; 4] = ["midisock", "raw_tcp", "mido", "python"];

/// Latency workloads, with the title their plots and tables use.
pub const LATENCY_WORKLOADS: [(&str, &str); 3] = [
    ("rtt", "Round trip, one 3-byte message, echo on another CPU"),
    ("rtt1cpu", "Round trip, one 3-byte message, echo on the caller's CPU"),
    ("oneway", "One-way latency, 1 kHz stream"),
];

/// The jitter rows (benches/jitter_link.rs): one-way latency of a 1 kHz stream through
/// `JitterProxy`, per link, with the title their plots use.
pub const JITTER_LINKS: [(&str, &str); 2] = [
    ("jitter20", "One-way latency, 1 kHz stream over a 20 ± 10 ms link"),
    ("jitter5", "One-way latency, 1 kHz stream over a 5 ± 3 ms link"),
];

/// The receivers of the jitter rows, in table order.
pub const JITTER_SYSTEMS: [&str; 4] = ["raw_tcp", "mido", "midisock", "midisock_buffer"];

/// Order statistics of one sample set, nanoseconds.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Stats {
    /// Nearest-rank percentiles of `sorted` (ascending).
    pub fn of(sorted: &[u64]) -> Stats {
        if sorted.is_empty() {
            return Stats::default();
        }
        let rank = |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Stats { p50: rank(0.50), p99: rank(0.99), p999: rank(0.999), max: sorted[sorted.len() - 1] }
    }

    pub fn jitter(&self) -> u64 {
        self.p999.saturating_sub(self.p50)
    }
}

/// Everything measured in one run.
struct Measured {
    /// (workload, system) → sorted samples.
    samples: BTreeMap<(String, String), Vec<u64>>,
    /// `name.system` → value, from the scalars files.
    scalars: BTreeMap<String, f64>,
}

impl Measured {
    fn stats(&self, workload: &str, system: &str) -> Option<Stats> {
        self.samples.get(&(workload.to_string(), system.to_string())).map(|s| Stats::of(s))
    }

    fn scalar(&self, name: &str, system: &str) -> Option<f64> {
        self.scalars.get(&format!("{name}.{system}")).copied()
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let (mut quick, mut replot) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--replot" => replot = true,
            other => {
                return Err(format!(
                    "bench-report: unknown argument {other:?} (usage: bench-report [--quick | --replot])"
                ))
            }
        }
    }
    let out = env::target_dir().join("bench-report");
    let raw = out.join("raw");
    if replot {
        // The last run's samples drawn again (after a change to the plots), and published with
        // that run's own summary: nothing is measured, nothing is edited by hand.
        if !out.join("summary.md").is_file() {
            return Err(format!("bench-report --replot: no earlier run in {}", out.display()));
        }
        draw_plots(&out, &load(&raw)?)?;
        return publish(&out);
    }
    if raw.exists() {
        std::fs::remove_dir_all(&raw).map_err(|e| format!("cannot clear {}: {e}", raw.display()))?;
    }
    std::fs::create_dir_all(&raw).map_err(|e| format!("cannot create {}: {e}", raw.display()))?;

    let python = env::python_with_mido()?;
    let load_before = load_average();
    let started = std::time::Instant::now();
    measure_rust(&raw, quick)?;
    measure_mido(&python, &raw, quick)?;
    measure_python(&raw, quick)?;
    measure_jitter(&python, &raw, quick)?;
    let measured = load(&raw)?;
    let machine = Machine { load: format!("{load_before} before, {} after", load_average()), ..machine() };

    let json = summary_json(&measured, &machine, quick);
    write(&out.join("summary.json"), &json)?;
    let markdown = summary_markdown(&measured, &machine, quick);
    write(&out.join("summary.md"), &markdown)?;
    draw_plots(&out, &measured)?;
    print!("{markdown}");
    eprintln!("xtask: bench report in {} ({:.0} s of measuring)", out.display(), started.elapsed().as_secs_f64());
    if !quick {
        publish(&out)?;
    }
    Ok(())
}

/// The CDF and histogram plots of every latency workload, and the CDF of every jitter link.
fn draw_plots(out: &Path, measured: &Measured) -> Result<(), String> {
    for (workload, title) in LATENCY_WORKLOADS {
        let series: Vec<(&str, &[u64])> = SYSTEMS
            .iter()
            .filter_map(|&system| {
                measured.samples.get(&(workload.to_string(), system.to_string())).map(|s| (system, s.as_slice()))
            })
            .collect();
        plots::cdf(&out.join(format!("{workload}_cdf.svg")), title, &series)?;
        plots::histograms(&out.join(format!("{workload}_hist.svg")), title, &series)?;
    }
    for (workload, title) in JITTER_LINKS {
        let series: Vec<(&str, &[u64])> = JITTER_SYSTEMS
            .iter()
            .filter_map(|&system| {
                measured.samples.get(&(workload.to_string(), system.to_string())).map(|s| (system, s.as_slice()))
            })
            .collect();
        if !series.is_empty() {
            plots::cdf(&out.join(format!("{workload}_cdf.svg")), title, &series)?;
        }
    }
    Ok(())
}

/// A full run's summary and plots are what the README links to: copied into `docs/bench/`, so
/// the published tables are always one run's output, never edited by hand. A `--quick` run is
/// for checking a change and publishes nothing.
fn publish(out: &Path) -> Result<(), String> {
    let docs = env::repo_root().join("docs").join("bench");
    std::fs::create_dir_all(&docs).map_err(|e| format!("cannot create {}: {e}", docs.display()))?;
    let entries = std::fs::read_dir(out).map_err(|e| format!("cannot read {}: {e}", out.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let published = path.extension().is_some_and(|ext| ext == "svg" || ext == "md" || ext == "json");
        if published && path.is_file() {
            let to = docs.join(path.file_name().expect("a file has a name"));
            std::fs::copy(&path, &to)
                .map_err(|e| format!("cannot copy {} to {}: {e}", path.display(), to.display()))?;
        }
    }
    eprintln!("xtask: published the summary and plots to {}", docs.display());
    Ok(())
}

/// The 1-minute load average (`/proc/loadavg`), so a table says how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// midisock and plain TCP: the `side_by_side` bench, optimised, writing into `raw`.
fn measure_rust(raw: &Path, quick: bool) -> Result<(), String> {
    let mut command = Command::new(cargo());
    command
        .current_dir(env::repo_root())
        .args(["bench", "--quiet", "-p", "midisock-suite", "--bench", "side_by_side", "--", "--out"])
        .arg(raw);
    if quick {
        command.arg("--quick");
    }
    env::run(&mut command)
}

/// The jitter rows: the `jitter_link` bench (plain TCP, midisock without and with the buffer,
/// and mido through `python`), optimised, writing into `raw`.
fn measure_jitter(python: &Path, raw: &Path, quick: bool) -> Result<(), String> {
    let mut command = Command::new(cargo());
    command
        .current_dir(env::repo_root())
        .args(["bench", "--quiet", "-p", "midisock-suite", "--bench", "jitter_link", "--", "--out"])
        .arg(raw)
        .arg("--python")
        .arg(python);
    if quick {
        command.arg("--quick");
    }
    env::run(&mut command)
}

/// The jitter rows as a Markdown table: per link and receiver, p50, p99.9 and their difference.
fn jitter_markdown(m: &Measured) -> String {
    let mut out = String::new();
    let labels = [
        ("raw_tcp", "plain TCP"),
        ("mido", "mido 1.3.3"),
        ("midisock", "midisock"),
        ("midisock_buffer", "midisock, jitter buffer auto"),
    ];
    let rows: Vec<String> = JITTER_LINKS
        .iter()
        .flat_map(|&(workload, title)| {
            let link = title.rsplit_once(" over a ").map_or(workload, |(_, link)| link);
            labels.iter().filter_map(move |&(system, label)| {
                let stats = m.stats(workload, system)?;
                Some(format!(
                    "| {link} | {label} | {} | {} | {} |",
                    human(Some(stats.p50 as f64), Unit::Nanoseconds),
                    human(Some(stats.p999 as f64), Unit::Nanoseconds),
                    human(Some(stats.jitter() as f64), Unit::Nanoseconds),
                ))
            })
        })
        .collect();
    if rows.is_empty() {
        return out;
    }
    out.push_str(
        "\n| One-way, 1 kHz, jittery link | receiver | p50 | p99.9 | p99.9 − p50 |\n|---|---|---:|---:|---:|\n",
    );
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
    out.push_str(
        "\nThe link is `JitterProxy` (uniform delay, in order, like TCP over Wi-Fi). Latency: the sender's write \
         to the moment the receiver has the message (plain TCP: its read; mido: receive() returning; midisock: \
         receive_timeout_stamped() returning), one machine, one clock; 30 s per receiver with the first 10 s \
         (the adaptive buffer's warm-up) left out (`--quick`: 8 s, 2 s left out). The jitter buffer trades a \
         fixed extra delay for the spread (docs/timing.md); plots: jitter20_cdf.svg, jitter5_cdf.svg.\n",
    );
    out
}

/// mido 1.3.3: the same workloads from Python.
fn measure_mido(python: &Path, raw: &Path, quick: bool) -> Result<(), String> {
    let (rtt, seconds, messages) = if quick { ("3000", "3", "30000") } else { ("20000", "10", "200000") };
    env::run(
        Command::new(python)
            .arg(env::repo_root().join("benches").join("mido").join("bench_mido.py"))
            .arg("--out")
            .arg(raw)
            .args(["--rtt", rtt, "--stream-seconds", seconds, "--throughput", messages]),
    )
}

/// The midisock Python package: the same workloads as mido, from Python, with mido.Message
/// objects on both ends (bindings/python/bench/bench_python.py).
fn measure_python(raw: &Path, quick: bool) -> Result<(), String> {
    let python = crate::python::python_with_package()?;
    let (rtt, seconds, messages) = if quick { ("3000", "3", "300000") } else { ("20000", "10", "2000000") };
    env::run(
        Command::new(python)
            .arg(env::repo_root().join("bindings").join("python").join("bench").join("bench_python.py"))
            .arg("--out")
            .arg(raw)
            .args(["--rtt", rtt, "--stream-seconds", seconds, "--throughput", messages]),
    )
}

fn load(raw: &Path) -> Result<Measured, String> {
    let mut measured = Measured { samples: BTreeMap::new(), scalars: BTreeMap::new() };
    let entries = std::fs::read_dir(raw).map_err(|e| format!("cannot read {}: {e}", raw.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let bad = |line: &str| format!("{}: bad line {line:?}", path.display());
        if let Some(stem) = name.strip_suffix(".samples") {
            let (workload, system) = stem.split_once('_').ok_or_else(|| format!("unexpected file {name}"))?;
            let mut samples =
                text.lines().map(|l| l.trim().parse::<u64>().map_err(|_| bad(l))).collect::<Result<Vec<_>, _>>()?;
            samples.sort_unstable();
            measured.samples.insert((workload.to_string(), system.to_string()), samples);
        } else if name.starts_with("scalars") {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let (key, value) = line.split_once(' ').ok_or_else(|| bad(line))?;
                measured.scalars.insert(key.to_string(), value.trim().parse().map_err(|_| bad(line))?);
            }
        }
    }
    Ok(measured)
}

/// The machine the numbers come from: `(nproc, CPU model, kernel)`.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// The 1-minute load average before and after measuring.
    pub load: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model,
        kernel,
        load: String::new(),
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A comparison metric: name in the JSON, label in the table, and where its value comes from.
struct Metric {
    key: &'static str,
    label: &'static str,
    source: Source,
}

/// Where a metric's value per system comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A percentile of a latency workload's samples, in nanoseconds.
    Latency(&'static str, Percentile),
    /// p99.9 − p50 of a latency workload's samples, in nanoseconds.
    Spread(&'static str),
    /// A scalar the measuring programs wrote, per second.
    Rate(&'static str),
}

#[derive(Clone, Copy)]
enum Percentile {
    P50,
    P99,
    P999,
    Max,
}

#[derive(Clone, Copy)]
enum Unit {
    Nanoseconds,
    PerSecond,
}

impl Metric {
    const fn new(key: &'static str, label: &'static str, source: Source) -> Metric {
        Metric { key, label, source }
    }

    fn get(&self, m: &Measured, system: &str) -> Option<f64> {
        match self.source {
            Source::Latency(workload, percentile) => m.stats(workload, system).map(|s| {
                (match percentile {
                    Percentile::P50 => s.p50,
                    Percentile::P99 => s.p99,
                    Percentile::P999 => s.p999,
                    Percentile::Max => s.max,
                }) as f64
            }),
            Source::Spread(workload) => m.stats(workload, system).map(|s| s.jitter() as f64),
            Source::Rate(name) => m.scalar(name, system),
        }
    }

    fn unit(&self) -> Unit {
        match self.source {
            Source::Rate(_) => Unit::PerSecond,
            Source::Latency(..) | Source::Spread(_) => Unit::Nanoseconds,
        }
    }
}

const METRICS: [Metric; 11] = {
    use Percentile::*;
    use Source::*;
    [
        Metric::new("rtt_p50_ns", "Round trip p50", Latency("rtt", P50)),
        Metric::new("rtt_p99_ns", "Round trip p99", Latency("rtt", P99)),
        Metric::new("rtt_p999_ns", "Round trip p99.9", Latency("rtt", P999)),
        Metric::new("rtt1cpu_p50_ns", "Round trip p50, one CPU", Latency("rtt1cpu", P50)),
        Metric::new("rtt1cpu_p99_ns", "Round trip p99, one CPU", Latency("rtt1cpu", P99)),
        Metric::new("oneway_p50_ns", "1 kHz one-way p50", Latency("oneway", P50)),
        Metric::new("oneway_p99_ns", "1 kHz one-way p99", Latency("oneway", P99)),
        Metric::new("oneway_p999_ns", "1 kHz one-way p99.9", Latency("oneway", P999)),
        Metric::new("oneway_max_ns", "1 kHz one-way max", Latency("oneway", Max)),
        Metric::new("jitter_p999_minus_p50_ns", "Jitter (1 kHz p99.9 − p50)", Spread("oneway")),
        Metric::new("stream_msgs_per_s", "Stream throughput", Rate("stream_msgs_per_s")),
    ]
};

/// A performance target of docs/performance.md: measured value, limit, met or not.
struct Target {
    name: &'static str,
    measured: Option<f64>,
    limit: f64,
    /// True when measured must be at most the limit (ratios, latency), false for at least.
    at_most: bool,
    unit: &'static str,
}

impl Target {
    fn met(&self) -> Option<bool> {
        self.measured.map(|m| if self.at_most { m <= self.limit } else { m >= self.limit })
    }
}

fn targets(m: &Measured) -> Vec<Target> {
    let ratio = |metric: &str| {
        let metric = METRICS.iter().find(|x| x.key == metric).expect("known metric");
        Some(metric.get(m, "midisock")? / metric.get(m, "raw_tcp")?)
    };
    let python_vs = |metric: &str, other: &str| {
        let metric = METRICS.iter().find(|x| x.key == metric).expect("known metric");
        Some(metric.get(m, "python")? / metric.get(m, other)?)
    };
    vec![
        Target {
            name: "Python round trip p50 vs Rust API",
            measured: python_vs("rtt_p50_ns", "midisock"),
            limit: 1.5,
            at_most: true,
            unit: "×",
        },
        Target {
            name: "Python round trip p50 vs Rust API, one CPU",
            measured: python_vs("rtt1cpu_p50_ns", "midisock"),
            limit: 1.5,
            at_most: true,
            unit: "×",
        },
        Target {
            name: "Python round trip p50: mido ÷ Python",
            measured: python_vs("rtt_p50_ns", "mido").map(|r| 1.0 / r),
            limit: 20.0,
            at_most: false,
            unit: "×",
        },
        Target {
            name: "Python stream throughput vs mido",
            measured: python_vs("stream_msgs_per_s", "mido"),
            limit: 50.0,
            at_most: false,
            unit: "×",
        },
        Target {
            name: "Round trip p50 vs plain TCP",
            measured: ratio("rtt_p50_ns"),
            limit: 1.10,
            at_most: true,
            unit: "×",
        },
        Target {
            name: "Round trip p99 vs plain TCP",
            measured: ratio("rtt_p99_ns"),
            limit: 1.25,
            at_most: true,
            unit: "×",
        },
        Target {
            name: "Round trip p50 vs plain TCP, one CPU",
            measured: ratio("rtt1cpu_p50_ns"),
            limit: 1.10,
            at_most: true,
            unit: "×",
        },
        Target {
            name: "Jitter (p99.9 − p50, 1 kHz) vs plain TCP",
            measured: ratio("jitter_p999_minus_p50_ns"),
            limit: 1.2,
            at_most: true,
            unit: "×",
        },
        Target {
            name: "Messages/s parsed end to end",
            measured: m.scalar("stream_msgs_per_s", "midisock").map(|v| v / 1e6),
            limit: 50.0,
            at_most: false,
            unit: "M/s",
        },
        Target {
            name: "1,000-client fan-out p99",
            measured: m.scalar("fanout_1000_p99_ns", "midisock").map(|v| v / 1e6),
            limit: 5.0,
            at_most: true,
            unit: "ms",
        },
        Target {
            name: "Parser throughput (message mix)",
            measured: m.scalar("parser_bytes_per_s", "midisock").map(|v| v / 1e9),
            limit: 1.0,
            at_most: false,
            unit: "GB/s",
        },
    ]
}

fn json_number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{v:.0}")
            } else {
                format!("{v:.4}")
            }
        }
        _ => "null".into(),
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn summary_json(m: &Measured, machine: &Machine, quick: bool) -> String {
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"mode\": {},", json_string(if quick { "quick" } else { "full" }));
    let _ = writeln!(
        out,
        "  \"machine\": {{\"nproc\": {}, \"cpu_model\": {}, \"kernel\": {}, \"load_average\": {}}},",
        machine.cpus,
        json_string(&machine.cpu_model),
        json_string(&machine.kernel),
        json_string(&machine.load)
    );
    for metric in &METRICS {
        let values: Vec<String> =
            SYSTEMS.iter().map(|&s| format!("{}: {}", json_string(s), json_number(metric.get(m, s)))).collect();
        let _ = writeln!(out, "  {}: {{{}}},", json_string(metric.key), values.join(", "));
    }
    let samples: Vec<String> = m
        .samples
        .iter()
        .map(|((workload, system), s)| format!("{}: {}", json_string(&format!("{workload}.{system}")), s.len()))
        .collect();
    let _ = writeln!(out, "  \"sample_counts\": {{{}}},", samples.join(", "));
    let only: Vec<String> = m
        .scalars
        .iter()
        .filter_map(|(key, value)| key.strip_suffix(".midisock").map(|k| (k, value)))
        .filter(|(key, _)| *key != "stream_msgs_per_s")
        .map(|(key, value)| format!("{}: {}", json_string(key), json_number(Some(*value))))
        .collect();
    let _ = writeln!(out, "  \"midisock_only\": {{{}}},", only.join(", "));
    let jitter: Vec<String> = JITTER_LINKS
        .iter()
        .flat_map(|&(workload, _)| JITTER_SYSTEMS.iter().map(move |&system| (workload, system)))
        .filter_map(|(workload, system)| {
            let stats = m.stats(workload, system)?;
            Some(format!(
                "{}: {{\"p50_ns\": {}, \"p999_ns\": {}, \"p999_minus_p50_ns\": {}}}",
                json_string(&format!("{workload}.{system}")),
                stats.p50,
                stats.p999,
                stats.jitter()
            ))
        })
        .collect();
    let _ = writeln!(out, "  \"jitter_links\": {{{}}},", jitter.join(", "));
    let targets: Vec<String> = targets(m)
        .iter()
        .map(|t| {
            format!(
                "    {{\"target\": {}, \"measured\": {}, \"limit\": {}, \"at_most\": {}, \"unit\": {}, \"met\": {}}}",
                json_string(t.name),
                json_number(t.measured),
                json_number(Some(t.limit)),
                t.at_most,
                json_string(t.unit),
                t.met().map_or("null".into(), |b| b.to_string())
            )
        })
        .collect();
    let _ = writeln!(out, "  \"targets\": [\n{}\n  ]", targets.join(",\n"));
    out.push_str("}\n");
    out
}

fn human(value: Option<f64>, unit: Unit) -> String {
    match (value, unit) {
        (None, _) => "–".into(),
        (Some(ns), Unit::Nanoseconds) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        (Some(ns), Unit::Nanoseconds) => format!("{:.1} µs", ns / 1e3),
        (Some(rate), Unit::PerSecond) if rate >= 1e6 => format!("{:.1} M/s", rate / 1e6),
        (Some(rate), Unit::PerSecond) => format!("{:.1} k/s", rate / 1e3),
    }
}

fn summary_markdown(m: &Measured, machine: &Machine, quick: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `cargo xtask bench-report{}` on {} CPUs ({}), Linux {}; load average {}.\n",
        if quick { " --quick" } else { "" },
        machine.cpus,
        machine.cpu_model,
        machine.kernel,
        machine.load
    );
    out.push_str(
        "| | midisock | plain TCP | mido 1.3.3 | midisock (Python) | midisock / plain TCP |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for metric in &METRICS {
        let values: Vec<Option<f64>> = SYSTEMS.iter().map(|&s| metric.get(m, s)).collect();
        let ratio = match (values[0], values[1]) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        let cells: Vec<String> = values.iter().map(|&v| human(v, metric.unit())).collect();
        let _ = writeln!(out, "| {} | {} | {} |", metric.label, cells.join(" | "), ratio);
    }
    out.push_str(
        "\nPlain TCP sends the same bytes with TCP_NODELAY; its stream throughput is bytes read ÷ the mix's \
         bytes per message, unparsed (the wire's ceiling). Round trips: 3-byte note_on echoed by a peer \
         thread pinned to the other CPU (\"Round trip\": every round trip wakes a halted CPU twice, which \
         costs about 25 µs each way on this VM) or to the caller's (\"one CPU\": the software's own \
         cost). One-way: send time to receive timestamp, same process, same clock. midisock (Python): \
         the Python package with mido.Message objects on both ends; its round trip's echo is a second \
         Python process (mido's too), placed on the same CPUs, its one-way figure ends when receive() returns, its stream (both ends in one \
         process, like mido's) is sent with send_many() and read with receive_batch().\n",
    );
    let fanout: Vec<(u64, f64, f64, Option<f64>)> = [1u64, 10, 100, 1000]
        .iter()
        .filter_map(|&n| {
            let p99 = m.scalar(&format!("fanout_{n}_p99_ns"), "midisock")?;
            let cpu = m.scalar(&format!("fanout_{n}_server_cpu_pct"), "midisock").unwrap_or(f64::NAN);
            Some((n, p99, cpu, m.scalar(&format!("fanout_{n}_p99_ns"), "raw_tcp")))
        })
        .collect();
    if !fanout.is_empty() {
        out.push_str(
            "\n| Broadcast fan-out (100 Hz) | midisock p99 | midisock server CPU | plain TCP p99 | midisock / plain TCP |\n\
             |---|---:|---:|---:|---:|\n",
        );
        for (n, p99, cpu, raw) in fanout {
            let ratio = raw.map_or("–".into(), |raw| format!("{:.2}×", p99 / raw));
            let _ = writeln!(
                out,
                "| {n} clients | {} | {cpu:.1} % | {} | {ratio} |",
                human(Some(p99), Unit::Nanoseconds),
                human(raw, Unit::Nanoseconds),
            );
        }
        out.push_str(
            "\nPlain TCP fan-out: the same 3 bytes written to each accepted socket in turn (TCP_NODELAY), \
             read by the same single reader thread: the floor for any TCP server on this machine.\n",
        );
    }
    out.push_str(&jitter_markdown(m));
    out.push_str("\n| Target (docs/performance.md) | measured | limit | met |\n|---|---:|---:|:---:|\n");
    for t in targets(m) {
        let measured = t.measured.map_or("–".into(), |v| format!("{v:.2} {}", t.unit));
        let limit = format!("{} {} {}", if t.at_most { "≤" } else { "≥" }, t.limit, t.unit);
        let met = match t.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(out, "| {} | {measured} | {limit} | {met} |", t.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured_with_jitter_rows() -> Measured {
        let mut samples = BTreeMap::new();
        for (workload, base) in [("jitter20", 25_000_000u64), ("jitter5", 6_000_000)] {
            for (i, system) in JITTER_SYSTEMS.iter().enumerate() {
                let spread = if *system == "midisock_buffer" { 500_000 } else { 9_000_000 };
                let values: Vec<u64> = (0..1000u64).map(|k| base + i as u64 + k * spread / 1000).collect();
                samples.insert((workload.to_string(), system.to_string()), values);
            }
        }
        Measured { samples, scalars: BTreeMap::new() }
    }

    #[test]
    fn the_jitter_table_has_a_row_per_link_and_receiver_and_the_plots_are_written() {
        let measured = measured_with_jitter_rows();
        let table = jitter_markdown(&measured);
        assert_eq!(table.lines().filter(|l| l.starts_with("| 20 ± 10 ms link |")).count(), 4, "{table}");
        assert_eq!(table.lines().filter(|l| l.starts_with("| 5 ± 3 ms link |")).count(), 4, "{table}");
        assert!(table.contains("| 20 ± 10 ms link | midisock, jitter buffer auto | 25.25 ms | 25.50 ms | 249.5 µs |"));
        assert!(jitter_markdown(&Measured { samples: BTreeMap::new(), scalars: BTreeMap::new() }).is_empty());
        let machine = Machine { cpus: 2, cpu_model: "test".into(), kernel: "test".into(), load: "0.1".into() };
        let json = summary_json(&measured, &machine, true);
        assert!(json.contains("\"jitter20.midisock_buffer\": {\"p50_ns\": 25249503, \"p999_ns\": 25499003"), "{json}");
        let dir = std::env::temp_dir().join(format!("midisock-jitter-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (workload, title) = JITTER_LINKS[0];
        let series: Vec<(&str, &[u64])> = JITTER_SYSTEMS
            .iter()
            .map(|&s| (s, measured.samples[&(workload.to_string(), s.to_string())].as_slice()))
            .collect();
        let path = dir.join("jitter20_cdf.svg");
        plots::cdf(&path, title, &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("jitter buffer (auto)") && svg.contains("mido 1.3.3"));
        // A link's latencies span less than a decade: a linear axis in ms, with numbers on it
        // (a log axis labels only powers of ten, and had none here).
        assert!(svg.contains("latency (ms)"), "{svg}");
        assert!(axis_numbers(&svg).iter().filter(|&&v| v > 1.0).count() >= 3, "{:?}", axis_numbers(&svg));
        // Round trips span decades (µs to mido's ms): a log axis, labelled at the powers of ten.
        let wide: Vec<u64> = (0..1000).map(|i| 10_000 + i * 5_000).collect();
        plots::cdf(&path, "round trip", &[("midisock", &wide)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("latency (µs, log scale)"), "{svg}");
        assert!(axis_numbers(&svg).contains(&100.0) && axis_numbers(&svg).contains(&1000.0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The numbers written in an SVG's text elements (the axes' labels).
    fn axis_numbers(svg: &str) -> Vec<f64> {
        svg.split("<text").filter_map(|t| t.split_once('>')?.1.split('<').next()?.trim().parse().ok()).collect()
    }
}
