//! A minimal CLAP host that opens the plugin's editor the way a DAW does on Linux, at the scale the
//! host asks for: `clap_gui_host <midisock.clap> <scale>`.
//!
//! It follows the CLAP GUI sequence: `create` (X11, embedded), `set_scale`, `get_size`, a parent
//! X11 window of that size, `set_parent`, `show`. It prints the parent window's id, then the
//! size the plugin asked for (`window 0x… size W×H`), and runs until killed.
//! `cargo xtask plugin-gui` uses it to check the editor at a host's 200 % on a display without
//! an `Xft.dpi` resource (with one, the editor follows the desktop's scale instead).

use clack_extensions::gui::{GuiApiType, GuiConfiguration, GuiSize, HostGui, HostGuiImpl, PluginGui, Window};
use clack_host::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, CreateWindowAux, PropMode, WindowClass};
use x11rb::wrapper::ConnectionExt as _;

struct Shared {
    callback_requested: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::Release);
    }
}

impl HostGuiImpl for Shared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> Result<(), HostError> {
        // The parent keeps the size the plugin reported after set_scale.
        Ok(())
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {}
}

struct GuiHost;

impl HostHandlers for GuiHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostGui>();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, scale] = args.as_slice() else {
        return Err("usage: clap_gui_host <midisock.clap> <scale>".into());
    };
    let scale: f64 = scale.parse().map_err(|e| format!("scale {scale:?}: {e}"))?;

    // SAFETY: the file is this workspace's own plugin; loading it runs nice-plug's initialisers.
    let entry = unsafe { PluginEntry::load(path) }?;
    let factory = entry.get_plugin_factory().ok_or("no plugin factory")?;
    let id = factory.plugin_descriptors().next().and_then(|d| d.id()).ok_or("no plugin")?.to_owned();
    let info = HostInfo::new("midisock GUI host", "midisock", "https://example.invalid", "1.0")?;
    let mut instance = PluginInstance::<GuiHost>::new(
        |_| Shared { callback_requested: AtomicBool::new(false) },
        |_| (),
        &entry,
        &id,
        &info,
    )?;

    let gui: PluginGui = instance.plugin_handle().get_extension().ok_or("the plugin has no GUI extension")?;
    let plugin = instance.plugin_handle();
    let config = GuiConfiguration { api_type: GuiApiType::X11, is_floating: false };
    if !gui.is_api_supported(&plugin, config) {
        return Err("the plugin does not support an embedded X11 GUI".into());
    }
    gui.create(&plugin, config)?;
    gui.set_scale(&plugin, scale)?;
    let size = gui.get_size(&plugin).ok_or("the plugin reported no GUI size")?;

    let (conn, screen_index) = x11rb::connect(None)?;
    let screen = &conn.setup().roots[screen_index];
    let parent = conn.generate_id()?;
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        parent,
        screen.root,
        0,
        0,
        u16::try_from(size.width)?,
        u16::try_from(size.height)?,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().background_pixel(screen.black_pixel),
    )?
    .check()?;
    conn.change_property8(PropMode::REPLACE, parent, AtomEnum::WM_NAME, AtomEnum::STRING, b"midisock GUI host")?
        .check()?;
    conn.map_window(parent)?.check()?;

    // SAFETY: `parent` stays alive (and mapped) until this process ends.
    unsafe { gui.set_parent(&plugin, Window::from_x11_handle(parent.into())) }?;
    gui.show(&plugin)?;
    println!("window {parent:#x} size {}x{}", size.width, size.height);

    loop {
        if instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::AcqRel)) {
            instance.call_on_main_thread_callback();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
