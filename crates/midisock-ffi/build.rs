//! Gives the shared library a soname (`libmidisock.so.<major>`), so programs linked against an
//! installed libmidisock keep working across compatible upgrades and `cargo xtask install` can lay
//! out the usual `.so` → `.so.<major>` → `.so.<version>` links.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmidisock.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
