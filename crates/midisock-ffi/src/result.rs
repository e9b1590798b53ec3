//! `midisock_result`: what every function returns, its text, and the per-thread last error.

use crate::boundary::ffi_boundary;
use std::ffi::{c_char, CStr};

/// What a libmidisock function returns. `MIDISOCK_RESULT_OK` (0) is success; every other value
/// says what went wrong, and `midisock_last_error_message` gives the details for the calling
/// thread.
///
/// Values are explicit, grouped by hundreds above a private base (7000, clear of errno values),
/// and never reused: a code that is retired stays reserved.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum midisock_result {
    /// Success.
    Ok = 0,

    /// **7000–7099: nothing to hand out** (the connection is fine).
    ///
    /// A non-blocking call (`_try_receive`, `_try_accept`) found nothing waiting. Not recorded
    /// as the last error (`midisock_last_error_message` keeps the previous one), and an empty
    /// `_try_receive` allocates nothing: polling every audio block is cheap.
    WouldBlock = 7001,
    /// A `_timeout` call waited its whole timeout and nothing came.
    TimedOut = 7002,
    /// The output buffer is too small. `*len_out` is set to the buffer size needed (for text:
    /// including the terminating NUL); nothing else is written. A received message is kept and
    /// returned by the next receive call on the same handle.
    BufferTooSmall = 7003,

    /// **7100–7199: bad arguments.**
    ///
    /// A pointer argument is NULL.
    NullArgument = 7101,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 7102,
    /// A number argument is not one of the values the function accepts (e.g. an unknown
    /// `midisock_sysex_policy`).
    InvalidArgument = 7103,

    /// **7200–7299: addresses and connections.**
    ///
    /// The address text is not `host:port` or `[v6addr]:port`.
    AddressSyntax = 7201,
    /// The host name did not resolve.
    Resolve = 7202,
    /// No address of the host accepted the connection (refused, unreachable, timed out).
    Connect = 7203,
    /// The server could not listen on the address (in use, permission, no such interface).
    Bind = 7204,
    /// An allowlist entry (`midisock_server_config_allow`) is not an IP address or CIDR range
    /// like `"192.168.1.0/24"`.
    PeerRangeSyntax = 7205,

    /// **7300–7399: the state of a port or server.**
    ///
    /// The port or server is closed: closed locally, or the peer closed and every message it
    /// sent has been received.
    Closed = 7301,
    /// The port delivers messages to a callback, so it cannot be read directly, and a second
    /// callback cannot be installed.
    CallbackInstalled = 7302,
    /// A message kept after `MIDISOCK_RESULT_BUFFER_TOO_SMALL` must be received before a
    /// callback can be installed.
    MessageKept = 7303,
    /// The server refused the connection and said why (allowlist, token, lockout, too many
    /// clients, a hello too slow, TLS mismatch): `midisock_last_error_message` gives its words.
    /// The port is closed; every later send and receive on it returns this code again.
    Refused = 7304,
    /// A reconnecting port's connection is down and it is reconnecting: nothing was sent.
    /// `midisock_port_link_status` says where it stands.
    Disconnected = 7305,
    /// A reconnecting port gave up after its maximum number of attempts; it is closed.
    GaveUp = 7306,
    /// The feature asked about is not on for this port or server (e.g. playout stats without a
    /// jitter buffer: `midisock_connect_options_set_jitter_buffer`).
    NotEnabled = 7307,

    /// **7400–7499: messages.**
    ///
    /// The bytes are not whole MIDI messages (incomplete, stray data bytes, undefined status).
    InvalidBytes = 7401,
    /// A message field is out of range.
    InvalidMessage = 7402,
    /// Message text is not in mido's format.
    MessageText = 7403,

    /// **7500–7599: the operating system.**
    ///
    /// Any other I/O failure; the last error message has the OS error.
    Io = 7501,

    /// **7600–7699: security.**
    ///
    /// TLS failed: a certificate or key file is missing or unreadable, or the handshake with the
    /// peer failed (untrusted certificate, wrong name, peer without TLS). The last error message
    /// says which.
    Tls = 7601,
    /// An authentication token is empty, longer than 128 bytes, or not printable ASCII.
    InvalidToken = 7602,

    /// **7900–7999: bugs.**
    ///
    /// libmidisock panicked; the call had no effect the caller can rely on. Please report it
    /// with the last error message.
    Panic = 7901,
}

impl midisock_result {
    fn text(self) -> &'static CStr {
        use midisock_result::*;
        match self {
            Ok => c"success",
            WouldBlock => c"nothing waiting",
            TimedOut => c"timed out",
            BufferTooSmall => c"buffer too small",
            NullArgument => c"NULL argument",
            InvalidUtf8 => c"string is not UTF-8",
            InvalidArgument => c"argument value out of range",
            AddressSyntax => c"invalid address",
            Resolve => c"cannot resolve host",
            Connect => c"cannot connect",
            Bind => c"cannot listen on address",
            PeerRangeSyntax => c"invalid address range",
            Closed => c"closed",
            CallbackInstalled => c"callback installed",
            MessageKept => c"a kept message must be received first",
            Refused => c"refused by the server",
            Disconnected => c"disconnected, reconnecting",
            GaveUp => c"gave up reconnecting",
            NotEnabled => c"not enabled",
            InvalidBytes => c"not whole MIDI messages",
            InvalidMessage => c"message value out of range",
            MessageText => c"invalid message text",
            Io => c"I/O error",
            Tls => c"TLS error",
            InvalidToken => c"invalid token",
            Panic => c"internal panic (bug in libmidisock)",
        }
    }
}

impl midisock_result {
    /// A short English text for any result code: `"success"`, `"closed"`, ... Unknown values
    /// give `"unknown result code"`.
    ///
    /// Returns a static NUL-terminated string (never NULL, never freed). One of the two functions
    /// that do not return a `midisock_result` (with `midisock_version`): they cannot fail.
    /// Thread: any. Never blocks.
    #[no_mangle]
    pub extern "C" fn midisock_result_str(result: u32) -> *const c_char {
        ffi_boundary!("midisock_result_str", {
            all_results().iter().find(|r| **r as u32 == result).map_or(c"unknown result code", |r| r.text())
        })
    }
}

/// Every result code, for `midisock_result_str` (which takes any `u32`, so an unknown value from
/// C is never turned into an invalid enum).
/// Every result code, in declaration order. Generated by build.rs from the enum above, so a code
/// added there is here too (and named by `midisock_result_str`).
pub(crate) fn all_results() -> &'static [midisock_result] {
    include!(concat!(env!("OUT_DIR"), "/all_results.rs"))
}
