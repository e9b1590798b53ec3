//! The audio-thread half of the plugin: what `process()` does, free of nice-plug's context types
//! so the benchmark can drive it directly.
//!
//! Real-time contract: [`AudioEngine::process`] never allocates, locks or makes a system call. It
//! pops and pushes small `Copy` events (16–24 bytes) on two pre-allocated lock-free channels
//! ([`crate::ring`]: an rtrb ring of events plus an rtrb byte ring for sysex payloads), updates
//! two fixed-size [`HeldNotes`] sets, and bumps one atomic counter when a ring is full. It reads no
//! clock: time is its own running sample counter (see [`crate::timing`]).
//!
//! The large `NoteEvent<SysEx>` (nice-plug's event, ~270 bytes because of the inline sysex
//! buffer) exists only at the host boundary: one per input event as the host hands it over, and
//! one per output event, built where it is handed to the host. Only a sysex from the network is
//! copied into a [`SysEx`] buffer.

use crate::event::{self, Midi, SysEx, ToNetwork, ToTrack};
use crate::ring::{self, Popped, Receiver, Sender};
use crate::shared::Status;
use crate::timing::MAX_HOLD_BLOCKS;
use midisock::{HeldNotes, Message};
use nice_plug::midi::{Channel, NoteEvent};
use std::sync::Arc;

/// Events in each ring (16–24 bytes each); 4096 cover a second of a very busy track with
/// 64-sample blocks.
pub const RING_CAPACITY: usize = 4096;
/// Bytes in each ring's sysex lane: 256 sysex messages of the longest kind.
pub const SYSEX_RING_BYTES: usize = 64 * 1024;

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
    to_network: Sender<ToNetwork>,
    from_network: Receiver<ToTrack>,
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
    pub from_audio: Receiver<ToNetwork>,
    pub to_audio: Sender<ToTrack>,
}

impl AudioEngine {
    /// An engine and the network thread's ends of its rings, each holding `events` events and
    /// `sysex_bytes` bytes of sysex (allocates: call it off the audio thread).
    pub fn new(status: Arc<Status>, events: usize, sysex_bytes: usize) -> (AudioEngine, NetworkEnds) {
        let (to_network, from_audio) = ring::channel(events, sysex_bytes);
        let (to_audio, from_network) = ring::channel(events, sysex_bytes);
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
        self.release_sent_pending = self.to_network.push(ToNetwork::ReleaseSent, &[]).is_err();
    }

    /// One block of `len` samples: takes the track's input events (in time order), sends them to
    /// the network and/or through, and merges in the messages from the network that are due in
    /// this block. Output events go out in time order.
    pub fn process(&mut self, len: u32, sample_rate: f32, controls: Controls, track: &mut impl TrackEvents) {
        let start = self.sample;
        let c = controls.effective();
        // A lost block marker only costs timing precision; a lost message is counted below.
        let _ = self.to_network.push(ToNetwork::Block { start, len, sample_rate }, &[]);

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
                Some(head) => {
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
                None => None,
            };
            let network_first = match (&input, network_offset) {
                (Some(event), Some(offset)) => offset < event.timing(),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if network_first {
                let offset = network_offset.unwrap_or(0).max(cursor);
                cursor = offset;
                let Some(popped) = self.from_network.pop() else { break };
                play_from_network(popped, &mut self.network_notes, offset, c, track);
                continue;
            }
            let Some(event) = &input else { break };
            cursor = cursor.max(event.timing());
            self.take_from_track(event, start, c, track);
            input = track.next_input();
        }
        self.sample = end;
    }

    /// Sends one input event to the network and/or through. Borrowed: the only copy of the
    /// (large) event is the one handed to the track output.
    fn take_from_track(&mut self, event: &NoteEvent<SysEx>, start: u64, c: Controls, track: &mut impl TrackEvents) {
        if c.send && c.passes(event.channel()) {
            if let Some((midi, sysex)) = Midi::from_note_event(event) {
                let sample = start + u64::from(event.timing());
                if self.to_network.push(ToNetwork::Midi { sample, midi }, sysex).is_err() {
                    self.status.count_dropped(1);
                }
            }
        }
        if c.thru {
            observe_event(&mut self.thru_notes, event);
            track.output(*event);
        }
    }
}

