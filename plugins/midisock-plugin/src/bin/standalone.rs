//! `midisock-standalone`: the plugin with its editor as an application, no DAW needed (nice-plug's
//! standalone wrapper). MIDI comes from and goes to JACK (`--backend jack`), or nowhere with the
//! dummy backend (`--backend dummy`), which is enough to use and test the GUI and the network side.
//! `--help` lists the wrapper's options. The window's scale comes from the desktop's `Xft.dpi` X
//! resource (192 for 200 %); the wrapper's `--dpi-scale` option does nothing in nice-plug 0.4.2.

fn main() -> std::process::ExitCode {
    if nice_plug::nice_export_standalone::<midisock_plugin::Midisock>() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
