//! Broadcast fan-out from one `PortServer` to 1, 10, 100 and 1,000 plain TCP clients (read by one
//! mio thread), next to a plain-TCP server writing the same bytes to each socket in turn (the
//! floor on this machine). Target: 1,000 clients, p99 ≤ 5 ms.
//!
//! 1. Criterion group `fanout`: one broadcast until every client has read it.
//! 2. Then a steady 100 Hz broadcast for 3 s per sender and client count: p50/p99/p99.9/max over
//!    every (client, message) and the sender's CPU time, written to
//!    `target/criterion-extra/fanout.txt`. Under `cargo test --benches`: 3 broadcasts.

mod common;

use common::fanout::{Fanout, Sender};
use common::{raise_fd_limit, write_extra, Percentiles};
use criterion::{criterion_group, BenchmarkId, Criterion};
use std::time::Duration;

const CLIENTS: [usize; 4] = [1, 10, 100, 1000];
const SENDERS: [(&str, Sender); 2] = [("midisock", Sender::Midisock), ("plain_tcp", Sender::PlainTcp)];

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    for (name, sender) in SENDERS {
        for clients in CLIENTS {
            let fixture = Fanout::start(clients, sender);
            group.bench_function(BenchmarkId::new(name, clients), |b| {
                b.iter_custom(|iters| Duration::from_nanos((0..iters).map(|_| fixture.broadcast_and_wait()).sum()))
            });
        }
    }
    group.finish();
}

fn steady(broadcasts: usize) {
    let mut text = format!("broadcast fan-out, {broadcasts} broadcasts at 100 Hz; latency per (client, message)\n");
    text += &Percentiles::header().replacen("  ", " ", 0);
    let mut cpu = String::new();
    for (name, sender) in SENDERS {
        for clients in CLIENTS {
            let fixture = Fanout::start(clients, sender);
            let mut run = fixture.steady(broadcasts, Duration::from_millis(10));
            let p = Percentiles::of(&mut run.latencies);
            text += &p.row(&format!("{name} {clients} clients"));
            cpu += &format!(
                "{name:>9} {clients:>5} clients: sender CPU {:>6.2} % ({:>8.1} µs per broadcast), reader thread {:>6.2} %\n",
                run.server_cpu_ns as f64 / run.wall_ns as f64 * 100.0,
                run.server_cpu_ns as f64 / broadcasts as f64 / 1e3,
                run.reader_cpu_ns as f64 / run.wall_ns as f64 * 100.0,
            );
            if clients == 1000 {
                cpu += &format!("{name} 1,000-client p99 {:.3} ms (target ≤ 5 ms)\n", p.p99 as f64 / 1e6);
            }
        }
    }
    write_extra("fanout.txt", &(text + &cpu));
}

criterion_group!(benches, fanout);

fn main() {
    // 1,000 clients hold 2,000 descriptors in this process (both ends), plus the server's.
    raise_fd_limit(4096);
    benches();
    steady(if common::bench_mode() { 300 } else { 3 });
    criterion::Criterion::default().configure_from_args().final_summary();
}