/// Plays one event from the network into the track at `offset`. A sysex is copied from the byte
/// lane into the nice-plug event; a dropped (filtered) event's bytes are skipped with it.
fn play_from_network(
    popped: Popped<'_, ToTrack>,
    network_notes: &mut HeldNotes,
    offset: u32,
    c: Controls,
    track: &mut impl TrackEvents,
) {
    match popped.event {
        ToTrack::Midi { midi, .. } => {
            if !c.receive || !c.passes(midi.channel().map(Channel::Number)) {
                return;
            }
            if midi.is_sysex() {
                if let Some(message) = SysEx::from_lane(midi.len(), |out| popped.read_sysex(out)) {
                    track.output(NoteEvent::MidiSysEx { timing: offset, message });
                }
            } else {
                let mut played = false;
                midi.emit_note_event(offset, |e| {
                    played = true;
                    track.output(e);
                });
                if played {
                    event::observe(network_notes, &midi);
                }
            }
        }
        ToTrack::ReleaseReceived { .. } => event::release_into_track(network_notes, offset, |e| track.output(e)),
    }
}

/// [`event::observe`] for a nice-plug event, without building the raw bytes. Only on/off and
/// CC values matter to [`HeldNotes`]: a note-on counts as held whatever its velocity (as the host
/// plays it), and a CC value is rounded without a libm call (`f32::round` is one on baseline
/// x86-64).
fn observe_event(held: &mut HeldNotes, event: &NoteEvent<SysEx>) {
    let message = match *event {
        NoteEvent::NoteOn { channel: Channel::Number(channel), key, .. } => {
            Message::NoteOn { channel, note: key.number_or_middle_c(), velocity: 127 }
        }
        NoteEvent::NoteOff { channel: Channel::Number(channel), key, .. } => {
            Message::NoteOff { channel, note: key.number_or_middle_c(), velocity: 0 }
        }
        NoteEvent::MidiCC { channel, cc, value, .. } => {
            Message::ControlChange { channel, control: cc, value: event::unit_to_7bit(value, 0) }
        }
        _ => return,
    };
    held.observe(&message);
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Controls = Controls { send: true, receive: true, thru: true, channel: None, bypass: false };

    fn midi(bytes: &[u8]) -> Midi {
        Midi::new(bytes).unwrap()
    }

    fn from_network(ends: &mut NetworkEnds, sample: u64, bytes: &[u8]) {
        let m = midi(bytes);
        let sysex = if m.is_sysex() { bytes } else { &[] };
        ends.to_audio.push(ToTrack::Midi { sample, midi: m }, sysex).unwrap();
    }

    fn note_event(timing: u32, bytes: &[u8]) -> NoteEvent<SysEx> {
        match bytes[0] {
            0xF0 => NoteEvent::MidiSysEx { timing, message: SysEx::new(bytes).unwrap() },
            _ => midi(bytes).to_note_event(timing).unwrap(),
        }
    }

    fn bytes_of(e: &NoteEvent<SysEx>) -> Vec<u8> {
        let (m, sysex) = Midi::from_note_event(e).unwrap();
        if m.is_sysex() {
            sysex.to_vec()
        } else {
            m.short_bytes().to_vec()
        }
    }

    /// Everything the engine sent to the network: the events and their sysex bytes.
    fn sent(ends: &mut NetworkEnds) -> Vec<(ToNetwork, Vec<u8>)> {
        let mut buffer = [0; event::SYSEX_BUFFER_LEN];
        std::iter::from_fn(|| ends.from_audio.pop_into(&mut buffer).map(|(e, b)| (e, b.to_vec()))).collect()
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
                self.out.push((e.timing(), bytes_of(&e)));
            }
        }
        let input = input.iter().map(|&(t, b)| note_event(t, b));
        let mut lists = Lists { input, out: Vec::new() };
        engine.process(64, 48_000.0, controls, &mut lists);
        lists.out
    }

    #[test]
    fn input_goes_to_network_and_through_and_network_messages_land_at_their_sample() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64, 1024);
        from_network(&mut ends, 10, &[0x91, 70, 1]);
        from_network(&mut ends, 100, &[0x91, 71, 1]);
        let out = run(&mut engine, ALL, &[(5, &[0x90, 60, 100]), (20, &[0xB0, 1, 2])]);
        assert_eq!(out, vec![(5, vec![0x90, 60, 100]), (10, vec![0x91, 70, 1]), (20, vec![0xB0, 1, 2])]);
        let sent = sent(&mut ends);
        assert!(matches!(sent[0].0, ToNetwork::Block { start: 0, len: 64, .. }));
        assert!(matches!(sent[1].0, ToNetwork::Midi { sample: 5, midi } if midi.short_bytes() == [0x90, 60, 100]));
        assert!(matches!(sent[2].0, ToNetwork::Midi { sample: 20, .. }));
        // The second network message is due in the next block, at offset 100 - 64.
        assert_eq!(run(&mut engine, ALL, &[]), vec![(36, vec![0x91, 71, 1])]);
    }

    #[test]
    fn a_dropped_connection_releases_the_notes_the_network_holds_in_the_track() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64, 1024);
        from_network(&mut ends, 0, &[0x92, 50, 90]);
        run(&mut engine, ALL, &[]);
        ends.to_audio.push(ToTrack::ReleaseReceived { sample: 0 }, &[]).unwrap();
        assert_eq!(run(&mut engine, ALL, &[]), vec![(0, vec![0x82, 50, 0])]);
    }

    #[test]
    fn bypass_passes_input_releases_network_notes_and_asks_for_network_note_offs() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64, 1024);
        from_network(&mut ends, 0, &[0x90, 40, 90]);
        run(&mut engine, ALL, &[(0, &[0x90, 60, 100])]);
        sent(&mut ends);
        let bypassed = Controls { bypass: true, thru: false, ..ALL };
        let out = run(&mut engine, bypassed, &[(3, &[0x90, 61, 100])]);
        assert_eq!(out, vec![(0, vec![0x80, 40, 0]), (3, vec![0x90, 61, 100])]);
        let sent: Vec<_> = sent(&mut ends).into_iter().map(|(e, _)| e).collect();
        assert!(matches!(sent[..], [ToNetwork::Block { .. }, ToNetwork::ReleaseSent]), "{sent:?}");
    }

    #[test]
    fn channel_filter_applies_both_ways_but_not_to_system_messages() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64, 1024);
        let only_ch2 = Controls { channel: Some(2), thru: false, ..ALL };
        from_network(&mut ends, 0, &[0x91, 1, 1]);
        from_network(&mut ends, 0, &[0x92, 2, 2]);
        from_network(&mut ends, 0, &[0xF0, 1, 0xF7]);
        let out = run(&mut engine, only_ch2, &[(1, &[0x93, 3, 3]), (2, &[0x92, 4, 4])]);
        assert_eq!(out, vec![(0, vec![0x92, 2, 2]), (0, vec![0xF0, 1, 0xF7])]);
        let sent = sent(&mut ends);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(matches!(sent[1].0, ToNetwork::Midi { midi, .. } if midi.short_bytes() == [0x92, 4, 4]));
    }

    #[test]
    fn a_message_far_in_the_future_is_not_held_forever() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64, 1024);
        from_network(&mut ends, 1_000_000, &[0x90, 1, 1]);
        assert_eq!(run(&mut engine, ALL, &[]), vec![(0, vec![0x90, 1, 1])]);
    }

    #[test]
    fn turning_thru_off_releases_passed_notes() {
        let (mut engine, _ends) = AudioEngine::new(Arc::default(), 64, 1024);
        run(&mut engine, ALL, &[(0, &[0x95, 60, 100])]);
        let out = run(&mut engine, Controls { thru: false, ..ALL }, &[]);
        assert_eq!(out, vec![(0, vec![0x85, 60, 0])]);
    }

    #[test]
    fn sysex_travels_both_ways_through_the_byte_lane_and_filtered_sysex_is_skipped() {
        let (mut engine, mut ends) = AudioEngine::new(Arc::default(), 64, 1024);
        let mut long = vec![0xF0];
        long.extend((0..event::SYSEX_BUFFER_LEN - 2).map(|b| b as u8 & 0x7F));
        long.push(0xF7);
        // Receiving off: the first sysex and its bytes are dropped, not left in the lane.
        from_network(&mut ends, 0, &[0xF0, 9, 9, 0xF7]);
        assert_eq!(run(&mut engine, Controls { receive: false, ..ALL }, &[]), vec![]);
        from_network(&mut ends, 3, &long);
        from_network(&mut ends, 4, &[0x90, 1, 2]);
        from_network(&mut ends, 5, &[0xF0, 0x7D, 1, 0xF7]);
        sent(&mut ends);
        let out = run(&mut engine, ALL, &[(2, &[0xF0, 0x7E, 5, 0xF7]), (6, &long)]);
        // Network messages due before this block go at offset 0, ahead of the input.
        let expected = vec![
            (0, long.clone()),
            (0, vec![0x90, 1, 2]),
            (0, vec![0xF0, 0x7D, 1, 0xF7]),
            (2, vec![0xF0, 0x7E, 5, 0xF7]),
            (6, long.clone()),
        ];
        assert_eq!(out, expected);
        let sent = sent(&mut ends);
        assert_eq!(sent[1].1, [0xF0, 0x7E, 5, 0xF7]);
        assert_eq!(sent[2].1, long);
    }
}
