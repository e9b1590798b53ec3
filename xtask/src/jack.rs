//! The CLI's MIDI port tests: `midisock` built with its `midi` feature (ALSA: only the one-line
//! failure can be tested without sound devices), then with `jack` (MIDI ports through JACK),
//! tested against jackd's dummy backend, which needs no sound hardware.
//!
//! Installs what they need first: the ALSA and JACK development files (midir links both),
//! jackd2, and pkg-config, which the -sys crates use to find the libraries. The Python peer
//! (mido with python-rtmidi) comes from the test venv (env::python_with_mido).

use crate::env;
use std::path::Path;
use std::process::Command;

/// What the CLI's tests in the workspace run need besides Rust: `openssl`, whose command in
/// docs/cli.md the TLS test runs as written (crates/midisock-cli/tests/tls.rs).
pub fn install_cli_test_tools() -> Result<(), String> {
    env::ensure_debian_packages(&[("openssl version", "openssl")])
}

pub fn run_midi_port_tests(python: &Path) -> Result<(), String> {
    env::ensure_debian_packages(&[
        ("pkg-config --version", "pkg-config"),
        ("pkg-config --exists alsa", "libasound2-dev"),
        ("pkg-config --exists jack", "libjack-jackd2-dev"),
        ("command -v jackd", "jackd2"),
    ])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The ALSA build: no sound devices here, so `ports` must fail in one line.
    env::run(Command::new(&cargo).current_dir(env::repo_root()).args([
        "test",
        "-p",
        "midisock-cli",
        "--features",
        "midi",
        "--test",
        "backend_errors",
    ]))?;
    env::run(
        Command::new(&cargo)
            .current_dir(env::repo_root())
            .args(["test", "-p", "midisock-cli", "--features", "jack"])
            .env("MIDISOCK_TEST_PYTHON", python),
    )
}
