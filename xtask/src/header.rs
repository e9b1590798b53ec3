//! `cargo xtask header [--check]`: generates include/midisock.h from crates/midisock-ffi with
//! cbindgen (a pinned library dependency, so every machine produces the same bytes).
//!
//! `--check` regenerates in memory and fails if the committed header differs; the test at the
//! bottom does the same under `cargo test`.

use crate::env;
use std::path::PathBuf;

fn header_path() -> PathBuf {
    env::repo_root().join("include").join("midisock.h")
}

pub fn run(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        other => return Err(format!("usage: cargo xtask header [--check], got {other:?}")),
    };
    let generated = generate()?;
    let path = header_path();
    if check {
        check_current(&generated)?;
        eprintln!("xtask: {} is up to date", path.display());
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("the header has a parent directory"))
        .map_err(|e| format!("cannot create include/: {e}"))?;
    std::fs::write(&path, &generated).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// Fails, naming the first differing line, unless the committed header equals `generated`.
fn check_current(generated: &str) -> Result<(), String> {
    let path = header_path();
    let committed = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if committed == generated {
        return Ok(());
    }
    let first_difference = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    Err(format!(
        "{} is out of date with crates/midisock-ffi (first difference at line {}); run `cargo \
         xtask header` and commit the result",
        path.display(),
        first_difference + 1
    ))
}

/// The header text cbindgen makes from the ffi crate's source and cbindgen.toml.
pub fn generate() -> Result<String, String> {
    let crate_dir = env::repo_root().join("crates").join("midisock-ffi");
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| format!("cannot read cbindgen.toml: {e}"))?;
    config.after_includes = Some(version_defines());
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_crate(&crate_dir)
        .generate()
        .map_err(|e| format!("cbindgen failed: {e}"))?;
    let mut bytes = Vec::new();
    bindings.write(&mut bytes);
    String::from_utf8(bytes).map_err(|e| format!("cbindgen wrote non-UTF-8 text: {e}"))
}

/// The version macros. xtask shares the workspace version with midisock-ffi; the C tests check
/// that `MIDISOCK_VERSION_STRING` equals what `midisock_version()` returns.
fn version_defines() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    format!(
        "\n/** The version of this header; compare with midisock_version() at run time. */\n\
         #define MIDISOCK_VERSION_MAJOR {major}\n\
         #define MIDISOCK_VERSION_MINOR {minor}\n\
         #define MIDISOCK_VERSION_PATCH {patch}\n\
         #define MIDISOCK_VERSION_STRING \"{version}\"\n\
         /** MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */\n\
         #define MIDISOCK_VERSION_NUMBER ({major} * 10000 + {minor} * 100 + {patch})\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_header_matches_the_ffi_source() {
        let generated = super::generate().expect("cbindgen generates the header");
        if let Err(message) = super::check_current(&generated) {
            panic!("{message}");
        }
    }

    #[test]
    fn version_defines_follow_the_workspace_version() {
        let defines = super::version_defines();
        let version = env!("CARGO_PKG_VERSION");
        assert!(defines.contains(&format!("#define MIDISOCK_VERSION_STRING \"{version}\"")));
        let major = version.split('.').next().unwrap();
        assert!(defines.contains(&format!("#define MIDISOCK_VERSION_MAJOR {major}\n")));
    }
}
