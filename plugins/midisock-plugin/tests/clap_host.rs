//! Loads the real `midisock.clap` (from `<target>/bundled`) in a CLAP host (clack-host), runs
//! `process()` with note and CC events, and checks the traffic against a midisock server on
//! loopback: bytes on the wire both ways, reconnection after a server restart, note-offs when
//! the connection drops and when the plugin is deactivated.
//!
//! The address is set the way a DAW sets it when it opens a project: by loading a plugin state
//! (CLAP `state` extension) that carries the persisted `address` field.

mod common;

use clack_extensions::state::PluginState;
use clack_host::events::event_types::{MidiEvent, MidiSysExEvent, NoteOffEvent, NoteOnEvent};
use clack_host::events::Match;
use clack_host::prelude::*;
use common::scenarios::{
    self, reconnects_after_the_server_restarts_and_releases_the_network_notes, server_messages_come_out,
};
use common::*;
use midisock::Message;

const BLOCK: u32 = 64;
/// The longest block a test processes (the timing test's blocks are 10 ms long).
const MAX_BLOCK: u32 = 480;

struct TestShared;
impl SharedHandler<'_> for TestShared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

struct TestHost;
impl HostHandlers for TestHost {
    type Shared<'a> = TestShared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// One input event for a block.
enum In {
    Midi(u32, [u8; 3]),
    SysEx(u32, &'static [u8]),
    NoteOn(u32, u16, u16, f64),
}

/// A loaded, activated plugin instance and its buffers.
struct Rig {
    instance: PluginInstance<TestHost>,
    processor: Option<StartedPluginAudioProcessor<TestHost>>,
    input_ports: AudioPorts,
    output_ports: AudioPorts,
    audio_in: Vec<Vec<f32>>,
    audio_out: Vec<Vec<f32>>,
    events_out: EventBuffer,
    _entry: PluginEntry,
}

impl Rig {
    fn new(address: &str) -> Rig {
        Rig::with_state(&state_for(address))
    }

    /// A plugin restored from `json` (a project's saved state).
    fn with_state(json: &[u8]) -> Rig {
        let path = bundle("midisock.clap");
        // SAFETY: the file is our own plugin, built from this workspace; loading it runs its
        // (nice-plug) initialisers, which are sound.
        let entry = unsafe { PluginEntry::load(&path) }.expect("load midisock.clap");
        let factory = entry.get_plugin_factory().expect("plugin factory");
        let descriptor = factory.plugin_descriptors().next().expect("one plugin");
        assert_eq!(descriptor.name().unwrap().to_bytes(), b"midisock");
        let id = descriptor.id().unwrap().to_owned();
        let info = HostInfo::new("midisock tests", "midisock", "https://example.invalid", "1.0").unwrap();
        let mut instance =
            PluginInstance::<TestHost>::new(|_| TestShared, |_| (), &entry, &id, &info).expect("instance");

        let state = instance.plugin_handle().get_extension::<PluginState>().expect("state extension");
        // nice-plug's CLAP state: the JSON state after its length (u64, little endian).
        let mut framed = (json.len() as u64).to_le_bytes().to_vec();
        framed.extend_from_slice(json);
        state.load(&instance.plugin_handle(), &mut &framed[..]).expect("load state");

        let config =
            PluginAudioConfiguration { sample_rate: 48_000.0, min_frames_count: 1, max_frames_count: MAX_BLOCK };
        let processor = instance.activate(|_, _| (), config).expect("activate").start_processing().expect("start");
        Rig {
            instance,
            processor: Some(processor),
            input_ports: AudioPorts::with_capacity(2, 1),
            output_ports: AudioPorts::with_capacity(2, 1),
            audio_in: vec![vec![0.0; MAX_BLOCK as usize]; 2],
            audio_out: vec![vec![0.0; MAX_BLOCK as usize]; 2],
            events_out: EventBuffer::with_capacity(1024),
            _entry: entry,
        }
    }

