//! The Pure Data external `[midisock]` (bindings/pd): build, install, test.
//!
//! - `cargo xtask install-pd [--dir DIR]` builds libmidisock (release) and the external, linked
//!   statically (nothing else to install), and copies it with its help patch into
//!   `DIR/midisock/` — by default `~/.local/lib/pd/extra`, which Pd searches on Linux.
//! - `cargo xtask pd-test [WORD]` (also part of `cargo xtask test`; WORD: only the tests whose
//!   name contains it) installs Debian's Pd
//!   (`puredata-core`, `puredata-dev`) and valgrind where missing, installs the external into
//!   `target/pd/extra` the same way, and runs a headless Pd (`bindings/pd/tests/harness.pd`)
//!   against real mido 1.3.3 peers: Pd → mido server (every channel message type, sysex,
//!   system messages, panic, reset: bytes exact), mido client → Pd server (typed and raw
//!   outlets, peers, notes released when a client leaves), bad arguments (a clear error, nothing
//!   sent, the connection kept), the help patch loading cleanly; and the Pd-free glue on its own
//!   (`bindings/pd/tests/glue_test.c`, every value of every channel message, under ASan+UBSan). Then the same tests once more
//!   with Pd under valgrind (no error and no leak whose stack passes through midisock), and a
//!   measurement of messages per second through the object, both ways.
//! - `cargo xtask pd-test timing [--sources DIR]` (not part of `cargo xtask test`: it takes
//!   25 s) reports Pd's CPU while connected (idle, and with a 1 kHz stamped stream) and how
//!   evenly the object delivers played-out messages (`pd/timing.rs`). `--sources DIR` builds
//!   the external from another copy of bindings/pd (an older version, to compare).

mod harness;
mod suite;
mod timing;

use crate::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use suite::{Suite, TESTS};

/// The external's file name: what Pd 0.53 loads on Linux (it also tries .l_amd64 and .so).
const EXTERNAL: &str = "midisock.pd_linux";

