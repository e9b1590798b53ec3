//! The GUI (nice-plug-egui): the connection settings (mode, address, token, TLS, allowlist — saved
//! with the project and applied together), the automatable parameters, and the connection status
//! as a DAW user reads it at a glance: the state in colour, why it is not connected (the reason
//! first, wrapped), the attempt count and the time to the next attempt.
//!
//! The window is resizable (host resize or the corner grip) and scrolls when made smaller than its
//! content, so nothing is ever clipped.

use crate::shared::{JitterBuffer, LinkState, Mode, PeerPlayout, Problem, Protection, Status};
use crate::{Direction, MidisockParams};
use egui::{Color32, RichText};
use nice_plug::context::gui::{GuiContext, ParamSetter};
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::editor::ResizeHint;
use nice_plug::params::Param;
use nice_plug_egui::resizable_window::ResizableWindow;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp, RepaintNotifier};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The editor's size when first opened (logical points), and the smallest it may become.
pub const DEFAULT_SIZE: (f32, f32) = (480.0, 640.0);
/// Narrow enough for a laptop screen beside a DAW's mixer, wide enough for the widest row.
const MIN_SIZE: (f32, f32) = (400.0, 300.0);

const GREEN: Color32 = Color32::from_rgb(90, 200, 120);
const AMBER: Color32 = Color32::from_rgb(235, 175, 60);
const RED: Color32 = Color32::from_rgb(240, 100, 90);
const GREY: Color32 = Color32::from_rgb(150, 150, 150);

/// The connection settings as the GUI edits them, before Apply.
#[derive(Clone, PartialEq, Eq)]
struct Connection {
    mode: Mode,
    address: String,
    protection: Protection,
    jitter_buffer: JitterBuffer,
}

impl Connection {
    fn applied(params: &MidisockParams) -> Connection {
        Connection {
            mode: params.mode.get(),
            address: params.address.get(),
            protection: params.protection.get(),
            jitter_buffer: params.jitter_buffer.get(),
        }
    }
}

/// The editor's state (egui immediate mode: everything is drawn from it each frame).
#[allow(missing_debug_implementations)] // holds MidisockParams and GuiContext
pub struct App {
    params: Arc<MidisockParams>,
    status: Arc<Status>,
    gui: Option<GuiContext>,
    /// What the user is editing; applied with Apply (or Enter in a text field).
    edit: Connection,
    /// The applied settings as of the last frame: when they change under us (the host loaded a
    /// project) and nothing is being edited, the fields follow.
    seen: Connection,
}

pub fn create(
    params: Arc<MidisockParams>,
    status: Arc<Status>,
    state: Arc<EguiEditorState>,
) -> Option<EguiEditor<App>> {
    let applied = Connection::applied(&params);
    let app = App { edit: applied.clone(), seen: applied, params, status, gui: None };
    let settings = EguiNiceSettings::new()
        .with_tile("midisock")
        .with_resize_hint(ResizeHint::resizable().with_min_logical_size(LogicalSize::new(MIN_SIZE.0, MIN_SIZE.1)))
        // The status counters change without any GUI event: repaint a few times a second.
        .with_repaint_poll_interval(Duration::from_millis(100));
    nice_plug_egui::create_egui_editor(state, RepaintNotifier::new(), settings, app)
}

impl NiceEguiApp for App {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.edit = Connection::applied(&self.params);
        self.seen = self.edit.clone();
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        ui.ctx().request_repaint_after(Duration::from_millis(250));
        self.follow_applied();
        ResizableWindow::new("midisock").min_size(egui::vec2(MIN_SIZE.0, MIN_SIZE.1)).show(ui, |ui| {
            // The resizable window hands out the whole window: the margins are ours.
            egui::Frame::new().fill(ui.visuals().panel_fill).inner_margin(12.0).show(ui, |ui| {
                // Shorter than its content, the window scrolls (the minimum width fits every row).
                egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                    ui.heading("midisock · MIDI over TCP");
                    ui.add_space(6.0);
                    section(ui, "Connection", |ui| self.connection_ui(ui));
                    section(ui, "MIDI", |ui| self.midi_ui(ui));
                    section(ui, "Status", |ui| self.status_ui(ui));
                });
            });
        });
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}

impl App {
    fn follow_applied(&mut self) {
        let applied = Connection::applied(&self.params);
        if applied != self.seen {
            if self.edit == self.seen {
                self.edit = applied.clone();
            }
            self.seen = applied;
        }
    }

