//! End-to-end stream throughput (messages/s): `send_all` batches on one port, every message
//! parsed and taken with `receive()` on the other, against the same bytes over plain TCP read
//! and not parsed (the wire's ceiling). Target: ≥ 50 M messages/s end to end.

mod common;

use common::{MidisockStream, RawTcpStream};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

/// Messages per `send_all` (about 11 KB of wire bytes).
const BATCH: usize = 4096;
/// Messages per criterion iteration.
const CHUNK: usize = 64 * 1024;

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(CHUNK as u64));
    let midisock = MidisockStream::start(BATCH);
    group.bench_function("midisock", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| midisock.run(CHUNK)).sum::<Duration>())
    });
    drop(midisock);
    let mut raw = RawTcpStream::start(BATCH);
    group.bench_function("raw_tcp_unparsed", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw.run(CHUNK).1).sum::<Duration>())
    });
    group.finish();
}

criterion_group!(benches, stream);
criterion_main!(benches);
