//! Generates the list of every `midisock_result` (src/result.rs's `all_results`) from the enum
//! itself, so it cannot drift from it.
//!
//! Gives the shared library a soname (`libmidisock.so.<major>`), so programs linked against an
//! installed libmidisock keep working across compatible upgrades and `cargo xtask install` can lay
//! out the usual `.so` → `.so.<major>` → `.so.<version>` links.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmidisock.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    write_all_results();
}

/// Writes `OUT_DIR/all_results.rs`: a slice expression naming every variant of `midisock_result`
/// (each written `Name = value,` in the enum, as the ABI requires explicit values).
fn write_all_results() {
    println!("cargo:rerun-if-changed=src/result.rs");
    let source = std::fs::read_to_string("src/result.rs").expect("src/result.rs is readable");
    let body = source
        .split_once("pub enum midisock_result {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("src/result.rs declares `pub enum midisock_result { ... }`");
    let variants: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//"))
        .filter_map(|line| line.split_once(" = ").map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect();
    assert!(variants.len() > 10, "found only {variants:?} in midisock_result");
    let list: Vec<String> = variants.iter().map(|v| format!("midisock_result::{v}")).collect();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("all_results.rs");
    std::fs::write(out, format!("&[{}]\n", list.join(", "))).expect("OUT_DIR is writable");
}
