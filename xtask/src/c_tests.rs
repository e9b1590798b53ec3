//! The C and C++ tests of libmidisock (the last step of `cargo xtask test`; also
//! `cargo xtask test` runs it after the Rust tests).
//!
//! 1. Installs what it needs where missing: a C and a C++ compiler, pkg-config, valgrind, openssl.
//! 2. `cargo xtask install` into target/c-tests/prefix; the header must be up to date. A
//!    self-signed certificate for "localhost" and its key are made with openssl; every test
//!    program gets their paths as its two arguments (protections.c uses them for TLS).
//! 3. A program compiled with nothing but `pkg-config --cflags --libs midisock` runs.
//! 4. Every tests/c/*.c program, built with `-Wall -Wextra -Werror -pedantic` as C11 and as C++17
//!    under ASan+UBSan, and as C11 under valgrind (0 errors, 0 leaks); the C++ wrapper's test
//!    (bindings/cpp/tests/*.cpp) under ASan+UBSan and valgrind; one program linked statically.
//!
//! Each build-and-run counts as one test; the last line is `c-tests: N passed, M failed`.

use crate::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest a single test program may run (valgrind is slow).
const RUN_LIMIT: Duration = Duration::from_secs(120);

const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic"];
const SANITIZERS: &[&str] = &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"];

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("c-tests take no arguments, got {unknown:?}"));
    }
    env::ensure_debian_packages(&[
        ("cc --version", "gcc"),
        ("c++ --version", "g++"),
        ("pkg-config --version", "pkg-config"),
        ("valgrind --version", "valgrind"),
        ("openssl version", "openssl"),
    ])?;
    let work = env::target_dir().join("c-tests");
    let _ = fs::remove_dir_all(&work);
    let prefix = crate::install::install(&work.join("prefix"))?;
    let bin = work.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("cannot create {}: {e}", bin.display()))?;

    let tls_files = make_test_certificate(&work)?;

    let mut tally = Tally::default();
    tally.record(
        "include/midisock.h is what cbindgen generates",
        crate::header::generate().and_then(|h| check_header(&h)),
    );

    let pc_path = prefix.join("lib").join("pkgconfig");
    let flags = pkg_config(&pc_path, &["--cflags", "--libs", "midisock"])?;
    let lib_dir = prefix.join("lib");
    let runner = Runner { bin, flags, lib_dir: lib_dir.clone(), args: tls_files };
    let c_dir = env::repo_root().join("tests").join("c");
    let cpp_dir = env::repo_root().join("bindings").join("cpp").join("tests");

    // The install test: the example of the README and docs/c.md, built with nothing but pkg-config's flags.
    let example = c_dir.join("example.c");
    tally.record(
        "example.c (README, docs/c.md) built with only `pkg-config --cflags --libs midisock`",
        runner.build_and_run(
            &example,
            "pkgconfig",
            Command::new("cc").arg(&example),
            false,
            Check::Prints("note_on channel=0 note=60 velocity=64 time=0\n"),
        ),
    );
    let round_trip = c_dir.join("round_trip.c");

    // The static library, with pkg-config's --static flags.
    // Without -lmidisock, which would let the linker pick the shared library.
    let static_flags: Vec<String> = pkg_config(&pc_path, &["--static", "--libs-only-l", "midisock"])?
        .into_iter()
        .filter(|flag| flag != "-lmidisock")
        .collect();
    let cflags = pkg_config(&pc_path, &["--cflags", "midisock"])?;
    let mut command = Command::new("cc");
    command.arg(&round_trip).args(&cflags).arg(lib_dir.join("libmidisock.a")).args(&static_flags);
    tally.record(
        "round_trip.c linked statically",
        runner.build_and_run(&round_trip, "static", &mut command, true, Check::Plain),
    );

    for source in sources(&c_dir, "c")? {
        let c11 = || {
            let mut c = Command::new("cc");
            c.args(["-std=c11", "-g"]).args(WARNINGS).arg(&source);
            c
        };
        let cxx17 = || {
            let mut c = Command::new("c++");
            c.args(["-x", "c++", "-std=c++17", "-g"]).args(WARNINGS).arg(&source).args(["-x", "none"]);
            c
        };
        let name = file_name(&source);
        tally.record(
            &format!("{name} [C11, ASan+UBSan]"),
            runner.build_and_run(&source, "c11-asan", c11().args(SANITIZERS), false, Check::Sanitizers),
        );
        tally.record(
            &format!("{name} [C++17, ASan+UBSan]"),
            runner.build_and_run(&source, "cxx17-asan", cxx17().args(SANITIZERS), false, Check::Sanitizers),
        );
        tally.record(
            &format!("{name} [C11, valgrind]"),
            runner.build_and_run(&source, "c11-valgrind", c11().arg("-O1"), false, Check::Valgrind),
        );
    }
    for source in sources(&cpp_dir, "cpp")? {
        let cxx17 = || {
            let mut c = Command::new("c++");
            c.args(["-std=c++17", "-g"]).args(WARNINGS).arg(&source);
            c
        };
        let name = format!("bindings/cpp/tests/{}", file_name(&source));
        tally.record(
            &format!("{name} [C++17, ASan+UBSan]"),
            runner.build_and_run(&source, "cxx17-asan", cxx17().args(SANITIZERS), false, Check::Sanitizers),
        );
        tally.record(
            &format!("{name} [C++17, valgrind]"),
            runner.build_and_run(&source, "cxx17-valgrind", cxx17().arg("-O1"), false, Check::Valgrind),
        );
    }

    println!("c-tests: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} C/C++ test(s) failed", tally.failed))
    }
}

