//! `cargo xtask bundle <plugin> [--release] [cargo build options]`: builds a nice-plug plugin and
//! packs it as `<target>/bundled/<name>.vst3` and `<name>.clap` (names from `bundler.toml`).
//!
//! The bundling itself is nice-plug-xtask's library entry point. Around it: the Debian packages
//! the GUI dependencies need to link (a fresh CI machine has none of them), and the cargo target
//! directory — nice-plug-xtask asks `cargo metadata`, which honours CARGO_TARGET_DIR like
//! [`env::target_dir`] does, so bundles land next to the build either way.

use crate::env;

/// What the plugin's GUI stack (baseview, egui, OpenGL, clipboard) needs to build on Debian 12,
/// as `(probe, package)` pairs for [`env::ensure_debian_packages`]. Found out from the build
/// scripts of the dependencies and the linked result: the X11, XCB and GL libraries are all
/// opened at run time (x11-dl, x11rb with `dl-libxcb`, GLX through x11-dl), so the bundle links
/// only libc, libm and libgcc_s (`ldd target/bundled/midisock.clap`) and no -dev package is
/// needed. x11-dl's build script asks pkg-config for the libraries' directories (optional: it
/// falls back to the loader's search path), so pkg-config is all we install. Opening the editor
/// at run time needs a display and the runtime libraries libx11-6, libxcb1 and libgl1.
const GUI_BUILD_PACKAGES: &[(&str, &str)] = &[("pkg-config --version", "pkg-config")];

pub fn run(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        return Err("usage: cargo xtask bundle <plugin> [--release] [cargo build options]".into());
    }
    env::ensure_debian_packages(GUI_BUILD_PACKAGES)?;
    // nice-plug-xtask finds the workspace root from CARGO_MANIFEST_DIR (set by `cargo run`).
    std::env::set_current_dir(env::repo_root()).map_err(|e| format!("cannot enter the repository root: {e}"))?;
    let mut full = vec!["bundle".to_string()];
    full.extend(args.iter().cloned());
    nice_plug_xtask::main_with_args("cargo xtask", full).map_err(|e| format!("bundle: {e:#}"))?;
    let bundled = env::target_dir().join("bundled");
    eprintln!("xtask: bundles are in {}", bundled.display());
    Ok(())
}
