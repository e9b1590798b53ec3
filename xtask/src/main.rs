//! `cargo xtask <command>`: the project's build, test and release chores, in Rust instead of
//! shell scripts. Each command lives in its own module.

mod bench_report;
mod bundle;
mod c_tests;
mod env;
mod fuzz;
mod header;
mod install;
mod jack;
mod pd;
mod plugin_daw;
mod plugin_gui;
mod plugin_install;
mod python;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  test                      run every test; installs what the tests need (Python venv with mido
                            1.3.3, valgrind, ...) first
  bundle <plugin> [--release]
                            build the VST3 and CLAP bundles into target/bundled/
  install-plugin [--debug]  bundle the plugin (release, stripped) and copy it to the per-user VST3
                            and CLAP folders (~/.vst3, ~/.clap on Linux)
  plugin-gui [--screenshots]
                            open the plugin's editor under Xvfb, check it with OCR and xdotool
                            (--screenshots: also write docs/plugin-gui-*.png)
  plugin-daw                record, in a headless Ardour 7 session, what a network peer sends
                            through the midisock VST3 (needs target/bundled: cargo xtask bundle)
  header [--check]          regenerate include/midisock.h with cbindgen (--check: fail on drift)
  install --prefix DIR      install libmidisock, its header and midisock.pc into DIR
  bench-report [--quick]    run midisock, plain TCP and mido side by side; write target/bench-report/
  bench-report --replot     draw the last run's plots again from its samples, and publish them
  install-pd [--dir DIR]    build the Pure Data external [midisock] and install it into
                            DIR/midisock (default ~/.local/lib/pd/extra, where Pd looks)
  pd-test                   build the Pd external and test it in a headless Pd (also valgrind)
  c-tests                   build and run the C/C++ tests of libmidisock (sanitizers, valgrind)
  python-tests              build the Python package into the test venv; run its tests and mido's
  fuzz [--seconds N] [TARGET...]
                            run each cargo-fuzz target (parser, text, framing) N s (default 60)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "test" => test::run(rest),
        "bundle" => bundle::run(rest),
        "header" => header::run(rest),
        "install" => install::run(rest),
        "install-plugin" => plugin_install::run(rest),
        "plugin-gui" => plugin_gui::run(rest),
        "plugin-daw" => plugin_daw::run(rest),
        "bench-report" => bench_report::run(rest),
        "fuzz" => fuzz::run(rest),
        "c-tests" => c_tests::run(rest),
        "install-pd" => pd::install(rest),
        "pd-test" => pd::test(rest),
        "python-tests" => python::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