pub fn install(args: &[String]) -> Result<(), String> {
    let default = || -> Result<PathBuf, String> {
        let home = std::env::var_os("HOME").ok_or("HOME is not set: give --dir DIR")?;
        Ok(PathBuf::from(home).join(".local/lib/pd/extra"))
    };
    let (dir, on_default_path) = match args {
        [] => (default()?, true),
        [flag, dir] if flag == "--dir" => (PathBuf::from(dir), false),
        [arg] if arg.starts_with("--dir=") => (PathBuf::from(&arg["--dir=".len()..]), false),
        other => return Err(format!("usage: cargo xtask install-pd [--dir DIR], got {other:?}")),
    };
    let installed = install_into(&dir, Symbols::Strip, &sources_dir())?;
    eprintln!("xtask: installed [midisock] and its help patch into {}", installed.display());
    if on_default_path {
        eprintln!("       Pd looks there by default: put [midisock] in a patch");
    } else {
        eprintln!(
            "       add {} to Pd's search path (Preferences > Path, or pd -path {})",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Whether the installed external keeps its debug symbols (the tests want them in valgrind's
/// stacks; a user's install is 20 times smaller without).
#[derive(Clone, Copy, PartialEq)]
enum Symbols {
    Keep,
    Strip,
}

fn sources_dir() -> PathBuf {
    env::repo_root().join("bindings/pd")
}

/// Builds the external from `sources` (a copy of bindings/pd) and installs it into
/// `dir/midisock/`; returns that directory.
fn install_into(dir: &Path, symbols: Symbols, sources: &Path) -> Result<PathBuf, String> {
    ensure_build_tools()?;
    env::run(Command::new(cargo()).current_dir(env::repo_root()).args(["build", "--release", "-p", "midisock-ffi"]))?;
    let target = dir.join("midisock");
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let external = target.join(EXTERNAL);
    // Remove first: overwriting a loaded shared object in place can crash a running Pd.
    let _ = fs::remove_file(&external);
    compile(&external, symbols, sources)?;
    for file in ["midisock-help.pd", "LICENSE.txt"] {
        let from = sources.join(file);
        if from.exists() {
            fs::copy(&from, target.join(file)).map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
        }
    }
    Ok(target)
}

/// Compiles `sources`/*.c (bindings/pd) against Pd's headers and the release libmidisock.a.
fn compile(output: &Path, symbols: Symbols, sources: &Path) -> Result<(), String> {
    let root = env::repo_root();
    let pd_flags = pkg_config_pd()?;
    let library = env::target_dir().join("release").join("libmidisock.a");
    let mut command = Command::new("cc");
    command
        .args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-fPIC", "-shared", "-fvisibility=hidden"])
        .arg(if symbols == Symbols::Keep { "-g" } else { "-s" })
        .args(["-Wall", "-Wextra", "-Werror", "-pedantic"])
        // Pd's API casts every method to a generic function pointer (class_new, class_addmethod).
        .arg("-Wno-cast-function-type")
        .args(&pd_flags)
        .arg(format!("-I{}", root.join("include").display()))
        .arg(sources.join("midisock_pd.c"))
        .arg(sources.join("midisock_messages.c"))
        .arg(sources.join("midisock_link.c"))
        .arg(&library)
        // Keep libmidisock's (and Rust's) symbols private to the external: only midisock_setup
        // is exported, so two externals embedding different libmidisock versions cannot clash.
        .args(["-Wl,--exclude-libs,ALL", "-lpthread", "-ldl", "-lm", "-o"])
        .arg(output);
    env::run(&mut command)
}

/// Builds bindings/pd/tests/glue_test.c with the glue and libmidisock under ASan+UBSan and runs it.
fn glue_test(work: &Path) -> Result<(), String> {
    let root = env::repo_root();
    let exe = work.join("glue_test");
    let mut command = Command::new("cc");
    command
        .args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(format!("-I{}", root.join("bindings/pd").display()))
        .arg(root.join("bindings/pd/tests/glue_test.c"))
        .arg(root.join("bindings/pd/midisock_messages.c"))
        .arg(root.join("bindings/pd/midisock_link.c"))
        .arg(env::target_dir().join("release").join("libmidisock.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    env::run(&mut command)?;
    let output = Command::new(&exe)
        .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if output.status.success() && output.stdout == b"glue_test: ok\n" {
        Ok(())
    } else {
        Err(format!(
            "{} failed with {}\n{}{}",
            exe.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn pkg_config_pd() -> Result<Vec<String>, String> {
    let output = Command::new("pkg-config")
        .args(["--cflags", "pd"])
        .output()
        .map_err(|e| format!("cannot run pkg-config: {e}"))?;
    if !output.status.success() {
        return Err(format!("pkg-config --cflags pd failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect())
}

fn ensure_build_tools() -> Result<(), String> {
    env::ensure_debian_packages(&[
        ("cc --version", "gcc"),
        ("pkg-config --version", "pkg-config"),
        ("pkg-config --exists pd", "puredata-dev"),
    ])
}

/// `cargo xtask pd-test timing [--sources DIR]`: see the module's docs.
fn timing(args: &[String]) -> Result<(), String> {
    let sources = match args {
        [] => sources_dir(),
        [flag, dir] if flag == "--sources" => PathBuf::from(dir),
        other => return Err(format!("usage: cargo xtask pd-test timing [--sources DIR], got {other:?}")),
    };
    ensure_build_tools()?;
    env::ensure_debian_packages(&[("test -x /usr/bin/pd", "puredata-core")])?;
    let work = env::target_dir().join("pd-timing");
    let _ = fs::remove_dir_all(&work);
    let extra = work.join("extra");
    install_into(&extra, Symbols::Strip, &sources)?;
    let harness = env::repo_root().join("bindings/pd/tests/harness.pd");
    println!("pd-timing: external built from {}", sources.display());
    // Pd 0.53 sleeps `-sleepgrain` ms between looks at its clocks and descriptors (5 ms here by
    // default): that bounds how close to its time anything comes out, whatever the object does.
    for pd_args in [&[][..], &["-sleepgrain", "0.1"][..]] {
        let report = timing::report(|| harness::Pd::start(&extra, &harness, None, pd_args))?;
        let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
        print!("pd {}:\n{report}load average (1, 5, 15 min): {load}", pd_args.join(" "));
    }
    Ok(())
}

pub fn test(args: &[String]) -> Result<(), String> {
    if args.first().is_some_and(|a| a == "timing") {
        return timing(&args[1..]);
    }
    // `cargo xtask pd-test WORD`: only the tests whose name contains WORD (and no throughput),
    // for working on one feature.
    let only = match args {
        [] => None,
        [word] if !word.starts_with('-') => Some(word.as_str()),
        other => return Err(format!("usage: cargo xtask pd-test [WORD], got {other:?}")),
    };
    let selected: Vec<&(&str, suite::Test)> =
        TESTS.iter().filter(|(name, _)| only.is_none_or(|word| name.contains(word))).collect();
    if selected.is_empty() {
        return Err(format!("no Pd test's name contains {:?}", only.unwrap_or_default()));
    }
    ensure_build_tools()?;
    env::ensure_debian_packages(&[("test -x /usr/bin/pd", "puredata-core"), ("valgrind --version", "valgrind")])?;
    let python = env::python_with_mido()?;
    let work = env::target_dir().join("pd");
    let _ = fs::remove_dir_all(&work);
    let extra = work.join("extra");
    install_into(&extra, Symbols::Keep, &sources_dir())?;
    let suite = Suite {
        extra,
        harness: env::repo_root().join("bindings/pd/tests/harness.pd"),
        peer: env::repo_root().join("bindings/pd/tests/mido_peer.py"),
        python,
        valgrind: None,
    };

    let mut tally = Tally::default();
    tally.record("glue_test.c: the Pd-free half on its own [ASan+UBSan]", glue_test(&work));
    tally.record("the help patch opens and creates every object", suite.help_patch_loads());
    for (name, test) in &selected {
        tally.record(name, test(&suite).map(|_| ()));
    }
    if only.is_none() {
        tally.record("throughput", suite.throughput());
    }

    let logs = work.join("valgrind");
    fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    for (index, (name, test)) in selected.iter().enumerate() {
        let log = logs.join(format!("{index}.log"));
        let suite = Suite { valgrind: Some(log.clone()), ..suite.clone() };
        let result = test(&suite).and_then(|_| check_valgrind_log(&log));
        tally.record(&format!("{name} [valgrind]"), result);
    }

    println!("pd-tests: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} Pd test(s) failed", tally.failed))
    }
}

/// Fails when valgrind's log has an error or a leak (definite, indirect or possible) whose
/// stack passes through the external or libmidisock. Pd's own findings are not ours to fix and
/// are counted in the message only.
fn check_valgrind_log(log: &Path) -> Result<(), String> {
    let text = fs::read_to_string(log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
    if !text.contains("ERROR SUMMARY") {
        return Err(format!("valgrind did not finish its report in {}", log.display()));
    }
    // Records are separated by an empty `==PID== ` line.
    let mut ours = Vec::new();
    let mut others = 0;
    let mut record = Vec::new();
    for line in text.lines().chain(std::iter::once("==0== ")) {
        let body = line.split_once("== ").map_or("", |(_, rest)| rest);
        if body.trim().is_empty() {
            let joined = record.join("\n");
            let is_finding = joined.contains("Invalid ")
                || joined.contains("uninitialised")
                || joined.contains("definitely lost in")
                || joined.contains("indirectly lost in")
                || joined.contains("possibly lost in")
                || joined.contains("Mismatched free")
                || joined.contains("overlap");
            if is_finding {
                if joined.contains("midisock") {
                    ours.push(joined);
                } else {
                    others += 1;
                }
            }
            record.clear();
        } else {
            record.push(body.to_owned());
        }
    }
    if ours.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "valgrind found {} problem(s) in midisock ({others} elsewhere), log {}:\n{}",
            ours.len(),
            log.display(),
            ours.join("\n\n")
        ))
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("pd-tests: ok     {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("pd-tests: FAILED {name}\n{why}");
            }
        }
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
