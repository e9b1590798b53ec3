//! # midisock — the DAW plugin (VST3 + CLAP, built with nice-plug)
//!
//! Sits on a track, sends the track's MIDI to a midisock (or mido) socket server and plays the
//! MIDI arriving from the network into the track. Client mode connects (and reconnects with
//! backoff); server mode listens and serves any number of clients (broadcast out, merge in).
//!
//! This file is glue: parameters, `process()`, exports. The work is in
//! - [`engine`]: the audio thread's side — rings, note tracking, event merging;
//! - [`network`]: the named network thread — socket or server, reconnection, send scheduling;
//! - [`timing`]: the timing policy (sample clock ↔ wall clock) and the latency it adds;
//! - [`event`]: the small `Copy` events on the rings, conversions;
//! - [`ring`]: the lock-free channels — an rtrb ring of events plus an rtrb byte ring for sysex;
//! - [`shared`]: settings saved with the project, connection status for the GUI.
//!
//! ## Real-time contract
//! `process()` never allocates, locks or makes a system call: it reads parameters (atomics),
//! moves small fixed-size events (and sysex bytes) through pre-allocated rtrb rings and counts
//! drops with one atomic add. Debug and test bundles are built with nice-plug's `assert_process_allocs`, which aborts on
//! any allocation inside `process()`.
//!
//! ## No stuck notes
//! The plugin tracks the notes it holds down on both sides. When the connection drops, the notes
//! the network put into the track get note-offs (into the track). When the plugin is bypassed,
//! deactivated or removed, or sending is switched off, the notes it sent to the network get
//! note-offs (to the network); bypass, switching receiving off and a lost connection release the
//! network's notes in the track. (Once a host deactivates a plugin it calls `process()` no more,
//! so no event can go into the track then; hosts silence a deactivated plugin's output themselves.)
//!
//! ## Configuration in tests
//! The address, the mode, the protections and the jitter buffer are persisted fields
//! (`"address"`, `"mode"`, `"protection"`, `"jitter_buffer"`) of the plugin state; the host tests set them by loading a state, exactly as a
//! DAW does when it opens a project.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod editor;
pub mod engine;
pub mod event;
pub mod network;
pub mod ring;
pub mod shared;
pub mod timing;

use engine::{AudioEngine, Controls, TrackEvents, RING_CAPACITY, SYSEX_RING_BYTES};
use event::SysEx;
use network::{NetworkSettings, NetworkThread};
use nice_plug::midi::NoteEvent;
use nice_plug::prelude::*;
use nice_plug_egui::EguiEditorState;
use shared::{JitterBuffer, Mode, Protection, Setting, Status, DEFAULT_ADDRESS};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Which way MIDI travels.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Track → network only.
    #[id = "send"]
    Send,
    /// Network → track only.
    #[id = "receive"]
    Receive,
    /// Both ways.
    #[id = "both"]
    Both,
}

// NOTE: nice-plug's parameter types do not implement Debug.
#[allow(missing_debug_implementations)]
#[derive(Params)]
pub struct MidisockParams {
    /// Client or server; saved with the project, edited in the GUI.
    #[persist = "mode"]
    pub mode: Setting<Mode>,
    /// `host:port` to connect to (client) or listen on (server); saved with the project, edited
    /// in the GUI.
    #[persist = "address"]
    pub address: Setting<String>,
    /// Token, TLS files and allowlist; saved with the project, edited in the GUI.
    #[persist = "protection"]
    pub protection: Setting<Protection>,
    /// The jitter buffer on received messages; saved with the project, edited in the GUI.
    #[persist = "jitter_buffer"]
    pub jitter_buffer: Setting<JitterBuffer>,
    #[id = "direction"]
    pub direction: EnumParam<Direction>,
    /// Track input also goes to the track output.
    #[id = "thru"]
    pub thru: BoolParam,
    /// 0: every channel; 1–16: only that channel travels (system messages always do).
    #[id = "channel"]
    pub channel: IntParam,
    /// The host's bypass switch.
    #[id = "bypass"]
    pub bypass: BoolParam,
    /// Bumped on every change of `mode`, `address`, `protection` or `jitter_buffer`.
    generation: Arc<AtomicU64>,
}

impl Default for MidisockParams {
    fn default() -> Self {
        let generation = Arc::new(AtomicU64::new(0));
        MidisockParams {
            mode: Setting::new(Mode::Client, Arc::clone(&generation)),
            address: Setting::new(DEFAULT_ADDRESS.to_string(), Arc::clone(&generation)),
            protection: Setting::new(Protection::default(), Arc::clone(&generation)),
            jitter_buffer: Setting::new(JitterBuffer::Off, Arc::clone(&generation)),
            direction: EnumParam::new("Direction", Direction::Both),
            thru: BoolParam::new("Thru", true),
            channel: IntParam::new("Channel", 0, IntRange::Linear { min: 0, max: 16 })
                .with_value_to_string(Arc::new(|c| if c == 0 { "All".into() } else { c.to_string() }))
                .with_string_to_value(Arc::new(|s| match s.trim() {
                    s if s.eq_ignore_ascii_case("all") => Some(0),
                    s => s.parse().ok().filter(|c| (0..=16).contains(c)),
                })),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            generation,
        }
    }
}

