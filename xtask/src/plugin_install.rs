//! `cargo xtask install-plugin`: bundles the plugin (release, stripped: see [`crate::bundle`]) and
//! copies `midisock.vst3` and `midisock.clap` into the current user's plugin folders, where DAWs
//! look for them:
//!
//! | platform | VST3                                   | CLAP                                  |
//! |----------|----------------------------------------|---------------------------------------|
//! | Linux    | `~/.vst3`                              | `~/.clap`                             |
//! | macOS    | `~/Library/Audio/Plug-Ins/VST3`        | `~/Library/Audio/Plug-Ins/CLAP`       |
//! | Windows  | `%LOCALAPPDATA%\Programs\Common\VST3`  | `%LOCALAPPDATA%\Programs\Common\CLAP` |

use crate::env;
use std::fs;
use std::path::{Path, PathBuf};

pub fn run(args: &[String]) -> Result<(), String> {
    let release = match args {
        [] => true,
        [flag] if flag == "--debug" => false,
        other => return Err(format!("usage: cargo xtask install-plugin [--debug], got {other:?}")),
    };
    let mut bundle_args = vec!["midisock-plugin".to_string()];
    if release {
        bundle_args.push("--release".into());
    }
    crate::bundle::run(&bundle_args)?;
    let bundled = env::target_dir().join("bundled");
    let (vst3_dir, clap_dir) = user_plugin_dirs()?;
    for (name, dir) in [("midisock.vst3", &vst3_dir), ("midisock.clap", &clap_dir)] {
        let to = dir.join(name);
        replace(&bundled.join(name), &to)?;
        eprintln!("xtask: installed {}", to.display());
    }
    eprintln!("xtask: rescan plugins in your DAW; midisock is a MIDI effect (see docs/plugin.md)");
    Ok(())
}

/// The per-user VST3 and CLAP folders of this platform.
fn user_plugin_dirs() -> Result<(PathBuf, PathBuf), String> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from).ok_or(format!("{name} is not set"));
    if cfg!(target_os = "windows") {
        let common = var("LOCALAPPDATA")?.join("Programs").join("Common");
        Ok((common.join("VST3"), common.join("CLAP")))
    } else if cfg!(target_os = "macos") {
        let plugins = var("HOME")?.join("Library").join("Audio").join("Plug-Ins");
        Ok((plugins.join("VST3"), plugins.join("CLAP")))
    } else {
        let home = var("HOME")?;
        Ok((home.join(".vst3"), home.join(".clap")))
    }
}

/// Copies a bundle (a file or a directory tree) to `to`, replacing what was there.
fn replace(from: &Path, to: &Path) -> Result<(), String> {
    if !from.exists() {
        return Err(format!("{} is missing after bundling", from.display()));
    }
    let parent = to.parent().ok_or_else(|| format!("{} has no parent folder", to.display()))?;
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    // Remove first: overwriting a loaded plugin binary in place can crash a running DAW.
    if to.is_dir() {
        fs::remove_dir_all(to).map_err(|e| format!("cannot remove the old {}: {e}", to.display()))?;
    } else if to.exists() {
        fs::remove_file(to).map_err(|e| format!("cannot remove the old {}: {e}", to.display()))?;
    }
    copy_tree(from, to)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    if from.is_dir() {
        fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
        let entries = fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(from, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
    }
}
