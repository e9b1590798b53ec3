//! One-way latency and jitter: midisock against plain TCP (TCP_NODELAY). Target: jitter
//! (p99.9 − p50 of a steady 1 kHz stream) ≤ 1.2× plain TCP.
//!
//! 1. Criterion group `one_way`: the mean one-way latency of single messages, each sent after
//!    the previous one arrived — send time (monotonic_ns) to the receiver's timestamp.
//! 2. Then the real workload, which criterion cannot express (it reports means and would pace
//!    nothing): a 1 kHz stream for 10 s per system, one after the other; p50, p99, p99.9, max and
//!    p99.9 − p50 go to `target/criterion-extra/stream_latency.txt`. Under `cargo test --benches`
//!    the stream lasts 50 ms.

mod common;

use common::{
    midisock_pair, midisock_stream_latency, note, raw_tcp_stream_latency, tcp_pair, write_extra, Percentiles,
    NOTE_BYTES,
};
use criterion::{criterion_group, Criterion};
use midisock::monotonic_ns;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Sends one message per iteration and waits for the receiver thread's timestamp of it.
fn one_way(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_way");

    let (client, accepted, _server) = midisock_pair();
    let (stamps_tx, stamps) = mpsc::channel();
    let receiver = thread::spawn(move || {
        while let Ok(received) = accepted.receive_stamped() {
            if stamps_tx.send(received.timestamp_ns).is_err() {
                break;
            }
        }
    });
    let message = note();
    group.bench_function("midisock", |b| {
        b.iter_custom(|iters| {
            let total: u64 = (0..iters)
                .map(|_| {
                    let sent = monotonic_ns();
                    client.send(&message).expect("send");
                    stamps.recv().expect("stamp") - sent
                })
                .sum();
            Duration::from_nanos(total)
        })
    });
    client.close();
    receiver.join().expect("receiver");

    let (mut client, mut server) = tcp_pair();
    let (stamps_tx, stamps) = mpsc::channel();
    let receiver = thread::spawn(move || {
        let mut buf = [0u8; 3];
        while server.read_exact(&mut buf).is_ok() {
            if stamps_tx.send(monotonic_ns()).is_err() {
                break;
            }
        }
    });
    group.bench_function("raw_tcp", |b| {
        b.iter_custom(|iters| {
            let total: u64 = (0..iters)
                .map(|_| {
                    let sent = monotonic_ns();
                    client.write_all(&NOTE_BYTES).expect("write");
                    stamps.recv().expect("stamp") - sent
                })
                .sum();
            Duration::from_nanos(total)
        })
    });
    drop(client);
    receiver.join().expect("receiver");
    group.finish();
}

fn steady_stream(duration: Duration) {
    let mut ours = midisock_stream_latency(1000, duration);
    let mut theirs = raw_tcp_stream_latency(1000, duration);
    let (ours, theirs) = (Percentiles::of(&mut ours), Percentiles::of(&mut theirs));
    let jitter = |p: &Percentiles| p.p999.saturating_sub(p.p50) as f64;
    let mut text = format!("one-way latency, 1 kHz stream for {duration:?}, loopback\n");
    text += &Percentiles::header();
    text += &ours.row("midisock");
    text += &theirs.row("raw_tcp (TCP_NODELAY)");
    text += &format!(
        "jitter ratio (p99.9 - p50) midisock / raw_tcp: {:.3} (target ≤ 1.2)\n",
        jitter(&ours) / jitter(&theirs).max(1.0)
    );
    write_extra("stream_latency.txt", &text);
}

criterion_group!(benches, one_way);

fn main() {
    benches();
    steady_stream(if common::bench_mode() { Duration::from_secs(10) } else { Duration::from_millis(50) });
    Criterion::default().configure_from_args().final_summary();
}
