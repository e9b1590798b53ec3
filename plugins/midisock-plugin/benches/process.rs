//! `process()` with 64 events in and 64 out, on the audio-thread engine that the plugin's
//! `process()` runs (plugins/midisock-plugin/src/engine.rs), without a host around it.
//!
//! Per block: 64 events from the track (notes and CCs, sent to the network ring and passed
//! through), and 64 messages from the network waiting in the ring (merged into the output):
//! 128 output events. Filling the network ring and draining the track ring are the network
//! thread's work and are not timed. Target: ≤ 5 µs per block.

use criterion::{criterion_group, criterion_main, Criterion};
use midisock_plugin::engine::{AudioEngine, Controls, TrackEvents, SYSEX_RING_BYTES};
use midisock_plugin::event::{Midi, SysEx, ToTrack};
use nice_plug::midi::NoteEvent;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS: usize = 64;
const BLOCK: u32 = 256;

struct Lists {
    input: Vec<NoteEvent<SysEx>>,
    next: usize,
    outputs: usize,
}

impl TrackEvents for Lists {
    fn next_input(&mut self) -> Option<NoteEvent<SysEx>> {
        let event = self.input.get(self.next).copied();
        self.next += 1;
        event
    }

    fn output(&mut self, event: NoteEvent<SysEx>) {
        black_box(event);
        self.outputs += 1;
    }
}

fn process_64_in_64_out(c: &mut Criterion) {
    let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 4096, SYSEX_RING_BYTES);
    let input: Vec<NoteEvent<SysEx>> = (0..EVENTS)
        .map(|i| {
            let bytes = if i % 2 == 0 { [0x90, 40 + (i as u8 % 64), 100] } else { [0xB0, 1, i as u8] };
            Midi::new(&bytes).unwrap().to_note_event((i as u32) * 4).unwrap()
        })
        .collect();
    let from_network: Vec<Midi> = (0..EVENTS).map(|i| Midi::new(&[0x91, 30 + (i as u8 % 64), 1]).unwrap()).collect();
    let controls = Controls { send: true, receive: true, thru: true, channel: None, bypass: false };
    let mut lists = Lists { input, next: 0, outputs: 0 };
    let mut block_start = 0u64;

    c.bench_function("process 64 in + 64 from network", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for (i, &midi) in from_network.iter().enumerate() {
                    let sample = block_start + (i as u64) * 4 + 1;
                    ends.to_audio.push(ToTrack::Midi { sample, midi }, &[]).unwrap();
                }
                lists.next = 0;
                lists.outputs = 0;
                let start = Instant::now();
                engine.process(BLOCK, 48_000.0, controls, &mut lists);
                total += start.elapsed();
                assert_eq!(lists.outputs, 2 * EVENTS);
                while ends.from_audio.pop().is_some() {}
                block_start += u64::from(BLOCK);
            }
            total
        })
    });
}

criterion_group!(benches, process_64_in_64_out);
criterion_main!(benches);