    /// One block; returns the output events as (time, MIDI bytes).
    fn process(&mut self, input: &[In]) -> Vec<(u32, Vec<u8>)> {
        self.process_frames(input, BLOCK)
    }

    /// One block of `frames` samples; returns the output events as (time, MIDI bytes).
    fn process_frames(&mut self, input: &[In], frames: u32) -> Vec<(u32, Vec<u8>)> {
        let frames = frames as usize;
        let mut events_in = EventBuffer::with_capacity(64);
        for event in input {
            match *event {
                In::Midi(time, data) => events_in.push(&MidiEvent::new(time, 0, data)),
                // SAFETY: `data` is 'static, so it outlives the event buffer.
                In::SysEx(time, data) => events_in.push(&unsafe { MidiSysExEvent::new(time, 0, data) }),
                In::NoteOn(time, channel, key, velocity) => {
                    events_in.push(&NoteOnEvent::new(time, Pckn::new(0u16, channel, key, Match::All), velocity))
                }
            }
        }
        self.events_out.clear();
        let audio_in = self.input_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                self.audio_in.iter_mut().map(|b| InputChannel::constant(&mut b[..frames])),
            ),
        }]);
        let mut audio_out = self.output_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(self.audio_out.iter_mut().map(|b| &mut b[..frames])),
        }]);
        self.processor
            .as_mut()
            .expect("processing")
            .process(&audio_in, &mut audio_out, &events_in.as_input(), &mut self.events_out.as_output(), None, None)
            .expect("process");
        self.events_out.iter().map(|e| (e.header().time(), to_midi(e))).collect()
    }

    fn deactivate(&mut self) {
        let processor = self.processor.take().expect("active").stop_processing();
        self.instance.deactivate(processor);
    }
}

impl HostRig for Rig {
    fn process_midi(&mut self, input: &[(u32, [u8; 3])]) -> Vec<Vec<u8>> {
        let input: Vec<In> = input.iter().map(|&(time, data)| In::Midi(time, data)).collect();
        self.process(&input).into_iter().map(|(_, bytes)| bytes).collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if self.processor.is_some() {
            self.deactivate();
        }
    }
}

/// The MIDI bytes of an output event (nice-plug sends notes as CLAP note events, the rest as
/// MIDI events).
fn to_midi(e: &UnknownEvent) -> Vec<u8> {
    let channel_key = |p: Pckn| {
        let get = |m: Match<u16>| match m {
            Match::Specific(v) => v as u8,
            Match::All => panic!("wildcard in an output note event"),
        };
        (get(p.channel), get(p.key))
    };
    if let Some(on) = e.as_event::<NoteOnEvent>() {
        let (c, k) = channel_key(on.pckn());
        vec![0x90 | c, k, (on.velocity() * 127.0).round() as u8]
    } else if let Some(off) = e.as_event::<NoteOffEvent>() {
        let (c, k) = channel_key(off.pckn());
        vec![0x80 | c, k, (off.velocity() * 127.0).round() as u8]
    } else if let Some(midi) = e.as_event::<MidiEvent>() {
        let data = midi.data();
        let len = match data[0] & 0xF0 {
            0xC0 | 0xD0 => 2,
            0xF0 => 1,
            _ => 3,
        };
        data[..len].to_vec()
    } else if let Some(sysex) = e.as_event::<MidiSysExEvent>() {
        // SAFETY: the plugin's buffer lives until the end of the process call's output list use
        // (nice-plug keeps it for the block); we copy it at once.
        unsafe { sysex.data() }.to_vec()
    } else {
        vec![]
    }
}

