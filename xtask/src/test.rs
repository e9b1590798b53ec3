//! `cargo xtask test`: every test of the project, with what they need installed first.
//!
//! 1. Python venv with mido (interop tests find it through MIDISOCK_TEST_PYTHON).
//! 2. `cargo test --workspace --all-targets` (unit, integration, interop, examples, benches
//!    compiled in test mode).
//! 3. The C/C++ tests of libmidisock.
//! 4. The CLI with MIDI ports, against jackd's dummy backend (jack.rs).
//! 5. The Python package's tests, and mido's own socket tests against it (python.rs).
//! 6. The Pure Data external in a headless Pd (pd.rs).

use crate::env;
use std::process::Command;

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("test takes no arguments, got {unknown:?}"));
    }
    let python = env::python_with_mido()?;
    crate::jack::install_cli_test_tools()?;
    // The plugin's host tests (plugins/midisock-plugin/tests) load the real bundles from
    // <target>/bundled: build them first, debug, with `assert_process_allocs` so any allocation
    // in process() aborts the tests.
    crate::bundle::run(&["midisock-plugin".into(), "--features".into(), "assert_process_allocs".into()])?;
    env::run(
        Command::new(cargo())
            .current_dir(env::repo_root())
            .args(["test", "--workspace", "--all-targets"])
            .env("MIDISOCK_TEST_PYTHON", &python),
    )?;
    env::run(Command::new(cargo()).current_dir(env::repo_root()).args(["test", "--workspace", "--doc"]))?;
    crate::jack::run_midi_port_tests(&python)?;
    crate::plugin_gui::run(&[])?;
    crate::plugin_daw::run(&[])?;
    crate::fuzz::run(&[])?;
    crate::c_tests::run(&[])?;
    crate::python::run(&[])?;
    crate::pd::test(&[])
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
