//! Loads the real `midisock.vst3` bundle (from `<target>/bundled`) in a VST3 host (vst3-host, in
//! process), runs `process()` with note and CC events, and checks the traffic against a midisock
//! server on loopback: bytes on the wire both ways, reconnection after a server restart,
//! note-offs when the connection drops and when the plugin is removed.
//!
//! The address is set the way a DAW sets it when it opens a project: by loading the plugin state
//! (`IComponent::setState`) that carries the persisted `address` field.

mod common;

use common::scenarios::{
    self, reconnects_after_the_server_restarts_and_releases_the_network_notes, server_messages_come_out,
};
use common::*;
use midisock::Message;
use vst3_host::{AudioBuffers, MidiChannel, MidiEvent, Plugin, Vst3Host};

const BLOCK: usize = 64;

struct Rig {
    plugin: Option<Plugin>,
    buffers: AudioBuffers,
    block: usize,
    _host: Vst3Host,
}

impl Rig {
    fn new(address: &str) -> Rig {
        Rig::with_state(&state_for(address))
    }

    /// A plugin restored from `json` (a project's saved state).
    fn with_state(json: &[u8]) -> Rig {
        Rig::with_block(json, BLOCK)
    }

    /// A plugin restored from `json`, processing blocks of `block` samples.
    fn with_block(json: &[u8], block: usize) -> Rig {
        let mut host = Vst3Host::builder()
            .sample_rate(48_000.0)
            .block_size(block)
            .with_process_isolation(false)
            .build()
            .expect("VST3 host");
        let mut plugin = host.load_plugin(bundle("midisock.vst3")).expect("load midisock.vst3");
        assert_eq!(plugin.info().name, "midisock");
        // nice-plug's VST3 state is the JSON state itself.
        plugin.load_state(json).expect("load state");
        plugin.start_processing().expect("start processing");
        let buffers = AudioBuffers::new(2, 2, block, 48_000.0);
        Rig { plugin: Some(plugin), buffers, block, _host: host }
    }

    fn plugin(&mut self) -> &mut Plugin {
        self.plugin.as_mut().expect("loaded")
    }

    /// One block with `input` at their sample offsets; returns the MIDI the plugin put out.
    fn process(&mut self, input: &[(i32, MidiEvent)]) -> Vec<Vec<u8>> {
        self.process_block(input);
        self.plugin().take_output_midi().iter().map(to_bytes).collect()
    }

    /// One block with `input`; the output stays in the plugin's queue.
    fn process_block(&mut self, input: &[(i32, MidiEvent)]) {
        for (offset, event) in input {
            let event = *event;
            self.plugin().send_midi_event_at(event, *offset).expect("queue input event");
        }
        let mut buffers = std::mem::replace(&mut self.buffers, AudioBuffers::new(0, 0, self.block, 48_000.0));
        self.plugin().process_audio(&mut buffers).expect("process");
        self.buffers = buffers;
    }
}

impl HostRig for Rig {
    fn process_midi(&mut self, input: &[(u32, [u8; 3])]) -> Vec<Vec<u8>> {
        let input: Vec<(i32, MidiEvent)> =
            input.iter().map(|&(offset, data)| (offset as i32, from_bytes(data))).collect();
        self.process(&input)
    }
}

fn to_bytes(e: &MidiEvent) -> Vec<u8> {
    match *e {
        MidiEvent::NoteOn { channel, note, velocity } => vec![0x90 | channel.as_index(), note, velocity],
        MidiEvent::NoteOff { channel, note, velocity } => vec![0x80 | channel.as_index(), note, velocity],
        MidiEvent::ControlChange { channel, controller, value } => vec![0xB0 | channel.as_index(), controller, value],
        MidiEvent::ProgramChange { channel, program } => vec![0xC0 | channel.as_index(), program],
        MidiEvent::PitchBend { channel, value } => {
            vec![0xE0 | channel.as_index(), (value & 0x7F) as u8, (value >> 7) as u8]
        }
        MidiEvent::ChannelAftertouch { channel, pressure } => vec![0xD0 | channel.as_index(), pressure],
        MidiEvent::PolyAftertouch { channel, note, pressure } => vec![0xA0 | channel.as_index(), note, pressure],
        ref other => panic!("unexpected output event {other:?}"),
    }
}

