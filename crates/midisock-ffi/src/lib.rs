//! # libmidisock — the C ABI of midisock
//!
//! `libmidisock.so` / `libmidisock.a` and the header `include/midisock.h` (generated from this
//! crate by `cargo xtask header`) give C and C++ programs midisock's ports and servers: MIDI 1.0
//! over TCP, wire-compatible with mido's socket ports.
//!
//! ## The contract
//! - **Handles.** `midisock_server` and `midisock_port` are opaque. A `_bind`, `_connect` or
//!   `_accept` function allocates one and writes it to an out-pointer; the caller owns it and
//!   releases it with `midisock_server_free` / `midisock_port_free` (which close it first).
//!   `_free(NULL)` does nothing. `midisock_server_config` and `midisock_connect_options`
//!   (the protections: limits, allowlist, sysex policy, token, TLS) are handles too, made by
//!   their `_new` and freed by their `_free`; `midisock_server_bind_with` and
//!   `midisock_port_connect_with` copy what they need, so they may be freed right after.
//!   Nothing else the library returns needs freeing: text and
//!   messages are written into buffers the caller provides, and `midisock_result_str` /
//!   `midisock_version` return static strings.
//! - **Results.** Every function returns a `midisock_result` (0 = `MIDISOCK_RESULT_OK`), except
//!   `midisock_result_str` and `midisock_version`, which cannot fail. Outputs are written only on
//!   success; the one exception is `MIDISOCK_RESULT_BUFFER_TOO_SMALL`, which writes the size
//!   needed to `*len_out` (and, for a receive, keeps the message for the next call). A NULL
//!   pointer argument is `MIDISOCK_RESULT_NULL_ARGUMENT`, never a crash. After any failure,
//!   `midisock_last_error_message` gives the calling thread a detailed text.
//! - **Messages** cross as raw MIDI 1.0 bytes (status byte first; sysex as `F0 ... F7`) plus a
//!   `CLOCK_MONOTONIC` timestamp in nanoseconds for received ones. `midisock_message_to_text`
//!   and `midisock_message_from_text` convert to and from mido's text format.
//! - **What blocks.** `midisock_port_send` blocks while the socket's send buffer is full;
//!   `midisock_server_send` never blocks on a client. `_receive` and `_accept` block (without
//!   polling) until something arrives or the handle is closed; `_try_*` never block; `_timeout`
//!   variants wait at most their timeout. `_close` wakes every thread blocked on the handle.
//! - **Threads.** Every function except `_free` may be called concurrently on one handle from any
//!   thread; concurrent sends never interleave bytes. A port does its I/O on the calling thread,
//!   except that `midisock_port_set_callback` starts a reader thread named
//!   "midisock-cb", and the callback runs there. A server owns one I/O thread
//!   ("midisock-server") whatever the number of clients.
//! - **Allocation.** Handles and their threads' buffers; per call, sending or receiving a message
//!   of up to 3 bytes allocates nothing in this layer; sysex payloads are copied.
//! - **Panics** never cross the boundary: every export runs behind a panic guard and returns
//!   `MIDISOCK_RESULT_PANIC` instead.
//!
//! From Rust, the exported functions can be called directly through this crate's rlib (the
//! benchmarks do); they are `unsafe` because they take raw pointers.
#![deny(unsafe_op_in_unsafe_fn)]
// The exported names are C names: `midisock_port`, `midisock_result`.
#![allow(non_camel_case_types)]

mod boundary;
mod connect_options;
mod errors;
mod jitter;
mod link;
mod message;
mod port;
mod receive;
mod result;
mod server;
mod server_config;

