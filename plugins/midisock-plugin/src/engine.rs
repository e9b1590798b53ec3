//! The audio-thread half of the plugin: what `process()` does, free of nice-plug's context types
//! so the benchmark can drive it directly.
//!
//! Real-time contract: [`AudioEngine::process`] never allocates, locks or makes a system call. It
//! pops and pushes fixed-size `Copy` events on two pre-allocated rtrb rings, updates two
//! fixed-size [`HeldNotes`] sets, and bumps one atomic counter when a ring is full. It reads no
//! clock: time is its own running sample counter (see [`crate::timing`]).

use crate::event::{self, RawMidi, SysEx, ToNetwork, ToTrack};
use crate::shared::Status;
use crate::timing::MAX_HOLD_BLOCKS;
use midisock::{HeldNotes, Message};
use nice_plug::midi::{Channel, NoteEvent};
use std::sync::Arc;

/// Slots in each ring. A slot holds one event (~270 bytes), so a ring takes ~1 MiB; 4096 events
/// cover a second of a very busy track with 64-sample blocks.
pub const RING_CAPACITY: usize = 4096;

/// The parameters that matter to one block, read from the plugin's parameters at block start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Controls {
    /// Track → network.
    pub send: bool,
    /// Network → track.
    pub receive: bool,
    /// Track input is also passed to the track output.
    pub thru: bool,
    /// Only this channel (0–15) travels in either direction; system messages always do.
    pub channel: Option<u8>,
    /// Host bypass: input passes through untouched, nothing travels.
    pub bypass: bool,
}

impl Controls {
    fn effective(self) -> Controls {
        Controls {
            send: self.send && !self.bypass,
            receive: self.receive && !self.bypass,
            thru: self.thru || self.bypass,
            ..self
        }
    }

    fn passes(&self, channel: Option<Channel>) -> bool {
        match (self.channel, channel) {
            (Some(wanted), Some(Channel::Number(c))) => c == wanted,
            _ => true,
        }
    }
}

/// The track's side of a block: the host's input events (in time order) and its output list.
pub trait TrackEvents {
    fn next_input(&mut self) -> Option<NoteEvent<SysEx>>;
    fn output(&mut self, event: NoteEvent<SysEx>);
}

/// The audio thread's state: the ring ends, the sample counter and the notes it put into the
/// track.
#[derive(Debug)]
pub struct AudioEngine {
    to_network: rtrb::Producer<ToNetwork>,
    from_network: rtrb::Consumer<ToTrack>,
    status: Arc<Status>,
    /// The first sample of the next block on the plugin's running counter.
    sample: u64,
    /// Notes the network put into the track.
    network_notes: HeldNotes,
    /// Notes the track input passed through to the output.
    thru_notes: HeldNotes,
    last: Option<Controls>,
    release_sent_pending: bool,
}

/// The rings between an [`AudioEngine`] and the network thread.
#[derive(Debug)]
pub struct NetworkEnds {
    pub from_audio: rtrb::Consumer<ToNetwork>,
    pub to_audio: rtrb::Producer<ToTrack>,
}

impl AudioEngine {
    /// An engine and the network thread's ends of its rings (allocates: call it off the audio
    /// thread).
    pub fn new(status: Arc<Status>, capacity: usize) -> (AudioEngine, NetworkEnds) {
        let (to_network, from_audio) = rtrb::RingBuffer::new(capacity);
        let (to_audio, from_network) = rtrb::RingBuffer::new(capacity);
        let engine = AudioEngine {
            to_network,
            from_network,
            status,
            sample: 0,
            network_notes: HeldNotes::default(),
            thru_notes: HeldNotes::default(),
            last: None,
            release_sent_pending: false,
        };
        (engine, NetworkEnds { from_audio, to_audio })
    }

    /// Asks the network thread to send note-offs for every note this plugin holds down on the
    /// network (deactivation). Allocation-free.
    pub fn release_sent(&mut self) {
        self.release_sent_pending = self.to_network.push(ToNetwork::ReleaseSent).is_err();
    }

