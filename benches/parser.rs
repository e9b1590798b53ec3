//! Parser and encoder throughput (bytes/s) on realistic streams: notes, control changes, clock,
//! sysex, and a mix. Target: parser ≥ 1 GB/s (docs/performance.md).

mod common;

use common::{message_mix, parse_counting};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use midisock::{Message, Parser};
use std::hint::black_box;

/// About 64 KiB of wire bytes made of `pattern` repeated.
fn stream_of(pattern: impl Fn(usize) -> Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(70_000);
    let mut i = 0;
    while bytes.len() < 64 * 1024 {
        pattern(i).encode_to_vec(&mut bytes);
        i += 1;
    }
    bytes
}

/// The streams the parser and encoder are measured on, with their names.
pub fn streams() -> Vec<(&'static str, Vec<u8>)> {
    let mix = message_mix(32 * 1024);
    vec![
        (
            "notes",
            stream_of(|i| {
                let (channel, note) = ((i % 16) as u8, (i % 128) as u8);
                if i % 2 == 0 {
                    Message::NoteOn { channel, note, velocity: 100 }
                } else {
                    Message::NoteOff { channel, note, velocity: 0 }
                }
            }),
        ),
        (
            "control_change",
            stream_of(|i| Message::ControlChange { channel: (i % 16) as u8, control: 7, value: (i % 128) as u8 }),
        ),
        ("clock", stream_of(|_| Message::Clock)),
        ("sysex_256", stream_of(|i| Message::SysEx { data: (0..256).map(|j| ((i + j) % 128) as u8).collect() })),
        ("mix", stream_of(|i| mix[i].clone())),
    ]
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parser");
    for (name, bytes) in streams() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut parser = Parser::new();
        group.bench_function(name, |b| b.iter(|| parse_counting(&mut parser, &bytes)));
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encoder");
    for (name, bytes) in streams() {
        let mut messages = Vec::new();
        Parser::new().feed(&bytes, |m| messages.push(m));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = vec![0u8; bytes.len()];
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut at = 0;
                for message in black_box(&messages) {
                    at += message.encode(&mut out[at..]).expect("sized for the stream");
                }
                at
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