pub use connect_options::midisock_connect_options;
pub use errors::midisock_last_error_message;
pub use jitter::{
    midisock_client_playout_stats, midisock_jitter_buffer_parse, midisock_jitter_mode, midisock_playout_stats,
    midisock_received_info, MIDISOCK_JITTER_MAX_DELAY_US, MIDISOCK_PEER_TEXT_LEN,
};
pub use message::{midisock_message_from_text, midisock_message_to_text};
pub use port::{
    midisock_link_state, midisock_link_status, midisock_message_callback, midisock_parser_statistics, midisock_port,
    midisock_receive_callback,
};
pub use receive::{MIDISOCK_NOTHING_DUE, MIDISOCK_WAIT_FOREVER};
pub use result::midisock_result;
pub use server::{midisock_server, midisock_server_statistics};
pub use server_config::{midisock_server_config, midisock_sysex_policy};

use boundary::{ffi_boundary, try_out};
use std::ffi::{c_char, CStr};

/// The library version as text, e.g. `"0.1.0"`; equals `MIDISOCK_VERSION_STRING` of the header
/// the program was compiled with when library and header match.
///
/// Returns a static NUL-terminated string (never NULL, never freed). Cannot fail, so it returns
/// the string rather than a `midisock_result`. Thread: any. Never blocks.
#[no_mangle]
pub extern "C" fn midisock_version() -> *const c_char {
    ffi_boundary!("midisock_version", { version() })
}

fn version() -> &'static CStr {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    CStr::from_bytes_with_nul(VERSION.as_bytes()).expect("the version has one NUL, at the end")
}

/// Writes the current `CLOCK_MONOTONIC` time in nanoseconds — the clock of every receive
/// timestamp — to `*now_out`, so a program can measure how old a message is.
///
/// Thread: any. Never blocks.
///
/// # Safety
/// `now_out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_monotonic_ns(now_out: *mut u64) -> midisock_result {
    ffi_boundary!("midisock_monotonic_ns", {
        // SAFETY: the caller guarantees `now_out` is valid for a write.
        let now_out = unsafe { try_out(now_out, "now_out")? };
        now_out.write(midisock_core::monotonic_ns());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boundary::{guard, Outcome};
    use crate::errors::Failure;
    use std::ffi::CStr;

    fn last_error() -> String {
        let mut buf = [0 as c_char; 256];
        let mut len = 0;
        // SAFETY: `buf` has 256 bytes, `len` is a valid out slot.
        let r = unsafe { midisock_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(r, midisock_result::Ok);
        // SAFETY: on success the buffer holds a NUL-terminated string.
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
    }

    #[test]
    fn a_panic_becomes_the_panic_code_and_a_message() {
        let r = guard("midisock_test_panics", true, || -> Outcome { panic!("deliberate test panic") });
        assert_eq!(r, midisock_result::Panic);
        assert_eq!(last_error(), "midisock_test_panics: internal panic: deliberate test panic");
    }

    #[test]
    fn a_panic_in_a_string_function_returns_a_static_string() {
        let text =
            guard("midisock_test_panics", true, || -> &'static CStr { panic!("deliberate {}", "formatted panic") });
        // SAFETY: the panic value is a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(text) };
        assert_eq!(text.to_str().unwrap(), "internal panic");
        assert!(last_error().ends_with("deliberate formatted panic"));
    }

    #[test]
    fn a_failure_is_recorded_per_thread() {
        let r =
            guard("midisock_test_fails", true, || -> Outcome { Err(Failure::new(midisock_result::Closed, "gone")) });
        assert_eq!(r, midisock_result::Closed);
        assert_eq!(last_error(), "midisock_test_fails: gone");
        let other = std::thread::spawn(last_error).join().unwrap();
        assert_eq!(other, "");
    }

    #[test]
    fn version_matches_the_crate() {
        // SAFETY: midisock_version returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(midisock_version()) };
        assert_eq!(text.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_result_has_its_own_value_and_text() {
        let all = result::all_results();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(*a as u32, *b as u32, "{a:?} and {b:?} share a value");
            }
            // SAFETY: midisock_result_str returns a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(midisock_result::midisock_result_str(*a as u32)) };
            assert!(!text.to_bytes().is_empty());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(midisock_result::midisock_result_str(12345)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown result code");
    }
}
