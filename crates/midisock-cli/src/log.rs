//! What midisock tells the user on stderr, at the level chosen with `-q` / `-v`.
//!
//! stdout carries messages only; every other line goes through here (errors that end a command
//! are printed by main and are never silenced).

use std::fmt::Arguments;
use std::sync::atomic::{AtomicU8, Ordering};

/// 0: warnings only (`-q`); 1: what happens (default); 2: details (`-v`).
static LEVEL: AtomicU8 = AtomicU8::new(1);

pub fn set_level(quiet: bool, verbose: u8) {
    LEVEL.store(if quiet { 0 } else { 1 + verbose.min(1) }, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 2
}

/// Something that went wrong but did not end the command: always printed.
pub fn warn(message: Arguments<'_>) {
    eprintln!("midisock: {message}");
}

/// What is happening (serving, connected, closing): hidden by `-q`.
pub fn info(message: Arguments<'_>) {
    if LEVEL.load(Ordering::Relaxed) >= 1 {
        eprintln!("midisock: {message}");
    }
}

/// Details for finding a problem: shown with `-v`.
pub fn debug(message: Arguments<'_>) {
    if verbose() {
        eprintln!("midisock: {message}");
    }
}

/// Output the user asked for on stderr (`--stats`): always printed.
pub fn report(message: Arguments<'_>) {
    eprintln!("midisock: {message}");
}
