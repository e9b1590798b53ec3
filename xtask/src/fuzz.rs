//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs every cargo-fuzz target of fuzz/ for a
//! bounded time (default 60 s each) and fails on any crash, leak, timeout or hang.
//!
//! cargo-fuzz needs nightly flags (`-Zsanitizer=address`); only a stable toolchain exists here, so
//! it runs with `RUSTC_BOOTSTRAP=1`. cargo-fuzz itself is installed on first use, pinned, into the
//! cargo bin directory, and found there by every later run. Builds use cargo-fuzz's default profile: optimized, with debug assertions
//! and overflow checks on, under AddressSanitizer.
//!
//! Each target starts from its committed seeds (fuzz/corpus/<target>, read only) plus a scratch
//! corpus kept in the target directory (target/fuzz/corpus/<target>), so later runs start where
//! earlier ones stopped. A crashing input lands in fuzz/artifacts/<target>/; reproduce it with
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>`.

use crate::env;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The cargo-fuzz release the project uses.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Every target in fuzz/Cargo.toml.
pub const TARGETS: [&str; 3] = ["parser", "text", "framing"];

const DEFAULT_SECONDS: u64 = 60;
/// libFuzzer's limit for one input: the framing target's own waits are 10 s.
const INPUT_TIMEOUT_SECONDS: u64 = 30;

pub fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets: Vec<&str> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--seconds=") {
            Some(value) => Some(value.to_owned()),
            None if arg == "--seconds" => Some(args.next().ok_or("--seconds needs a number of seconds")?.clone()),
            None => None,
        };
        if let Some(value) = value {
            seconds = value
                .parse()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| format!("--seconds takes a positive whole number, got {value:?}"))?;
        } else if let Some(&target) = TARGETS.iter().find(|&&t| t == arg) {
            targets.push(target);
        } else {
            return Err(format!(
                "fuzz: unknown argument {arg:?} (usage: fuzz [--seconds N] [{}]...)",
                TARGETS.join("|")
            ));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }

    ensure_cargo_fuzz()?;
    let root = env::repo_root();
    let target_dir = env::target_dir().join("fuzz");
    // Build every target first, so that the timed runs below time fuzzing, not compiling.
    env::run(&mut cargo_fuzz(&root, "build", &target_dir))?;

    let mut results: Vec<(&str, Result<u64, String>)> = Vec::new();
    for target in targets {
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        let result = fuzz_one(&root, &target_dir, target, seconds);
        if let Err(e) = &result {
            eprintln!("xtask: fuzz target {target} FAILED: {e}");
        }
        results.push((target, result));
    }

    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (target, result) in &results {
        match result {
            Ok(execs) => println!("fuzz {target}: ok, {execs} execs in {seconds} s"),
            Err(_) => println!("fuzz {target}: FAILED"),
        }
    }
    println!("fuzz: {} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} fuzz target(s) failed; see fuzz/artifacts/"))
    }
}

/// `cargo fuzz <subcommand> --target-dir <target_dir>`, run from the repository root.
fn cargo_fuzz(root: &Path, subcommand: &str, target_dir: &Path) -> Command {
    let mut command = Command::new(cargo());
    command.current_dir(root).env("RUSTC_BOOTSTRAP", "1").args(["fuzz", subcommand, "--target-dir"]).arg(target_dir);
    command
}

/// Runs one target for `seconds`; the number of inputs it executed, or why it failed.
fn fuzz_one(root: &Path, target_dir: &Path, target: &str, seconds: u64) -> Result<u64, String> {
    let scratch = target_dir.join("corpus").join(target);
    fs::create_dir_all(&scratch).map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let seeds = root.join("fuzz").join("corpus").join(target);
    let log_path = target_dir.join(format!("{target}.log"));
    let log = File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;

    let mut command = cargo_fuzz(root, "run", target_dir);
    command
        .arg(target)
        .arg(&scratch)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECONDS}"))
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    eprintln!("xtask: running {command:?} (log: {})", log_path.display());
    let mut child = command.spawn().map_err(|e| format!("cannot start cargo fuzz: {e}"))?;

    // libFuzzer stops itself after max_total_time; this guards against a hang it cannot see
    // (a wedged process, a rebuild that never ends).
    let limit = Duration::from_secs(seconds * 2 + 300);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "still running after {} s; killed. Last output:\n{}",
                    limit.as_secs(),
                    tail(&log_path, 40)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for cargo fuzz: {e}")),
        }
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        return Err(format!("cargo fuzz exited with {status}. Last output:\n{}", tail(&log_path, 60)));
    }
    output
        .lines()
        .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no exec count in {}", log_path.display()))
}

/// Installs cargo-fuzz into the cargo bin directory unless the pinned version is there.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let installed = Command::new(cargo())
        .args(["fuzz", "--version"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if installed.as_deref() == Some(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}")) {
        return Ok(());
    }
    // Once per machine: no `--force`, so cargo skips the build when this version is already in
    // the bin directory (and replaces another version). Built in its own target dir, kept between
    // runs, so it never invalidates the project's build cache and a retry after a failed install
    // reuses what was compiled.
    let build_dir: PathBuf = env::target_dir().join("cargo-fuzz-install");
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} (once; a few minutes)");
    env::run(
        Command::new(cargo())
            .args(["install", "cargo-fuzz", "--locked", "--version"])
            .arg(format!("={CARGO_FUZZ_VERSION}"))
            .env("CARGO_TARGET_DIR", build_dir),
    )
}

/// The last `lines` lines of a file, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