impl MidisockParams {
    fn controls(&self) -> Controls {
        let direction = self.direction.value();
        let channel = self.channel.value();
        Controls {
            send: direction != Direction::Receive,
            receive: direction != Direction::Send,
            thru: self.thru.value(),
            channel: (channel > 0).then(|| (channel - 1) as u8),
            bypass: self.bypass.value(),
        }
    }

    /// Changes the connection settings together (the GUI's Apply): the network thread reconnects
    /// once, with all of them.
    pub fn apply_connection(&self, mode: Mode, address: String, protection: Protection, jitter_buffer: JitterBuffer) {
        self.mode.store(mode);
        self.address.store(address);
        self.protection.store(protection);
        self.jitter_buffer.store(jitter_buffer);
        self.protection.notify();
    }

    fn network_settings(&self) -> NetworkSettings {
        NetworkSettings {
            mode: self.mode.clone(),
            address: self.address.clone(),
            protection: self.protection.clone(),
            jitter_buffer: self.jitter_buffer.clone(),
            generation: Arc::clone(&self.generation),
        }
    }
}

#[allow(missing_debug_implementations)] // holds MidisockParams
pub struct Midisock {
    params: Arc<MidisockParams>,
    status: Arc<Status>,
    editor_state: Arc<EguiEditorState>,
    /// Created at the first activation, with the network thread.
    engine: Option<AudioEngine>,
    /// Declared after `engine`: dropped last, it sends the final note-offs and joins the thread.
    network: Option<NetworkThread>,
}

impl Default for Midisock {
    fn default() -> Self {
        Midisock {
            params: Arc::new(MidisockParams::default()),
            status: Arc::new(Status::default()),
            editor_state: EguiEditorState::from_size(
                nice_plug::editor::dpi::LogicalSize::new(editor::DEFAULT_SIZE.0, editor::DEFAULT_SIZE.1),
                1.0,
            ),
            engine: None,
            network: None,
        }
    }
}

impl Plugin for Midisock {
    const NAME: &'static str = "midisock";
    const VENDOR: &'static str = "midisock";
    const URL: &'static str = "https://github.com/midisock/midisock";
    const EMAIL: &'static str = "midisock@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    // A MIDI effect; the stereo pass-through is for hosts that refuse plugins without audio.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout::const_default(),
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;

    type Editor = nice_plug_egui::EguiEditor<editor::App>;
    type SysExMessage = SysEx;
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(self.params.clone(), self.status.clone(), self.editor_state.clone())
    }

    fn activate(
        &mut self,
        _layout: &AudioIOLayout,
        _config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        if self.engine.is_none() {
            let (engine, ends) = AudioEngine::new(self.status.clone(), RING_CAPACITY, SYSEX_RING_BYTES);
            match NetworkThread::spawn(
                self.params.network_settings(),
                self.status.clone(),
                ends.from_audio,
                ends.to_audio,
            ) {
                Ok(thread) => {
                    self.engine = Some(engine);
                    self.network = Some(thread);
                }
                Err(e) => {
                    self.status.set_attempt_error(format!("cannot start the network thread: {e}"));
                    return false;
                }
            }
        }
        true
    }

    fn deactivate(&mut self) {
        if let Some(engine) = &mut self.engine {
            engine.release_sent();
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let Some(engine) = &mut self.engine else {
            return ProcessStatus::Normal;
        };
        let len = buffer.samples() as u32;
        let sample_rate = context.transport().sample_rate;
        let controls = self.params.controls();
        let mut events = HostEvents { context, status: &self.status };
        engine.process(len, sample_rate, controls, &mut events);
        ProcessStatus::KeepAlive
    }
}

/// The host's event lists, as the engine sees them.
struct HostEvents<'a, C> {
    context: &'a mut C,
    status: &'a Status,
}

impl<C: ProcessContext<Midisock>> TrackEvents for HostEvents<'_, C> {
    fn next_input(&mut self) -> Option<NoteEvent<SysEx>> {
        self.context.next_event()
    }

    fn output(&mut self, event: NoteEvent<SysEx>) {
        if self.context.try_send_event(event).is_err() {
            self.status.count_dropped(1);
        }
    }
}

impl ClapPlugin for Midisock {
    const CLAP_ID: &'static str = "org.midisock.plugin";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("MIDI over TCP, wire-compatible with mido's socket ports");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::NoteEffect, ClapFeature::Utility];
}

impl Vst3Plugin for Midisock {
    const VST3_CLASS_ID: [u8; 16] = *b"midisockMidiSock";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Tools];
}

nice_export_clap!(Midisock);
nice_export_vst3!(Midisock);
