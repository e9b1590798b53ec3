//! The GUI (nice-plug-egui): mode and address (saved with the project), the automatable
//! parameters, and the connection status.

use crate::shared::{Mode, Status};
use crate::MidisockParams;
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp, RepaintNotifier};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The editor's state (egui immediate mode: everything is drawn from it each frame).
#[allow(missing_debug_implementations)] // holds MidisockParams and GuiContext
pub struct App {
    params: Arc<MidisockParams>,
    status: Arc<Status>,
    gui: Option<GuiContext>,
    /// The address being edited; applied on Enter or with the Apply button.
    address_edit: String,
    mode_edit: Mode,
}

pub fn create(
    params: Arc<MidisockParams>,
    status: Arc<Status>,
    state: Arc<EguiEditorState>,
) -> Option<EguiEditor<App>> {
    let app = App { address_edit: params.address.get(), mode_edit: params.mode.get(), params, status, gui: None };
    let settings = EguiNiceSettings::new()
        .with_tile("midisock")
        // The status counters change without any GUI event: repaint a few times a second.
        .with_repaint_poll_interval(Duration::from_millis(100));
    nice_plug_egui::create_egui_editor(state, RepaintNotifier::new(), settings, app)
}

impl NiceEguiApp for App {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        let _ = egui_ctx;
        self.address_edit = self.params.address.get();
        self.mode_edit = self.params.mode.get();
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        ui.ctx().request_repaint_after(Duration::from_millis(250));
        ui.heading("midisock — MIDI over TCP");
        ui.horizontal(|ui| {
            ui.label("Mode");
            ui.radio_value(&mut self.mode_edit, Mode::Client, "Client");
            ui.radio_value(&mut self.mode_edit, Mode::Server, "Server");
        });
        let mut apply = false;
        ui.horizontal(|ui| {
            ui.label("Address");
            let field = ui.text_edit_singleline(&mut self.address_edit);
            apply |= field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            apply |= ui.button("Apply").clicked();
        });
        if apply {
            let address = self.address_edit.trim().to_string();
            if address != self.params.address.get() {
                self.params.address.set(address);
            }
            if self.mode_edit != self.params.mode.get() {
                self.params.mode.set(self.mode_edit);
            }
        }
        if let Some(gui) = &self.gui {
            let setter = gui.param_setter();
            egui::Grid::new("params").show(ui, |ui| {
                ui.label("Direction");
                ui.add(ParamSlider::for_param(&self.params.direction, &setter));
                ui.end_row();
                ui.label("Thru");
                ui.add(ParamSlider::for_param(&self.params.thru, &setter));
                ui.end_row();
                ui.label("Channel");
                ui.add(ParamSlider::for_param(&self.params.channel, &setter));
                ui.end_row();
            });
        }
        ui.separator();
        let s = &self.status;
        egui::Grid::new("status").show(ui, |ui| {
            ui.label("State");
            ui.label(s.state().label());
            ui.end_row();
            ui.label("Peers");
            ui.label(s.peers.load(Ordering::Relaxed).to_string());
            ui.end_row();
            ui.label("Sent");
            ui.label(s.sent.load(Ordering::Relaxed).to_string());
            ui.end_row();
            ui.label("Received");
            ui.label(s.received.load(Ordering::Relaxed).to_string());
            ui.end_row();
            ui.label("Dropped");
            ui.label(s.dropped.load(Ordering::Relaxed).to_string());
            ui.end_row();
            ui.label("Last error");
            let error = s.last_error();
            ui.label(if error.is_empty() { "—".to_string() } else { error });
            ui.end_row();
        });
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}