fn check_header(generated: &str) -> Result<(), String> {
    let path = env::repo_root().join("include").join("midisock.h");
    let committed = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if committed == generated {
        Ok(())
    } else {
        Err("include/midisock.h differs from the ffi source: run `cargo xtask header`".into())
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
                println!("c-tests: ok     {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("c-tests: FAILED {name}\n{why}");
            }
        }
    }
}

/// How a test program's run is judged.
#[derive(Clone, Copy)]
enum Check {
    /// Exit status 0.
    Plain,
    /// Exit status 0 and exactly this on stdout.
    Prints(&'static str),
    /// Exit status 0 with ASan (leak checking on) and UBSan stopping at the first report.
    Sanitizers,
    /// Exit status 0 under valgrind, with no error and no leak (definite, indirect or possible).
    Valgrind,
}

struct Runner {
    bin: PathBuf,
    /// `pkg-config --cflags --libs midisock`.
    flags: Vec<String>,
    lib_dir: PathBuf,
    /// Given to every program: the test certificate's and key's paths.
    args: Vec<PathBuf>,
}

impl Runner {
    /// Compiles with `compile` (+ output, pkg-config flags unless `own_flags`, -pthread) and
    /// runs the program, judged by `check`.
    fn build_and_run(
        &self,
        source: &Path,
        variant: &str,
        compile: &mut Command,
        own_flags: bool,
        check: Check,
    ) -> Result<(), String> {
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("test");
        let exe = self.bin.join(format!("{stem}-{variant}"));
        compile.arg("-o").arg(&exe);
        if !own_flags {
            compile.args(&self.flags);
        }
        if variant != "pkgconfig" {
            compile.arg("-pthread");
        }
        let output = compile.output().map_err(|e| format!("cannot run {compile:?}: {e}"))?;
        if !output.status.success() {
            return Err(format!("compile failed: {compile:?}\n{}", both(&output)));
        }
        let mut command = match check {
            Check::Plain | Check::Prints(_) => Command::new(&exe),
            Check::Sanitizers => {
                let mut c = Command::new(&exe);
                c.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86")
                    .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=87");
                c
            }
            Check::Valgrind => {
                let mut c = Command::new("valgrind");
                c.args([
                    "--error-exitcode=88",
                    "--leak-check=full",
                    "--show-leak-kinds=definite,indirect,possible",
                    "--errors-for-leak-kinds=definite,indirect,possible",
                    "--track-origins=yes",
                ])
                .arg(format!("--suppressions={}", env::repo_root().join("tests/c/valgrind.supp").display()))
                .arg(&exe);
                c
            }
        };
        command.args(&self.args).env("LD_LIBRARY_PATH", &self.lib_dir).current_dir(&self.bin);
        let output = run_limited(&mut command, RUN_LIMIT)?;
        if !output.status.success() {
            return Err(format!("{command:?} failed with {}\n{}", output.status, both(&output)));
        }
        if let Check::Prints(expected) = check {
            if output.stdout != expected.as_bytes() {
                return Err(format!("expected stdout {expected:?}\n{}", both(&output)));
            }
        }
        if matches!(check, Check::Valgrind) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !stderr.contains("ERROR SUMMARY: 0 errors") {
                return Err(format!("valgrind reported errors\n{}", both(&output)));
            }
        }
        Ok(())
    }
}

/// Writes a self-signed certificate for "localhost" (valid one day) and its private key, as PEM
/// files in `work`, and returns their paths: certificate, key.
///
/// NOTE: `basicConstraints=CA:FALSE` because openssl's default for `req -x509` is a CA
/// certificate, which rustls (webpki) refuses as a server's own certificate (CaUsedAsEndEntity).
fn make_test_certificate(work: &Path) -> Result<Vec<PathBuf>, String> {
    let cert = work.join("cert.pem");
    let key = work.join("key.pem");
    let mut command = Command::new("openssl");
    command
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-days", "1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    let output = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{command:?} failed\n{}", both(&output)));
    }
    Ok(vec![cert, key])
}

/// Runs a command with captured output, killing it after `limit`.
fn run_limited(command: &mut Command, limit: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    // Read the pipes on threads so a chatty program cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("cannot wait for {command:?}: {e}"))? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{command:?} did not finish within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() })
}

fn both(output: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn pkg_config(pc_path: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let output = Command::new("pkg-config")
        .args(args)
        .env("PKG_CONFIG_PATH", pc_path)
        .output()
        .map_err(|e| format!("cannot run pkg-config: {e}"))?;
    if !output.status.success() {
        return Err(format!("pkg-config {args:?} failed\n{}", both(&output)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect())
}

/// The test programs in `dir` with extension `ext`, sorted.
fn sources(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(format!("no .{ext} test programs in {}", dir.display()));
    }
    Ok(found)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The whole C/C++ suite on its own (it also runs at the end of `cargo xtask test`):
    /// `cargo test -p xtask -- --ignored c_tests`.
    #[test]
    #[ignore = "builds and installs libmidisock, runs valgrind: a minute or more"]
    fn c_tests() {
        if let Err(message) = super::run(&[]) {
            panic!("{message}");
        }
    }
}