    fn connection_ui(&mut self, ui: &mut egui::Ui) {
        let mut apply = false;
        egui::Grid::new("connection").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
            ui.label("Mode");
            ui.horizontal_wrapped(|ui| {
                ui.radio_value(&mut self.edit.mode, Mode::Client, "Client (connect)");
                ui.radio_value(&mut self.edit.mode, Mode::Server, "Server (listen)");
            });
            ui.end_row();
            apply |= text_row(ui, "Address", &mut self.edit.address, "host:port", false);
            apply |= text_row(ui, "Token", &mut self.edit.protection.token, "none", true);
            let p = &mut self.edit.protection;
            match self.edit.mode {
                Mode::Client => {
                    apply |= text_row(ui, "TLS CA file", &mut p.tls_ca, "none: plain TCP", false);
                    apply |= text_row(ui, "TLS name", &mut p.tls_server_name, "the host's", false);
                }
                Mode::Server => {
                    apply |= text_row(ui, "TLS cert", &mut p.tls_cert, "none: plain TCP", false);
                    apply |= text_row(ui, "TLS key", &mut p.tls_key, "none", false);
                    apply |= text_row(ui, "Allow", &mut p.allow, "everyone, or e.g. 192.168.1.0/24, ::1", false);
                }
            }
            ui.label("Jitter buffer").on_hover_text(JITTER_BUFFER_HELP);
            ui.horizontal_wrapped(|ui| jitter_buffer_choice(ui, &mut self.edit.jitter_buffer));
            ui.end_row();
        });
        let dirty = self.edit != self.seen;
        ui.horizontal_wrapped(|ui| {
            apply |= ui.add_enabled(dirty, egui::Button::new("Apply")).clicked();
            if ui.add_enabled(dirty, egui::Button::new("Revert")).clicked() {
                self.edit = self.seen.clone();
            }
            if dirty {
                ui.label(RichText::new("changed, not applied yet").color(AMBER));
            }
        });
        if apply && dirty {
            let mut edit = self.edit.clone();
            edit.address = edit.address.trim().to_string();
            self.params.apply_connection(edit.mode, edit.address.clone(), edit.protection.clone(), edit.jitter_buffer);
            self.edit = edit.clone();
            self.seen = edit;
        }
    }

    fn midi_ui(&mut self, ui: &mut egui::Ui) {
        let Some(gui) = &self.gui else { return };
        let setter = gui.param_setter();
        let params = &self.params;
        egui::Grid::new("midi").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
            ui.label("Direction");
            ui.horizontal_wrapped(|ui| {
                for (direction, label) in
                    [(Direction::Send, "Send"), (Direction::Receive, "Receive"), (Direction::Both, "Both")]
                {
                    if ui.radio(params.direction.value() == direction, label).clicked() {
                        set_param(&setter, &params.direction, direction);
                    }
                }
            });
            ui.end_row();
            ui.label("Thru");
            let mut thru = params.thru.value();
            if ui.checkbox(&mut thru, "track input also to the track output").changed() {
                set_param(&setter, &params.thru, thru);
            }
            ui.end_row();
            ui.label("Channel");
            let current = params.channel.value();
            egui::ComboBox::from_id_salt("channel").selected_text(channel_label(current)).show_ui(ui, |ui| {
                for channel in 0..=16 {
                    if ui.selectable_label(channel == current, channel_label(channel)).clicked() {
                        set_param(&setter, &params.channel, channel);
                    }
                }
            });
            ui.end_row();
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let s = &self.status;
        let state = s.state();
        let mode = self.params.mode.get();
        let address = self.params.address.get();
        let peers = s.peers.load(Ordering::Relaxed);
        let (headline, colour) = match state {
            LinkState::Idle => ("idle: the host has not started the plugin".to_string(), GREY),
            LinkState::Connecting => (format!("connecting to {address}"), AMBER),
            LinkState::Connected => (format!("connected to {address}"), GREEN),
            LinkState::Listening => {
                let clients = if peers == 1 { "1 client".to_string() } else { format!("{peers} clients") };
                (format!("listening on {address}, {clients}"), GREEN)
            }
            LinkState::Retrying => {
                let attempts = s.failed_attempts.load(Ordering::Relaxed);
                let wait_ns = s.retry_at_ns.load(Ordering::Acquire).saturating_sub(midisock::monotonic_ns());
                let verb = if mode == Mode::Server { "listen" } else { "connect" };
                let tried = match attempts {
                    0 => "disconnected".to_string(),
                    1 => format!("could not {verb} (1 attempt)"),
                    n => format!("could not {verb} ({n} attempts)"),
                };
                (format!("{tried}, next attempt in {:.1} s", wait_ns as f64 / 1e9), RED)
            }
        };
        ui.horizontal_wrapped(|ui| {
            // A painted lamp: the bundled fonts have no "●".
            let (lamp, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter().circle_filled(lamp.center(), 5.0, colour);
            ui.add(egui::Label::new(RichText::new(headline).color(colour).strong()).wrap());
        });
        if !state.is_up() {
            problem_ui(ui, &s.problem());
        }
        let jitter_buffer = self.params.jitter_buffer.get();
        if state.is_up() && jitter_buffer != JitterBuffer::Off {
            playout_ui(ui, mode, &s.playout());
        }
        ui.add_space(4.0);
        egui::Grid::new("counters").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| {
            let mut row = |label: &str, value: String| {
                ui.label(label);
                ui.label(value);
                ui.end_row();
            };
            row("Peers", peers.to_string());
            row("Sent", s.sent.load(Ordering::Relaxed).to_string());
            row("Received", s.received.load(Ordering::Relaxed).to_string());
            row("Dropped", s.dropped.load(Ordering::Relaxed).to_string());
            if mode == Mode::Server {
                row("Refused", s.refused_clients.load(Ordering::Relaxed).to_string());
            }
        });
    }
}