#[test]
fn track_events_reach_the_server_and_server_messages_come_out_of_the_plugin() {
    let server = server();
    let mut rig = Rig::new(&server.local_addr().to_string());
    rig.wait_for_clients(&server, 1);

    let out = rig.process(&[
        In::NoteOn(3, 0, 60, 100.0 / 127.0),
        In::Midi(10, [0xB0, 7, 99]),
        In::Midi(11, [0xE3, 0x00, 0x40]),
        In::Midi(12, [0xD1, 33, 0]),
        In::Midi(13, [0xA2, 60, 44]),
        In::Midi(14, [0xC4, 9, 0]),
        In::SysEx(20, &[0xF0, 0x7D, 1, 2, 3, 0xF7]),
    ]);
    // Thru (on by default): the input comes out too, in time order.
    let thru: Vec<_> = out.iter().map(|(t, _)| *t).collect();
    assert_eq!(thru, vec![3, 10, 11, 12, 13, 14, 20], "{out:02X?}");

    let got = receive_n(&server, 7);
    let want: Vec<Message> = [
        "note_on channel=0 note=60 velocity=100",
        "control_change channel=0 control=7 value=99",
        "pitchwheel channel=3 pitch=0",
        "aftertouch channel=1 value=33",
        "polytouch channel=2 note=60 value=44",
        "program_change channel=4 program=9",
        "sysex data=(125,1,2,3)",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert_eq!(got, want);

    server_messages_come_out(
        &mut rig,
        &server,
        &[
            "note_on channel=1 note=62 velocity=80",
            "control_change channel=1 control=74 value=5",
            "pitchwheel channel=1 pitch=-8192",
            "sysex data=(1,2,3)",
            "note_off channel=1 note=62 velocity=0",
        ],
    );
}

#[test]
fn reconnects_after_the_server_restarts_and_releases_the_network_notes_in_the_track() {
    reconnects_after_the_server_restarts_and_releases_the_network_notes(Rig::new);
}

#[test]
fn deactivation_sends_note_offs_for_held_notes_to_the_network() {
    let server = server();
    let mut rig = Rig::new(&server.local_addr().to_string());
    rig.wait_for_clients(&server, 1);
    rig.process(&[In::Midi(5, [0x95, 48, 100]), In::Midi(6, [0xB5, 64, 127])]);
    assert_eq!(receive_n(&server, 2).len(), 2);

    rig.deactivate();
    let got = receive_n(&server, 2);
    assert_eq!(
        got,
        vec![
            "note_off channel=5 note=48 velocity=0".parse::<Message>().unwrap(),
            "control_change channel=5 control=64 value=0".parse().unwrap(),
        ]
    );
}

#[test]
fn reaches_a_server_protected_by_a_token_and_tls() {
    scenarios::reaches_a_server_protected_by_a_token_and_tls(Rig::with_state);
}

#[test]
fn a_wrong_token_is_refused_by_the_protected_server() {
    scenarios::a_wrong_token_is_refused_by_the_protected_server(Rig::with_state);
}

/// Note-on offsets of one 10 ms block.
fn note_on_offsets(rig: &mut Rig) -> Vec<u32> {
    rig.process_frames(&[], JitterRun::FRAMES)
        .into_iter()
        .filter(|(_, bytes)| bytes[0] == 0x90)
        .map(|(t, _)| t)
        .collect()
}

/// The jitter buffer, end to end (see [`JitterRun`]), the plugin a client: the notes a server
/// sends come out at their sent spacing.
#[test]
fn with_a_jitter_buffer_notes_land_at_their_sent_spacing_in_the_block() {
    let mut run = JitterRun::client();
    let mut rig = Rig::with_state(&run.state);
    run.connect(|| note_on_offsets(&mut rig));
    run.check(|| note_on_offsets(&mut rig));
}

/// The same with the plugin a server: the notes a midisock client sends come out at their sent
/// spacing (the server asks each client for stamps and plays each one out on its own).
#[test]
fn as_a_server_with_a_jitter_buffer_notes_land_at_their_sent_spacing_in_the_block() {
    let mut run = JitterRun::server();
    let mut rig = Rig::with_state(&run.state);
    run.connect(|| note_on_offsets(&mut rig));
    run.check(|| note_on_offsets(&mut rig));
}
