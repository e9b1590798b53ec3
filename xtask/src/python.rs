//! The Python package (bindings/python): built with maturin into the test venv, then tested.
//!
//! `cargo xtask test` (and `cargo xtask python-tests` alone) call [`run`]:
//! 1. the venv of `env::python_with_mido` (mido 1.3.3) gets pinned maturin and pytest;
//! 2. the package is built as a release wheel into `<target>/python/wheels` (cargo's own target
//!    dir `<target>/python/cargo`, so rebuilding an unchanged package is a no-op) and installed;
//! 3. pytest runs bindings/python/tests;
//! 4. mido 1.3.3's own `tests/test_sockets.py` and `tests/test_ports.py`, taken from its PyPI
//!    sdist (downloaded into `<target>/python/mido-sdist` once, never committed), run with
//!    `mido.sockets` replaced by `midisock.sockets` (bindings/python/mido-suite/conftest.py).
//!
//! Any pytest exit status but 0 fails the run — 5 ("no tests collected") included.

use crate::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const MATURIN_VERSION: &str = "1.10.2";
const PYTEST_VERSION: &str = "9.2.0";
/// mido's tests that run against midisock.sockets.
const MIDO_TESTS: [&str; 2] = ["test_sockets.py", "test_ports.py"];

fn package_dir() -> PathBuf {
    env::repo_root().join("bindings").join("python")
}

fn work_dir() -> PathBuf {
    env::target_dir().join("python")
}

/// A Python with mido 1.3.3, pytest and the freshly built `midisock` package installed.
pub fn python_with_package() -> Result<PathBuf, String> {
    let python = env::python_with_mido()?;
    let bin = python.parent().ok_or("the venv's python has no directory")?.to_path_buf();
    let has = |module: &str, version: &str| {
        Command::new(&python)
            .args([
                "-c",
                &format!("import importlib.metadata as m, sys; sys.exit(m.version({module:?}) != {version:?})"),
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has("maturin", MATURIN_VERSION) || !has("pytest", PYTEST_VERSION) {
        env::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("maturin=={MATURIN_VERSION}"))
                .arg(format!("pytest=={PYTEST_VERSION}")),
        )?;
    }
    let wheels = work_dir().join("wheels");
    if wheels.exists() {
        std::fs::remove_dir_all(&wheels).map_err(|e| format!("cannot clear {}: {e}", wheels.display()))?;
    }
    env::run(
        Command::new(bin.join("maturin"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(package_dir().join("Cargo.toml"))
            .arg("--interpreter")
            .arg(&python)
            .arg("--out")
            .arg(&wheels)
            .env("CARGO_TARGET_DIR", work_dir().join("cargo")),
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| format!("cannot read {}: {e}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("maturin left no wheel in {}", wheels.display()))?;
    env::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--force-reinstall"])
            .arg(&wheel),
    )?;
    Ok(python)
}

/// `cargo xtask python-tests`: builds the package and runs its tests and mido's socket tests
/// against it.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("python-tests takes no arguments, got {unknown:?}"));
    }
    let python = python_with_package()?;
    // Run from outside the source tree so `import midisock` finds the installed wheel, not the
    // extension-less sources in bindings/python/python.
    let run_dir = work_dir();
    pytest(&python, &run_dir, &package_dir().join("tests"))?;
    let suite = mido_suite(&python)?;
    pytest(&python, &suite, &suite)
}

fn pytest(python: &Path, cwd: &Path, tests: &Path) -> Result<(), String> {
    env::run(
        Command::new(python)
            .current_dir(cwd)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers"])
            .arg(tests),
    )
    .map_err(|e| format!("{e} (pytest exit status 5 means no tests were collected)"))
}

/// `<target>/python/mido-suite`: mido's two test files from its sdist and our conftest.py.
fn mido_suite(python: &Path) -> Result<PathBuf, String> {
    let suite = work_dir().join("mido-suite");
    std::fs::create_dir_all(&suite).map_err(|e| format!("cannot create {}: {e}", suite.display()))?;
    if !MIDO_TESTS.iter().all(|t| suite.join(t).exists()) {
        let sdist_dir = work_dir().join("mido-sdist");
        env::run(
            Command::new(python)
                .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
                .args(["--no-binary", ":all:"])
                .arg(format!("mido=={}", env::MIDO_VERSION))
                .arg("-d")
                .arg(&sdist_dir),
        )?;
        let sdist = sdist_dir.join(format!("mido-{}.tar.gz", env::MIDO_VERSION));
        // Python's tarfile, so no tar/gzip tool is needed; only the two files come out.
        let extract = format!(
            "import sys, tarfile\n\
             with tarfile.open(sys.argv[1]) as t:\n\
             \x20   for name in sys.argv[3:]:\n\
             \x20       data = t.extractfile('mido-{v}/tests/' + name).read()\n\
             \x20       open(sys.argv[2] + '/' + name, 'wb').write(data)\n",
            v = env::MIDO_VERSION
        );
        env::run(Command::new(python).arg("-c").arg(extract).arg(&sdist).arg(&suite).args(MIDO_TESTS))?;
    }
    std::fs::copy(package_dir().join("mido-suite").join("conftest.py"), suite.join("conftest.py"))
        .map_err(|e| format!("cannot copy the mido suite's conftest.py: {e}"))?;
    Ok(suite)
}
