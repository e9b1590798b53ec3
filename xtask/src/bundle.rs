//! `cargo xtask bundle <plugin> [--release] [cargo build options]`: builds a nice-plug plugin and
//! packs it as `<target>/bundled/<name>.vst3` and `<name>.clap` (names from `bundler.toml`).
//!
//! The bundling itself is nice-plug-xtask's library entry point. Around it: the Debian packages
//! the GUI dependencies need to link (a fresh CI machine has none of them), and the cargo target
//! directory — nice-plug-xtask asks `cargo metadata`, which honours CARGO_TARGET_DIR like
//! [`env::target_dir`] does, so bundles land next to the build either way.

use crate::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the plugin's GUI stack (baseview, egui, OpenGL, clipboard) needs to build on Debian 12,
/// as `(probe, package)` pairs for [`env::ensure_debian_packages`]. Found out from the build
/// scripts of the dependencies and the linked result: the X11, XCB and GL libraries are all
/// opened at run time (x11-dl, x11rb with `dl-libxcb`, GLX through x11-dl), so the bundle links
/// only libc, libm and libgcc_s (`ldd target/bundled/midisock.clap`) and no -dev package is
/// needed. x11-dl's build script asks pkg-config for the libraries' directories (optional: it
/// falls back to the loader's search path), so pkg-config is all we install. Opening the editor
/// at run time needs a display and the runtime libraries libx11-6, libxcb1 and libgl1.
/// `objcopy` and `strip` (binutils) split the debug info off release bundles.
const GUI_BUILD_PACKAGES: &[(&str, &str)] =
    &[("pkg-config --version", "pkg-config"), ("objcopy --version", "binutils")];

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
    if args.iter().any(|a| a == "--release") && cfg!(target_os = "linux") {
        // The workspace's release profile keeps line tables (`debug = 1`) for profiling the
        // library; a plugin bundle ships without them. They go to `<name>.debug` next to the
        // bundles (linked with a debuglink, so gdb finds them) and the binaries are stripped.
        for binary in bundle_binaries(&bundled)? {
            split_debug_info(&binary)?;
        }
    }
    eprintln!("xtask: bundles are in {}", bundled.display());
    Ok(())
}

/// The plugin binaries inside the Linux bundles in `bundled`: `<name>.clap` is the shared library
/// itself, `<name>.vst3` a folder with it in `Contents/<arch>-linux/`.
fn bundle_binaries(bundled: &Path) -> Result<Vec<PathBuf>, String> {
    let mut binaries = Vec::new();
    let entries = std::fs::read_dir(bundled).map_err(|e| format!("cannot read {}: {e}", bundled.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("clap") if path.is_file() => binaries.push(path),
            Some("vst3") if path.is_dir() => {
                let arch = format!("{}-linux", std::env::consts::ARCH);
                let dir = path.join("Contents").join(arch);
                for so in std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?.flatten()
                {
                    if so.path().extension().is_some_and(|e| e == "so") {
                        binaries.push(so.path());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(binaries)
}

/// Moves the debug info of `binary` into `<binary>.debug` and strips `binary`.
fn split_debug_info(binary: &Path) -> Result<(), String> {
    let before = size(binary)?;
    let mut debug = binary.as_os_str().to_owned();
    debug.push(".debug");
    let debug = PathBuf::from(debug);
    env::run(Command::new("objcopy").arg("--only-keep-debug").arg(binary).arg(&debug))?;
    env::run(Command::new("strip").args(["--strip-debug", "--strip-unneeded"]).arg(binary))?;
    env::run(Command::new("objcopy").arg(format!("--add-gnu-debuglink={}", debug.display())).arg(binary))?;
    // Outside the bundle, so installing a bundle copies only what a DAW loads.
    let parked = binary_debug_home(binary);
    std::fs::rename(&debug, &parked).map_err(|e| format!("cannot move {}: {e}", debug.display()))?;
    eprintln!(
        "xtask: stripped {}: {:.1} MB -> {:.1} MB (debug info in {})",
        binary.display(),
        before as f64 / 1e6,
        size(binary)? as f64 / 1e6,
        parked.display()
    );
    Ok(())
}

/// `<bundled>/debug/<file name>.debug`.
fn binary_debug_home(binary: &Path) -> PathBuf {
    let bundled = env::target_dir().join("bundled").join("debug");
    let _ = std::fs::create_dir_all(&bundled);
    let mut name = binary.file_name().unwrap_or_default().to_owned();
    name.push(".debug");
    bundled.join(name)
}

fn size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| format!("cannot stat {}: {e}", path.display()))
}
