//! The environment the tests need, installed on demand: a Python venv with mido from PyPI, and
//! Debian packages. Each step checks first, so a second run costs nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The mido version the interop tests and the bench report use.
pub const MIDO_VERSION: &str = "1.3.3";

/// mido's MIDI port backend, for the CLI's MIDI port tests (its wheels include JACK support; it
/// needs libasound2 to import, which the JACK tests install, so only its version is checked here).
pub const PYTHON_RTMIDI_VERSION: &str = "1.5.8";

/// The repository root (xtask lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits inside the repository").to_path_buf()
}

/// The cargo target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// Runs a command, echoing it; an error names the command and its exit status.
pub fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {command:?}");
    let status = command.status().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// A Python interpreter with mido (and python-rtmidi) installed: `target/venv/bin/python`, created on first use.
pub fn python_with_mido() -> Result<PathBuf, String> {
    let venv = target_dir().join("venv");
    let python = venv.join("bin").join("python");
    let has_mido = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                // mido 1.3.3 has no `mido.__version__`: ask the installed distribution.
                &format!(
                    "import importlib.metadata as m, mido, sys; \
                     sys.exit(m.version('mido') != {MIDO_VERSION:?} or m.version('python-rtmidi') != {PYTHON_RTMIDI_VERSION:?})"
                ),
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_mido(&python) {
        return Ok(python);
    }
    if !python.exists() {
        ensure_debian_packages(&[("python3", "python3"), ("python3 -m venv --help", "python3-venv")])?;
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("mido=={MIDO_VERSION}"))
        .arg(format!("python-rtmidi=={PYTHON_RTMIDI_VERSION}")))?;
    if has_mido(&python) {
        Ok(python)
    } else {
        Err(format!("mido {MIDO_VERSION} is not importable from {}", python.display()))
    }
}

/// Installs the Debian packages whose probe command fails: `(probe, package)` pairs, where the
/// probe is a shell command that succeeds when the tool is present.
pub fn ensure_debian_packages(wanted: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(probe, _)| {
            !Command::new("sh").arg("-c").arg(format!("{probe} >/dev/null 2>&1")).status().is_ok_and(|s| s.success())
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut command = Command::new(all[0]);
        command.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut command)
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(missing.iter());
    apt(&install)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
