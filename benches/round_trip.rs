//! Round trip of one 3-byte message on loopback: midisock (`connect` + an echo peer on an accepted
//! port) against a plain TCP ping-pong of the same 3 bytes with TCP_NODELAY, in one criterion
//! group. Targets: p50 ≤ 1.10× and p99 ≤ 1.25× plain TCP.
//!
//! The caller and the echo threads are pinned to different CPUs (see `common::EchoPlacement`).
//! Criterion reports means; afterwards the bench measures both again, interleaved in chunks so
//! that machine noise hits both alike, and writes percentiles to
//! `target/criterion-extra/round_trip.txt`.

mod common;

use common::{note, pin_caller, write_extra, EchoPlacement, MidisockEcho, Percentiles, RawTcpEcho, NOTE_BYTES};
use criterion::{criterion_group, Criterion};
use std::time::Duration;

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    let _pinned = pin_caller();
    let midisock = MidisockEcho::start(EchoPlacement::OtherCpu);
    let message = note();
    group.bench_function("midisock", |b| {
        b.iter_custom(|iters| Duration::from_nanos((0..iters).map(|_| midisock.round_trip(&message)).sum()))
    });
    drop(midisock);
    let mut raw = RawTcpEcho::start(EchoPlacement::OtherCpu);
    group.bench_function("raw_tcp", |b| {
        b.iter_custom(|iters| Duration::from_nanos((0..iters).map(|_| raw.round_trip(&NOTE_BYTES)).sum()))
    });
    group.finish();
}

/// Percentiles of both, interleaved: `chunks` rounds of `chunk` round trips each.
fn percentiles(chunks: usize, chunk: usize) {
    let _pinned = pin_caller();
    let midisock = MidisockEcho::start(EchoPlacement::OtherCpu);
    let mut raw = RawTcpEcho::start(EchoPlacement::OtherCpu);
    let message = note();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..chunk {
        midisock.round_trip(&message);
        raw.round_trip(&NOTE_BYTES);
    }
    for _ in 0..chunks {
        ours.extend((0..chunk).map(|_| midisock.round_trip(&message)));
        theirs.extend((0..chunk).map(|_| raw.round_trip(&NOTE_BYTES)));
    }
    let (ours, theirs) = (Percentiles::of(&mut ours), Percentiles::of(&mut theirs));
    let mut text = String::from("round trip, 3-byte message, loopback\n");
    text += &Percentiles::header();
    text += &ours.row("midisock");
    text += &theirs.row("raw_tcp (TCP_NODELAY)");
    text += &format!(
        "ratio midisock / raw_tcp: p50 {:.3} (target ≤ 1.10), p99 {:.3} (target ≤ 1.25)\n",
        ours.p50 as f64 / theirs.p50 as f64,
        ours.p99 as f64 / theirs.p99 as f64
    );
    write_extra("round_trip.txt", &text);
}

criterion_group!(benches, round_trip);

fn main() {
    benches();
    if common::bench_mode() {
        percentiles(20, 1000);
    } else {
        percentiles(2, 20);
    }
    criterion::Criterion::default().configure_from_args().final_summary();
}