    /// One block of `len` samples: takes the track's input events (in time order), sends them to
    /// the network and/or through, and merges in the messages from the network that are due in
    /// this block. Output events go out in time order.
    pub fn process(&mut self, len: u32, sample_rate: f32, controls: Controls, track: &mut impl TrackEvents) {
        let start = self.sample;
        let c = controls.effective();
        // A lost block marker only costs timing precision; a lost message is counted below.
        let _ = self.to_network.push(ToNetwork::Block { start, len, sample_rate });

        if let Some(prev) = self.last {
            let channel_changed = prev.channel != c.channel;
            if prev.send && (!c.send || channel_changed) {
                self.release_sent_pending = true;
            }
            if prev.receive && (!c.receive || channel_changed) {
                event::release_into_track(&mut self.network_notes, 0, |e| track.output(e));
            }
            if prev.thru && !c.thru {
                event::release_into_track(&mut self.thru_notes, 0, |e| track.output(e));
            }
        }
        self.last = Some(c);
        if self.release_sent_pending {
            self.release_sent();
        }

        let end = start + u64::from(len);
        let hold_limit = u64::from(len) * MAX_HOLD_BLOCKS;
        // Output timings never go backwards, even for a late message from the network.
        let mut cursor = 0u32;
        let mut input = track.next_input();
        loop {
            let network_offset = match self.from_network.peek() {
                Ok(head) => {
                    let due = head.sample();
                    if due < end {
                        Some(due.saturating_sub(start) as u32)
                    } else if due - start >= hold_limit {
                        // The clock mapping cannot be right: play it now rather than hold it.
                        Some(0)
                    } else {
                        None
                    }
                }
                Err(_) => None,
            };
            let network_first = match (&input, network_offset) {
                (Some(event), Some(offset)) => offset < event.timing(),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if network_first {
                let offset = network_offset.unwrap_or(0).max(cursor);
                cursor = offset;
                let Ok(event) = self.from_network.pop() else { break };
                self.play_from_network(event, offset, c, track);
                continue;
            }
            let Some(event) = input else { break };
            cursor = cursor.max(event.timing());
            self.take_from_track(event, start, c, track);
            input = track.next_input();
        }
        self.sample = end;
    }

    fn play_from_network(&mut self, event: ToTrack, offset: u32, c: Controls, track: &mut impl TrackEvents) {
        match event {
            ToTrack::Midi { raw, .. } => {
                if !c.receive || !c.passes(raw.channel().map(Channel::Number)) {
                    return;
                }
                if let Some(note_event) = raw.to_note_event(offset) {
                    event::observe(&mut self.network_notes, &raw);
                    track.output(note_event);
                }
            }
            ToTrack::ReleaseReceived { .. } => {
                event::release_into_track(&mut self.network_notes, offset, |e| track.output(e))
            }
        }
    }

    fn take_from_track(&mut self, event: NoteEvent<SysEx>, start: u64, c: Controls, track: &mut impl TrackEvents) {
        if c.thru {
            observe_event(&mut self.thru_notes, &event);
            track.output(event);
        }
        if c.send && c.passes(event.channel()) {
            if let Some(raw) = RawMidi::from_note_event(&event) {
                let sample = start + u64::from(event.timing());
                if self.to_network.push(ToNetwork::Midi { sample, raw }).is_err() {
                    self.status.count_dropped(1);
                }
            }
        }
    }
}

/// [`event::observe`] for a nice-plug event, without building the raw bytes.
fn observe_event(held: &mut HeldNotes, event: &NoteEvent<SysEx>) {
    let message = match *event {
        NoteEvent::NoteOn { channel: Channel::Number(channel), key, velocity, .. } => Message::NoteOn {
            channel,
            note: key.number_or_middle_c(),
            velocity: (velocity * 127.0).round().clamp(1.0, 127.0) as u8,
        },
        NoteEvent::NoteOff { channel: Channel::Number(channel), key, .. } => {
            Message::NoteOff { channel, note: key.number_or_middle_c(), velocity: 0 }
        }
        NoteEvent::MidiCC { channel, cc, value, .. } => {
            Message::ControlChange { channel, control: cc, value: (value * 127.0).round().clamp(0.0, 127.0) as u8 }
        }
        _ => return,
    };
    held.observe(&message);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Controls = Controls { send: true, receive: true, thru: true, channel: None, bypass: false };

    fn raw(bytes: &[u8]) -> RawMidi {
        RawMidi::new(bytes).unwrap()
    }

    fn run(engine: &mut AudioEngine, controls: Controls, input: &[(u32, &[u8])]) -> Vec<(u32, Vec<u8>)> {
        struct Lists<I> {
            input: I,
            out: Vec<(u32, Vec<u8>)>,
        }
        impl<I: Iterator<Item = NoteEvent<SysEx>>> TrackEvents for Lists<I> {
            fn next_input(&mut self) -> Option<NoteEvent<SysEx>> {
                self.input.next()
            }
            fn output(&mut self, e: NoteEvent<SysEx>) {
                self.out.push((e.timing(), RawMidi::from_note_event(&e).unwrap().as_bytes().to_vec()));
            }
        }
        let input = input.iter().map(|&(t, b)| raw(b).to_note_event(t).unwrap());
        let mut lists = Lists { input, out: Vec::new() };
        engine.process(64, 48_000.0, controls, &mut lists);
        lists.out
    }

    #[test]
    fn input_goes_to_network_and_through_and_network_messages_land_at_their_sample() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64);
        ends.to_audio.push(ToTrack::Midi { sample: 10, raw: raw(&[0x91, 70, 1]) }).unwrap();
        ends.to_audio.push(ToTrack::Midi { sample: 100, raw: raw(&[0x91, 71, 1]) }).unwrap();
        let out = run(&mut engine, ALL, &[(5, &[0x90, 60, 100]), (20, &[0xB0, 1, 2])]);
        assert_eq!(out, vec![(5, vec![0x90, 60, 100]), (10, vec![0x91, 70, 1]), (20, vec![0xB0, 1, 2])]);
        let sent: Vec<_> = std::iter::from_fn(|| ends.from_audio.pop().ok()).collect();
        assert!(matches!(sent[0], ToNetwork::Block { start: 0, len: 64, .. }));
        assert!(matches!(sent[1], ToNetwork::Midi { sample: 5, raw } if raw.as_bytes() == [0x90, 60, 100]));
        assert!(matches!(sent[2], ToNetwork::Midi { sample: 20, .. }));
        // The second network message is due in the next block, at offset 100 - 64.
        assert_eq!(run(&mut engine, ALL, &[]), vec![(36, vec![0x91, 71, 1])]);
    }

    #[test]
    fn a_dropped_connection_releases_the_notes_the_network_holds_in_the_track() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64);
        ends.to_audio.push(ToTrack::Midi { sample: 0, raw: raw(&[0x92, 50, 90]) }).unwrap();
        run(&mut engine, ALL, &[]);
        ends.to_audio.push(ToTrack::ReleaseReceived { sample: 0 }).unwrap();
        assert_eq!(run(&mut engine, ALL, &[]), vec![(0, vec![0x82, 50, 0])]);
    }

    #[test]
    fn bypass_passes_input_releases_network_notes_and_asks_for_network_note_offs() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64);
        ends.to_audio.push(ToTrack::Midi { sample: 0, raw: raw(&[0x90, 40, 90]) }).unwrap();
        run(&mut engine, ALL, &[(0, &[0x90, 60, 100])]);
        while ends.from_audio.pop().is_ok() {}
        let bypassed = Controls { bypass: true, thru: false, ..ALL };
        let out = run(&mut engine, bypassed, &[(3, &[0x90, 61, 100])]);
        assert_eq!(out, vec![(0, vec![0x80, 40, 0]), (3, vec![0x90, 61, 100])]);
        let sent: Vec<_> = std::iter::from_fn(|| ends.from_audio.pop().ok()).collect();
        assert!(matches!(sent[..], [ToNetwork::Block { .. }, ToNetwork::ReleaseSent]), "{sent:?}");
    }

    #[test]
    fn channel_filter_applies_both_ways_but_not_to_system_messages() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64);
        let only_ch2 = Controls { channel: Some(2), thru: false, ..ALL };
        ends.to_audio.push(ToTrack::Midi { sample: 0, raw: raw(&[0x91, 1, 1]) }).unwrap();
        ends.to_audio.push(ToTrack::Midi { sample: 0, raw: raw(&[0x92, 2, 2]) }).unwrap();
        ends.to_audio.push(ToTrack::Midi { sample: 0, raw: raw(&[0xF0, 1, 0xF7]) }).unwrap();
        let out = run(&mut engine, only_ch2, &[(1, &[0x93, 3, 3]), (2, &[0x92, 4, 4])]);
        assert_eq!(out, vec![(0, vec![0x92, 2, 2]), (0, vec![0xF0, 1, 0xF7])]);
        let sent: Vec<_> = std::iter::from_fn(|| ends.from_audio.pop().ok()).collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(matches!(sent[1], ToNetwork::Midi { raw, .. } if raw.as_bytes() == [0x92, 4, 4]));
    }

    #[test]
    fn a_message_far_in_the_future_is_not_held_forever() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64);
        ends.to_audio.push(ToTrack::Midi { sample: 1_000_000, raw: raw(&[0x90, 1, 1]) }).unwrap();
        assert_eq!(run(&mut engine, ALL, &[]), vec![(0, vec![0x90, 1, 1])]);
    }

    #[test]
    fn turning_thru_off_releases_passed_notes() {
        let (mut engine, _ends) = AudioEngine::new(Arc::default(), 64);
        run(&mut engine, ALL, &[(0, &[0x95, 60, 100])]);
        let out = run(&mut engine, Controls { thru: false, ..ALL }, &[]);
        assert_eq!(out, vec![(0, vec![0x85, 60, 0])]);
    }
}
