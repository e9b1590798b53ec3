//! `cargo xtask install --prefix DIR`: builds libmidisock in release mode and installs
//!
//! ```text
//! DIR/lib/libmidisock.so.X.Y.Z   (soname libmidisock.so.X; .so.X and .so are symlinks)
//! DIR/lib/libmidisock.a
//! DIR/lib/pkgconfig/midisock.pc
//! DIR/include/midisock.h
//! DIR/include/midisock.hpp       (the header-only C++ wrapper)
//! ```
//!
//! so that `pkg-config --cflags --libs midisock` (with `PKG_CONFIG_PATH=DIR/lib/pkgconfig` unless
//! DIR is a standard prefix) is all a C or C++ build needs.

use crate::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The libraries a program linking `libmidisock.a` also needs (what `rustc --print
/// native-static-libs` reports for the standard library on Linux); `Libs.private` in the .pc.
const NATIVE_STATIC_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

pub fn run(args: &[String]) -> Result<(), String> {
    let prefix = match args {
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        [arg] if arg.starts_with("--prefix=") => PathBuf::from(&arg["--prefix=".len()..]),
        other => return Err(format!("usage: cargo xtask install --prefix DIR, got {other:?}")),
    };
    let prefix = install(&prefix)?;
    eprintln!(
        "xtask: installed libmidisock into {}\n       use: PKG_CONFIG_PATH={}/lib/pkgconfig pkg-config --cflags --libs midisock",
        prefix.display(),
        prefix.display()
    );
    Ok(())
}

/// Builds the release library and installs it under `prefix`; returns the absolute prefix.
pub fn install(prefix: &Path) -> Result<PathBuf, String> {
    env::run(Command::new(cargo()).current_dir(env::repo_root()).args(["build", "--release", "-p", "midisock-ffi"]))?;
    let release = env::target_dir().join("release");
    let version = env!("CARGO_PKG_VERSION");
    let major = version.split('.').next().expect("a version has a major number");

    let lib = prefix.join("lib");
    let pkgconfig = lib.join("pkgconfig");
    let include = prefix.join("include");
    for dir in [&lib, &pkgconfig, &include] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let prefix = prefix.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", prefix.display()))?;
    let lib = prefix.join("lib");

    let real_name = format!("libmidisock.so.{version}");
    let so_name = format!("libmidisock.so.{major}");
    copy(&release.join("libmidisock.so"), &lib.join(&real_name))?;
    symlink(&real_name, &lib.join(&so_name))?;
    symlink(&so_name, &lib.join("libmidisock.so"))?;
    copy(&release.join("libmidisock.a"), &lib.join("libmidisock.a"))?;
    copy(&env::repo_root().join("include").join("midisock.h"), &prefix.join("include").join("midisock.h"))?;
    copy(
        &env::repo_root().join("bindings").join("cpp").join("midisock.hpp"),
        &prefix.join("include").join("midisock.hpp"),
    )?;
    let pc = pkg_config_file(&prefix, version);
    let pc_path = lib.join("pkgconfig").join("midisock.pc");
    fs::write(&pc_path, pc).map_err(|e| format!("cannot write {}: {e}", pc_path.display()))?;
    Ok(prefix)
}

fn pkg_config_file(prefix: &Path, version: &str) -> String {
    format!(
        "prefix={prefix}\n\
         exec_prefix=${{prefix}}\n\
         libdir=${{exec_prefix}}/lib\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: midisock\n\
         Description: MIDI 1.0 over TCP, wire-compatible with mido's socket ports (C ABI)\n\
         Version: {version}\n\
         Cflags: -I${{includedir}}\n\
         Libs: -L${{libdir}} -lmidisock\n\
         Libs.private: {NATIVE_STATIC_LIBS}\n",
        prefix = prefix.display()
    )
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    // Remove first: overwriting a shared library in place can crash programs that have it mapped.
    let _ = fs::remove_file(to);
    fs::copy(from, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn symlink(target: &str, link: &Path) -> Result<(), String> {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("cannot link {} -> {target}: {e}", link.display()))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pkg_config_file_points_at_the_prefix() {
        let pc = super::pkg_config_file(std::path::Path::new("/opt/midi"), "1.2.3");
        assert!(pc.starts_with("prefix=/opt/midi\n"));
        assert!(pc.contains("\nVersion: 1.2.3\n"));
        assert!(pc.contains("\nLibs: -L${libdir} -lmidisock\n"));
        assert!(pc.contains("\nCflags: -I${includedir}\n"));
    }
}