/// The input event of a note-on or note-off's bytes (all the shared scenarios send).
fn from_bytes([status, note, velocity]: [u8; 3]) -> MidiEvent {
    let channel = MidiChannel::from_index(status & 0x0F).expect("a MIDI channel");
    match status & 0xF0 {
        0x90 => MidiEvent::NoteOn { channel, note, velocity },
        0x80 => MidiEvent::NoteOff { channel, note, velocity },
        _ => panic!("no VST3 input event for {status:02X} here"),
    }
}

fn note_on(channel: MidiChannel, note: u8, velocity: u8) -> MidiEvent {
    MidiEvent::NoteOn { channel, note, velocity }
}

#[test]
fn vst3_track_events_reach_the_server_and_server_messages_come_out() {
    let server = server();
    let mut rig = Rig::new(&server.local_addr().to_string());
    rig.wait_for_clients(&server, 1);

    let cc = MidiEvent::ControlChange { channel: MidiChannel::Ch2, controller: 1, value: 64 };
    let thru = rig.process(&[(2, note_on(MidiChannel::Ch1, 60, 100)), (9, cc)]);
    assert_eq!(thru, vec![vec![0x90, 60, 100], vec![0xB1, 1, 64]], "thru is on by default");
    assert_eq!(
        receive_n(&server, 2),
        vec![
            "note_on channel=0 note=60 velocity=100".parse::<Message>().unwrap(),
            "control_change channel=1 control=1 value=64".parse().unwrap(),
        ]
    );

    server_messages_come_out(
        &mut rig,
        &server,
        &[
            "note_on channel=3 note=65 velocity=70",
            "control_change channel=3 control=11 value=100",
            "note_off channel=3 note=65 velocity=0",
        ],
    );
}

#[test]
fn vst3_reconnects_after_a_server_restart_and_releases_notes() {
    reconnects_after_the_server_restarts_and_releases_the_network_notes(Rig::new);
}

#[test]
fn vst3_removing_the_plugin_sends_note_offs_to_the_network() {
    let server = server();
    let mut rig = Rig::new(&server.local_addr().to_string());
    rig.wait_for_clients(&server, 1);
    rig.process(&[(0, note_on(MidiChannel::Ch1, 72, 90))]);
    assert_eq!(receive_n(&server, 1).len(), 1);

    let mut plugin = rig.plugin.take().unwrap();
    plugin.stop_processing().expect("stop processing");
    drop(plugin);
    assert_eq!(receive_n(&server, 1), vec!["note_off channel=0 note=72 velocity=0".parse::<Message>().unwrap()]);
}

#[test]
fn vst3_reaches_a_server_protected_by_a_token_and_tls() {
    scenarios::reaches_a_server_protected_by_a_token_and_tls(Rig::with_state);
}

#[test]
fn vst3_a_wrong_token_is_refused_by_the_protected_server() {
    scenarios::a_wrong_token_is_refused_by_the_protected_server(Rig::with_state);
}

/// The jitter buffer, end to end (see [`JitterRun`]): notes come out at their sent spacing, at
/// the sample offsets VST3 carries.
#[test]
fn vst3_with_a_jitter_buffer_notes_land_at_their_sent_spacing_in_the_block() {
    let mut run = JitterRun::client();
    let mut rig = Rig::with_block(&run.state, JitterRun::FRAMES as usize);
    let mut note_on_offsets = move || {
        rig.process_block(&[]);
        rig.plugin()
            .take_output_events()
            .into_iter()
            .filter(|e| matches!(e.data, vst3_host::PluginEventData::NoteOn { .. }))
            .map(|e| u32::try_from(e.sample_offset).expect("a sample offset inside the block"))
            .collect::<Vec<u32>>()
    };
    run.connect(&mut note_on_offsets);
    run.check(note_on_offsets);
}