/// A titled, framed group of rows.
fn section(ui: &mut egui::Ui, title: &str, add: impl FnOnce(&mut egui::Ui)) {
    ui.label(RichText::new(title).strong());
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        add(ui);
    });
    ui.add_space(8.0);
}

/// A label and a text field filling the row; true when Enter was pressed in it.
fn text_row(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str, password: bool) -> bool {
    ui.label(label);
    let field =
        ui.add(egui::TextEdit::singleline(text).hint_text(hint).password(password).desired_width(f32::INFINITY));
    ui.end_row();
    field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}

const JITTER_BUFFER_HELP: &str = "Plays each received message at its sender's time plus a constant delay, \
    so network jitter becomes a fixed latency and the track gets the performance's timing. \
    Needs a midisock peer (it stamps its messages when asked); mido peers are played on arrival. \
    Auto picks the smallest delay that keeps 99.9 % of messages on time.";

/// Off / Fixed [ms] / Auto.
fn jitter_buffer_choice(ui: &mut egui::Ui, setting: &mut JitterBuffer) {
    ui.radio_value(setting, JitterBuffer::Off, "Off");
    let fixed = matches!(setting, JitterBuffer::Fixed { .. });
    if ui.radio(fixed, "Fixed").clicked() && !fixed {
        *setting = JitterBuffer::Fixed { ms: JitterBuffer::DEFAULT_FIXED_MS };
    }
    if let JitterBuffer::Fixed { ms } = setting {
        ui.add(egui::DragValue::new(ms).range(0..=JitterBuffer::MAX_FIXED_MS).speed(0.5).suffix(" ms"));
    }
    ui.radio_value(setting, JitterBuffer::Auto, "Auto");
}

/// The jitter buffers in force: the delay, the network's jitter and the late messages, per peer.
fn playout_ui(ui: &mut egui::Ui, mode: Mode, peers: &[PeerPlayout]) {
    // A peer that has not stamped a message (mido, or a midisock peer that has not sent yet) has
    // nothing in its buffer to show.
    let peers: Vec<&PeerPlayout> = peers.iter().filter(|p| p.stats.pushed > 0).collect();
    if peers.is_empty() {
        let who = if mode == Mode::Server { "no client stamps" } else { "the server does not stamp" };
        ui.add(
            egui::Label::new(
                RichText::new(format!("Jitter buffer: {who} its messages (yet): they go in on arrival")).color(GREY),
            )
            .wrap(),
        );
        return;
    }
    // A server with many clients shows the first few; the rest are summed up.
    const SHOWN: usize = 4;
    for peer in peers.iter().take(SHOWN) {
        let who = peer.peer.map(|a| format!(" ({a})")).unwrap_or_default();
        ui.add(egui::Label::new(format!("Jitter buffer{who}: {}", playout_summary(&peer.stats))).wrap());
    }
    if peers.len() > SHOWN {
        let late: u64 = peers[SHOWN..].iter().map(|p| p.stats.late).sum();
        ui.label(format!("… and {} more clients, {late} late", peers.len() - SHOWN));
    }
}

/// "delay 12.8 ms, jitter 1.2 / 8.4 ms (median / 99.9 %), 3 late".
fn playout_summary(stats: &midisock::timing::PlayoutStats) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let jitter = match (stats.jitter_p50_ns, stats.jitter_p999_ns) {
        (Some(p50), Some(p999)) => format!("jitter {:.1} / {:.1} ms (median / 99.9 %)", ms(p50), ms(p999)),
        _ => "jitter not measured yet".to_string(),
    };
    let mut text = format!("delay {:.1} ms, {jitter}, {} late", ms(stats.delay_ns), stats.late);
    if stats.stale_notes_dropped > 0 {
        text.push_str(&format!(", {} stale notes dropped", stats.stale_notes_dropped));
    }
    text
}

/// Why it is not connected, the reason first, wrapped to the window.
fn problem_ui(ui: &mut egui::Ui, problem: &Problem) {
    for (what, text) in [("Disconnected", &problem.lost), ("Last attempt", &problem.attempt)] {
        if !text.is_empty() {
            ui.add(egui::Label::new(RichText::new(format!("{what}: {text}")).color(RED)).wrap());
        }
    }
}

fn channel_label(channel: i32) -> String {
    if channel == 0 {
        "All channels".to_string()
    } else {
        format!("Channel {channel}")
    }
}

/// One complete gesture on a parameter, so the host records it (automation, undo).
fn set_param<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}
