//! `midisock_port`: one connection, from `midisock_port_connect` or `midisock_server_accept`.

use crate::boundary::{
    ffi_boundary, from_handle, into_handle, try_bytes, try_out, try_ref, try_str, try_text_buf, Outcome,
};
use crate::connect_options::midisock_connect_options;
use crate::errors::Failure;
use crate::jitter::{midisock_playout_stats, midisock_received_info};
use crate::link::Link;
use crate::message::{decode_outgoing, write_text, Outgoing};
use crate::receive::{self, receive_message_out, receive_out, wait_for, Kept, ReceiveOut, Wait};
use crate::result::midisock_result;
use midisock_core::{LinkState, ParserStats, Received, SocketPort};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A connection carrying MIDI both ways. Opaque; made by `midisock_port_connect`,
/// `midisock_port_connect_timeout` or `midisock_server_accept*`, freed by `midisock_port_free`.
///
/// Thread safety: every function except `midisock_port_free` may be called on one port from
/// several threads at once. Messages sent concurrently are never interleaved byte-wise.
#[derive(Debug)]
pub struct midisock_port {
    port: Link,
    kept: Kept,
    closed: AtomicBool,
}

/// What a port's receiving parser has ignored or dropped (`midisock_port_parser_stats`). Every
/// field counts from the connect (or accept) on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct midisock_parser_statistics {
    /// Data bytes that arrived with no status in effect (ignored).
    pub stray_data_bytes: u64,
    /// Sysex messages dropped because they exceeded the size limit.
    pub sysex_overflows: u64,
    /// Sysex messages cut short by a status byte before their F7 (dropped).
    pub sysex_aborted: u64,
    /// Channel or system common messages cut short by a status byte or F7 (dropped).
    pub partial_messages_dropped: u64,
    /// Undefined status bytes (F4, F5, F9, FD) ignored.
    pub undefined_status_bytes: u64,
}

impl From<ParserStats> for midisock_parser_statistics {
    fn from(stats: ParserStats) -> midisock_parser_statistics {
        // Destructured, so a counter the core adds is a compile error here, not a silent gap.
        let ParserStats {
            stray_data_bytes,
            sysex_overflows,
            sysex_aborted,
            partial_messages_dropped,
            undefined_status_bytes,
        } = stats;
        midisock_parser_statistics {
            stray_data_bytes,
            sysex_overflows,
            sysex_aborted,
            partial_messages_dropped,
            undefined_status_bytes,
        }
    }
}

/// Where a port's connection stands (`midisock_link_status.state`). Values are explicit and
/// never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum midisock_link_state {
    /// Connected: sends go out, receives read.
    Connected = 0,
    /// A reconnecting port's connection dropped (or an attempt failed); the next attempt follows.
    /// Sends return `MIDISOCK_RESULT_DISCONNECTED`; receives wait for the next connection.
    Disconnected = 1,
    /// A reconnecting port will make attempt `attempt` in `delay_ms` milliseconds.
    Reconnecting = 2,
    /// A reconnecting port gave up after `attempt` failed attempts; it is closed
    /// (`MIDISOCK_RESULT_GAVE_UP`).
    GaveUp = 3,
    /// Closed (locally, or, for a port that does not reconnect, by the peer or a refusal).
    Closed = 4,
}

/// A port's connection state (`midisock_port_link_status`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct midisock_link_status {
    /// One of `midisock_link_state`.
    pub state: u32,
    /// `MIDISOCK_LINK_STATE_RECONNECTING`: the attempt about to be made (1, 2, ...);
    /// `MIDISOCK_LINK_STATE_GAVE_UP`: the attempts made. Otherwise 0.
    pub attempt: u32,
    /// `MIDISOCK_LINK_STATE_RECONNECTING`: milliseconds until that attempt. Otherwise 0.
    pub delay_ms: u64,
}

impl From<&LinkState> for midisock_link_status {
    fn from(state: &LinkState) -> midisock_link_status {
        let (state, attempt, delay_ms) = match state {
            LinkState::Connected => (midisock_link_state::Connected, 0, 0),
            LinkState::Disconnected { .. } => (midisock_link_state::Disconnected, 0, 0),
            LinkState::Reconnecting { attempt, delay } => {
                (midisock_link_state::Reconnecting, *attempt, u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
            }
            LinkState::GaveUp { attempts, .. } => (midisock_link_state::GaveUp, *attempts, 0),
            // Closed, and whatever the core adds later (its LinkState is non_exhaustive).
            _ => (midisock_link_state::Closed, 0, 0),
        };
        midisock_link_status { state: state as u32, attempt, delay_ms }
    }
}

/// Called for every message a port receives after `midisock_port_set_callback`.
///
/// - `user_data`: the pointer given to `midisock_port_set_callback`, untouched.
/// - `bytes[0..len]`: one whole MIDI message (status byte first; sysex with F0 ... F7). The
///   bytes are valid only during the call: copy what you keep.
/// - `timestamp_ns`: `CLOCK_MONOTONIC` nanoseconds when the message was read (through a jitter
///   buffer: its played-out time, so the callback runs at that time).
///
/// Runs on the port's own reader thread, named "midisock-cb", one call at a time, in
/// arrival order. The callback may send on this port or any other and may call
/// `midisock_port_close` on this port; it must not call `midisock_port_free` on this port, must
/// not unwind (no C++ exceptions, no longjmp out of it), and should return quickly: the next
/// message waits for it.
pub type midisock_receive_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, bytes: *const u8, len: usize, timestamp_ns: u64)>;

/// Called for every message a port receives after `midisock_port_set_message_callback`: as
/// `midisock_receive_callback`, with the message's times in `*info` (the ones
/// `midisock_port_receive_message` gives): `timestamp_ns`, its delivery time (through a jitter
/// buffer, the played-out time, which is when the callback runs), and for a message its sender
/// stamped, `sender_ns` with `has_sender_ns` 1 (`sender_ns` 0 and `has_sender_ns` 0 when
/// unstamped). `info` is valid only during the call. Same thread and rules as
/// `midisock_receive_callback`.
pub type midisock_message_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, bytes: *const u8, len: usize, info: *const midisock_received_info),
>;

/// The C function a port's callback thread calls, in one of its two forms.
#[derive(Clone, Copy)]
enum CallbackForm {
    /// `midisock_port_set_callback`: the delivery time only.
    Timestamp(unsafe extern "C" fn(*mut c_void, *const u8, usize, u64)),
    /// `midisock_port_set_message_callback`: both times.
    Info(unsafe extern "C" fn(*mut c_void, *const u8, usize, *const midisock_received_info)),
}

/// The callback's `user_data`, carried to the callback thread.
struct UserData(*mut c_void);

// SAFETY: the pointer is never dereferenced by Rust, only handed back to the C callback; the C
// caller promises (documented at `midisock_port_set_callback`) that the callback may use it from
// the callback thread.
unsafe impl Send for UserData {}

impl UserData {
    /// A method (not a field access), so a closure calling it captures the `Send` wrapper
    /// whole rather than the raw pointer inside it.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

impl midisock_port {
    pub(crate) fn new(port: SocketPort) -> midisock_port {
        midisock_port::with_link(Link::Plain(port))
    }

    fn with_link(port: Link) -> midisock_port {
        midisock_port { port, kept: Kept::default(), closed: AtomicBool::new(false) }
    }

    /// The port behind a handle.
    ///
    /// # Safety
    /// `port` is NULL or a live handle from this library, not freed during the call.
    unsafe fn from_ptr<'a>(port: *const midisock_port) -> Result<&'a midisock_port, Failure> {
        // SAFETY: forwarded from the caller.
        unsafe { try_ref(port, "port") }
    }

    /// Every receive export of a port: refused once closed through this handle, else the one
    /// receive path.
    fn receive(&self, wait: Wait, out: ReceiveOut<'_>) -> Outcome {
        self.ensure_open()?;
        receive::receive(&self.kept, &self.port, wait, out)
    }

    /// The refusal of every export that needs the port: closed through this handle.
    fn ensure_open(&self) -> Outcome {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// The connection's state; a port closed through this handle is closed whatever the core
    /// says.
    fn link_state(&self) -> LinkState {
        if self.closed.load(Ordering::Acquire) {
            return LinkState::Closed;
        }
        self.port.state()
    }

    /// What a closed port reports: the server's refusal if there was one, else plain closed.
    fn closed_error(&self) -> Failure {
        match self.port.refusal() {
            Some(cause) => midisock_core::Error::Refused { cause: cause.to_owned() }.into(),
            None => midisock_core::Error::Closed.into(),
        }
    }

    /// Installs a C callback in either form (see `midisock_port_set_callback`).
    fn install_callback(&self, callback: CallbackForm, user_data: *mut c_void) -> Outcome {
        self.ensure_open()?;
        if !self.kept.is_empty() {
            return Err(Failure::new(
                midisock_result::MessageKept,
                "a message kept after MIDISOCK_RESULT_BUFFER_TOO_SMALL is waiting; receive \
                 it before installing a callback",
            ));
        }
        let plain = self.port.plain().ok_or_else(|| {
            Failure::new(
                midisock_result::InvalidArgument,
                "a reconnecting port delivers messages to its receive functions only, not to a callback",
            )
        })?;
        let user_data = UserData(user_data);
        plain.set_callback(move |received: Received| {
            call_back(callback, user_data.get(), &received);
        })?;
        Ok(())
    }

    fn send_bytes(&self, bytes: &[u8]) -> Outcome {
        match decode_outgoing(bytes)? {
            Outgoing::One(message) => self.port.send(&message)?,
            Outgoing::Many(messages) => self.port.send_all(&messages)?,
        }
        Ok(())
    }

    /// Connects to a midisock or mido server at `address` (`"host:port"`, `"[v6addr]:port"`;
    /// every address the host resolves to is tried in order) and writes the new port to
    /// `*port_out`. The caller owns the port and frees it with `midisock_port_free`.
    ///
    /// Blocks until connected or refused (the OS connect timeout applies; see
    /// `midisock_port_connect_timeout`). Thread: any.
    ///
    /// A server that refuses the client after the TCP connection is made (allowlist, lockout,
    /// too many clients) says so in a notice: that shows as `MIDISOCK_RESULT_REFUSED` on a later
    /// receive, send or `midisock_port_finish`, not here.
    ///
    /// Results: `MIDISOCK_RESULT_ADDRESS_SYNTAX`, `MIDISOCK_RESULT_RESOLVE`,
    /// `MIDISOCK_RESULT_CONNECT` (refused, unreachable), `MIDISOCK_RESULT_INVALID_UTF8`,
    /// `MIDISOCK_RESULT_IO`.
    ///
    /// # Safety
    /// `address` is a NUL-terminated string; `port_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_connect(
        address: *const c_char,
        port_out: *mut *mut midisock_port,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_connect", {
            // SAFETY: the caller guarantees `address` is a NUL-terminated string.
            let address = unsafe { try_str(address, "address")? };
            // SAFETY: the caller guarantees `port_out` is valid for a write.
            let port_out = unsafe { try_out(port_out, "port_out")? };
            let port = midisock_core::connect(address)?;
            port_out.write(into_handle(midisock_port::new(port)));
            Ok(())
        })
    }

    /// `midisock_port_connect`, giving up on each address after `timeout_ms` milliseconds.
    ///
    /// Blocks at most `timeout_ms` per address the host resolves to (plus name resolution).
    /// Thread: any. Results: as `midisock_port_connect`; a timeout is `MIDISOCK_RESULT_CONNECT`.
    ///
    /// # Safety
    /// `address` is a NUL-terminated string; `port_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_connect_timeout(
        address: *const c_char,
        timeout_ms: u64,
        port_out: *mut *mut midisock_port,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_connect_timeout", {
            // SAFETY: the caller guarantees `address` is a NUL-terminated string.
            let address = unsafe { try_str(address, "address")? };
            // SAFETY: the caller guarantees `port_out` is valid for a write.
            let port_out = unsafe { try_out(port_out, "port_out")? };
            let port = midisock_core::connect_timeout(address, Duration::from_millis(timeout_ms))?;
            port_out.write(into_handle(midisock_port::new(port)));
            Ok(())
        })
    }

    /// `midisock_port_connect` with `options` (see `midisock_connect_options`): a connect
    /// timeout, a token for a server that requires one, TLS. Writes the new port to `*port_out`;
    /// the caller owns it and frees it with `midisock_port_free`. Nothing of `options` is kept.
    ///
    /// Blocks until connected and, with TLS, until the handshake is done. The timeout
    /// (`midisock_connect_options_set_timeout_ms`) bounds each connection attempt and each read
    /// or write of the TLS handshake: a server that accepts and never answers fails the connect
    /// with `MIDISOCK_RESULT_TLS`. Thread: any.
    ///
    /// A server that requires a token refuses a connection with a wrong one after reading it:
    /// that shows as `MIDISOCK_RESULT_REFUSED` on a later receive, send or
    /// `midisock_port_finish`, not here.
    ///
    /// Results: as `midisock_port_connect`; `MIDISOCK_RESULT_TLS` (handshake failed or timed
    /// out, untrusted certificate, wrong name, server name without CA file).
    ///
    /// # Safety
    /// `address` is a NUL-terminated string; `options` is a live options handle; `port_out` is
    /// valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_connect_with(
        address: *const c_char,
        options: *const midisock_connect_options,
        port_out: *mut *mut midisock_port,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_connect_with", {
            // SAFETY: the caller guarantees `address` is a NUL-terminated string.
            let address = unsafe { try_str(address, "address")? };
            // SAFETY: the caller guarantees `options` is a live handle.
            let options = unsafe { midisock_connect_options::from_ptr(options)? };
            // SAFETY: the caller guarantees `port_out` is valid for a write.
            let port_out = unsafe { try_out(port_out, "port_out")? };
            let options = options.to_core()?;
            let port = if options.reconnect.is_some() {
                Link::Reconnecting(midisock_core::ReconnectingPort::connect(address, &options)?)
            } else {
                Link::Plain(midisock_core::connect_with(address, &options)?)
            };
            port_out.write(into_handle(midisock_port::with_link(port)));
            Ok(())
        })
    }

    /// Sends the MIDI messages in `bytes[0..len]`: one or more whole messages (status byte
    /// first; sysex framed by F0 ... F7; running status is accepted and sent as full status
    /// bytes). All go out in one write, in order, never interleaved with another thread's
    /// messages; if any byte is wrong nothing is sent (`MIDISOCK_RESULT_INVALID_BYTES`).
    ///
    /// Blocks while the socket's send buffer is full (the peer reads slower than we send).
    /// Thread: any; concurrent sends on one port are safe. Copies nothing the caller must keep.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_BYTES` (nothing sent); `MIDISOCK_RESULT_CLOSED` when the
    /// port was closed locally, or the peer's close has been seen (by a receive that returned
    /// `MIDISOCK_RESULT_CLOSED`, or an earlier send that found the connection gone): from then on
    /// every send returns it, since the bytes could only be lost; `MIDISOCK_RESULT_REFUSED` once
    /// the server's refusal notice has been seen (details: `midisock_last_error_message`);
    /// `MIDISOCK_RESULT_IO`. A reconnecting port: `MIDISOCK_RESULT_DISCONNECTED` while its
    /// connection is down (nothing sent), `MIDISOCK_RESULT_GAVE_UP` once it gave up.
    /// A send can succeed after the peer closed and before that is seen:
    /// the bytes fit in the socket's buffer. `midisock_port_finish` tells for certain.
    ///
    /// # Safety
    /// `port` is a live port handle; `bytes` is valid for reads of `len` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_send(
        port: *const midisock_port,
        bytes: *const u8,
        len: usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_send", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `bytes` is valid for `len` bytes.
            let bytes = unsafe { try_bytes(bytes, len, "bytes")? };
            port.send_bytes(bytes)
        })
    }

    /// Waits for the next message and writes its bytes to `buf[0..len]`, their count to
    /// `*len_out` and its receive time (`CLOCK_MONOTONIC` ns; through a jitter buffer, its
    /// played-out time) to `*timestamp_out`. `midisock_port_receive_message` also gives the
    /// sender's time.
    ///
    /// Blocks until a message arrives, the peer closes, or another thread closes the port (no
    /// polling). Thread: any; concurrent receivers each get different messages.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED` once the port is closed or the peer has closed and every
    /// message it sent has been received; `MIDISOCK_RESULT_REFUSED` when the server's first
    /// bytes were a refusal notice (the port is closed; details:
    /// `midisock_last_error_message`); `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the size needed
    /// in `*len_out`, the message kept for the next receive call (3 bytes fit every message but
    /// sysex); `MIDISOCK_RESULT_CALLBACK_INSTALLED`; `MIDISOCK_RESULT_IO`. A reconnecting port
    /// waits across drops (the note-offs for held notes come first after each) and ends with
    /// `MIDISOCK_RESULT_CLOSED` or `MIDISOCK_RESULT_GAVE_UP`.
    ///
    /// # Safety
    /// `port` is a live port handle; `buf` is valid for writes of `len` bytes; `len_out` and
    /// `timestamp_out` are valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_receive(
        port: *const midisock_port,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        timestamp_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_receive", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (port, out) = unsafe { port_args(port, buf, len, len_out, timestamp_out)? };
            port.receive(Wait::Forever, out)
        })
    }

    /// `midisock_port_receive` without waiting: `MIDISOCK_RESULT_WOULD_BLOCK` if no message has
    /// arrived (mido's `receive(block=False)` / `poll()`).
    ///
    /// Never blocks (it reads what the socket already holds). Thread: any.
    ///
    /// Results: as `midisock_port_receive`, plus `MIDISOCK_RESULT_WOULD_BLOCK`.
    ///
    /// # Safety
    /// As `midisock_port_receive`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_try_receive(
        port: *const midisock_port,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        timestamp_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_try_receive", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (port, out) = unsafe { port_args(port, buf, len, len_out, timestamp_out)? };
            port.receive(Wait::No, out)
        })
    }

    /// `midisock_port_receive` waiting at most `timeout_ms` milliseconds:
    /// `MIDISOCK_RESULT_TIMED_OUT` if no message came.
    ///
    /// Blocks up to `timeout_ms`. Thread: any.
    ///
    /// Results: as `midisock_port_receive`, plus `MIDISOCK_RESULT_TIMED_OUT`.
    ///
    /// # Safety
    /// As `midisock_port_receive`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_receive_timeout(
        port: *const midisock_port,
        timeout_ms: u64,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        timestamp_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_receive_timeout", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (port, out) = unsafe { port_args(port, buf, len, len_out, timestamp_out)? };
            port.receive(Wait::Millis(timeout_ms), out)
        })
    }

    /// One receive for every need: waits at most `timeout_ms` milliseconds (0: not at all;
    /// `MIDISOCK_WAIT_FOREVER`: until a message comes or the port is closed), writes the
    /// message's bytes to `buf[0..len]`, their count to `*len_out`, and its times to
    /// `*info_out`: the delivery time (through a jitter buffer, the played-out time) and, for a
    /// message its sender stamped, the sender's time (`midisock_received_info`).
    ///
    /// Blocks up to `timeout_ms`. Thread: any.
    ///
    /// Results: as `midisock_port_receive`, plus `MIDISOCK_RESULT_WOULD_BLOCK` (`timeout_ms` 0,
    /// nothing waiting) and `MIDISOCK_RESULT_TIMED_OUT` (nothing within `timeout_ms`).
    ///
    /// # Safety
    /// `port` is a live port handle; `buf` is valid for writes of `len` bytes; `len_out` and
    /// `info_out` are valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_receive_message(
        port: *const midisock_port,
        timeout_ms: u64,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        info_out: *mut midisock_received_info,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_receive_message", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees every other pointer is valid as documented.
            let out = unsafe { receive_message_out(buf, len, len_out, info_out)? };
            port.receive(wait_for(timeout_ms), out)
        })
    }

    /// Delivers every message this port receives to `callback(user_data, bytes, len,
    /// timestamp_ns)` instead of the receive functions, which then return
    /// `MIDISOCK_RESULT_CALLBACK_INSTALLED`.
    ///
    /// The callback runs on a reader thread the port owns, named "midisock-cb" (see
    /// `midisock_receive_callback` for what it may do), until the peer closes or the port is
    /// closed. `midisock_port_free` waits for a running callback call to return; after it, the
    /// callback is never called again, so `user_data` may be freed then. `user_data` must be
    /// usable from that thread. Messages received but not yet taken are delivered first.
    ///
    /// Never blocks. Thread: any. One callback per port, for the port's whole life: it cannot be
    /// removed or replaced (close the port to stop it). A NULL `callback` is an error
    /// (`MIDISOCK_RESULT_NULL_ARGUMENT`) that installs nothing and changes nothing: receives
    /// keep working as before.
    ///
    /// A reconnecting port (`midisock_connect_options_set_reconnect`) takes no callback
    /// (`MIDISOCK_RESULT_INVALID_ARGUMENT`): receive from it instead.
    ///
    /// Results: `MIDISOCK_RESULT_NULL_ARGUMENT` (NULL `callback`);
    /// `MIDISOCK_RESULT_INVALID_ARGUMENT` (a reconnecting port);
    /// `MIDISOCK_RESULT_CALLBACK_INSTALLED` (a second call); `MIDISOCK_RESULT_MESSAGE_KEPT` (a
    /// message kept after `MIDISOCK_RESULT_BUFFER_TOO_SMALL` must be received first);
    /// `MIDISOCK_RESULT_CLOSED` / `MIDISOCK_RESULT_REFUSED` (the port is closed);
    /// `MIDISOCK_RESULT_IO` (the thread could not be started).
    ///
    /// # Safety
    /// `port` is a live port handle; `callback` is NULL or a function matching
    /// `midisock_receive_callback`, callable from another thread with `user_data`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_set_callback(
        port: *const midisock_port,
        callback: midisock_receive_callback,
        user_data: *mut c_void,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_set_callback", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            let callback =
                callback.ok_or_else(|| Failure::new(midisock_result::NullArgument, "argument `callback` is NULL"))?;
            port.install_callback(CallbackForm::Timestamp(callback), user_data)
        })
    }

    /// `midisock_port_set_callback` with the message's times: delivers every message this port
    /// receives to `callback(user_data, bytes, len, info)` (`midisock_message_callback`), where
    /// `*info` holds the delivery time and, for a stamped message, the sender's time, as
    /// `midisock_port_receive_message` gives them. Everything else (thread, one callback per
    /// port, results) is as `midisock_port_set_callback`; either setter counts as the port's one
    /// callback (a second call of either: `MIDISOCK_RESULT_CALLBACK_INSTALLED`).
    ///
    /// Results: as `midisock_port_set_callback`.
    ///
    /// # Safety
    /// `port` is a live port handle; `callback` is NULL or a function matching
    /// `midisock_message_callback`, callable from another thread with `user_data`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_set_message_callback(
        port: *const midisock_port,
        callback: midisock_message_callback,
        user_data: *mut c_void,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_set_message_callback", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            let callback =
                callback.ok_or_else(|| Failure::new(midisock_result::NullArgument, "argument `callback` is NULL"))?;
            port.install_callback(CallbackForm::Info(callback), user_data)
        })
    }

    /// Writes to `*due_ns_out` when the next message held in the port's jitter buffer is due:
    /// the `CLOCK_MONOTONIC` time in nanoseconds (the clock of every receive timestamp,
    /// `midisock_monotonic_ns`) at or after which `midisock_port_try_receive` hands it over.
    /// Writes `MIDISOCK_NOTHING_DUE` (0) when the buffer holds nothing, or the port has none. A
    /// message kept after `MIDISOCK_RESULT_BUFFER_TOO_SMALL` is due at once (its delivery time,
    /// already past, is written).
    ///
    /// For a host that polls from its own clock (Pd, Max, a game loop): after receiving with
    /// `_try_receive` until `MIDISOCK_RESULT_WOULD_BLOCK`, set the clock for this time instead
    /// of polling on a fixed period. Messages still in the socket are not in the buffer yet: wait
    /// on `midisock_port_poll_fd` as well (or instead: it wakes at this time too). A reconnecting
    /// port reports its current connection's buffer (0 while down).
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED` / `MIDISOCK_RESULT_REFUSED` (closed through this
    /// handle).
    ///
    /// # Safety
    /// `port` is a live port handle; `due_ns_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_next_due_ns(
        port: *const midisock_port,
        due_ns_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_next_due_ns", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `due_ns_out` is valid for a write.
            let due_ns_out = unsafe { try_out(due_ns_out, "due_ns_out")? };
            port.ensure_open()?;
            due_ns_out.write(receive::next_due(&port.kept, port.port.next_due_ns()));
            Ok(())
        })
    }

    /// Writes to `*fd_out` a file descriptor that is readable whenever `_try_receive` on this
    /// port may have something: bytes arrived (or the connection ended), a message held in the
    /// jitter buffer fell due (to the nanosecond: `midisock_port_next_due_ns`), or a reconnecting
    /// port's state changed (a drop, whose note-offs are then received; an attempt; a new
    /// connection). For a host with a file-descriptor hook (Pd's `sys_addpollfn`, an event loop,
    /// `poll`/`select`): wait on it, then receive with `_try_receive` until
    /// `MIDISOCK_RESULT_WOULD_BLOCK`, which makes it quiet again (it is level-triggered). It
    /// needs no timeout and no periodic poll.
    ///
    /// The same descriptor for the port's life (made on the first call), across a reconnecting
    /// port's connections; owned by the port: never close it, and stop waiting on it before
    /// `midisock_port_free`. Useless with a callback installed (the callback thread receives).
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED` / `MIDISOCK_RESULT_REFUSED` (closed through this
    /// handle), `MIDISOCK_RESULT_IO` (out of file descriptors).
    ///
    /// # Safety
    /// `port` is a live port handle; `fd_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_poll_fd(port: *const midisock_port, fd_out: *mut c_int) -> midisock_result {
        ffi_boundary!("midisock_port_poll_fd", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `fd_out` is valid for a write.
            let fd_out = unsafe { try_out(fd_out, "fd_out")? };
            port.ensure_open()?;
            fd_out.write(port.port.poll_fd()?);
            Ok(())
        })
    }

    /// Ends the connection the way a sender should and tells whether the server refused it: sends
    /// what autoreset would (`midisock_port_set_autoreset`), tells the peer nothing more is
    /// coming (a TCP half-close; with TLS a close_notify first), waits at most `timeout_ms` for
    /// the peer to close its side, then closes the port. Messages that arrive meanwhile are
    /// discarded. The handle stays valid until `midisock_port_free`.
    ///
    /// A send succeeds as long as its bytes fit in the socket's buffer, refused or not: a program
    /// that only sends calls this before exiting to learn whether anything was delivered.
    ///
    /// Blocks up to `timeout_ms` (a server that refuses does so at once). Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_OK` when the peer closed without a refusal, or `timeout_ms`
    /// passed first; `MIDISOCK_RESULT_REFUSED` when the server refused the connection (its words:
    /// `midisock_last_error_message`); `MIDISOCK_RESULT_CLOSED` if the port was already closed.
    ///
    /// # Safety
    /// `port` is a live port handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_finish(port: *const midisock_port, timeout_ms: u64) -> midisock_result {
        ffi_boundary!("midisock_port_finish", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            if port.closed.swap(true, Ordering::AcqRel) {
                return Err(port.closed_error());
            }
            port.kept.clear();
            port.port.finish(Duration::from_millis(timeout_ms))?;
            Ok(())
        })
    }

    /// Closes the connection: the peer sees end-of-stream at once, and threads blocked in a
    /// receive on this port return `MIDISOCK_RESULT_CLOSED`, as do later sends and receives. The
    /// handle stays valid until `midisock_port_free`. Closing twice is harmless and returns
    /// `MIDISOCK_RESULT_OK`.
    ///
    /// Never blocks for long (one shutdown call). Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_close(port: *const midisock_port) -> midisock_result {
        ffi_boundary!("midisock_port_close", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            port.closed.store(true, Ordering::Release);
            port.port.close();
            port.kept.clear();
            Ok(())
        })
    }

    /// Writes whether the port is closed (locally, or the peer closed and every message it sent
    /// has been received) to `*closed_out`.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle; `closed_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_is_closed(
        port: *const midisock_port,
        closed_out: *mut bool,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_is_closed", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `closed_out` is valid for a write.
            let closed_out = unsafe { try_out(closed_out, "closed_out")? };
            let closed = port.closed.load(Ordering::Acquire) || (port.port.is_closed() && port.kept.is_empty());
            closed_out.write(closed);
            Ok(())
        })
    }

    /// Writes the port's name (`"host:port"` of the peer, as given to connect, or of the client
    /// for an accepted port), NUL-terminated, to `buf[0..len]`; `*len_out` is its length without
    /// the NUL (`MIDISOCK_RESULT_BUFFER_TOO_SMALL`: the size needed, NUL included).
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle; `buf` is valid for writes of `len` bytes; `len_out` for a
    /// write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_name(
        port: *const midisock_port,
        buf: *mut c_char,
        len: usize,
        len_out: *mut usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_name", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
            let buf = unsafe { try_text_buf(buf, len, "buf")? };
            // SAFETY: the caller guarantees `len_out` is valid for a write.
            let len_out = unsafe { try_out(len_out, "len_out")? };
            write_text(port.port.name(), buf, len_out)
        })
    }

    /// Sends mido's reset set: all notes off (CC 123) and reset all controllers (CC 121) on every
    /// channel. Blocks and fails like `midisock_port_send`. Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_reset(port: *const midisock_port) -> midisock_result {
        ffi_boundary!("midisock_port_reset", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            port.port.reset()?;
            Ok(())
        })
    }

    /// Sends mido's panic set: all sound off (CC 120) on every channel. Blocks and fails like
    /// `midisock_port_send`. Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_panic(port: *const midisock_port) -> midisock_result {
        ffi_boundary!("midisock_port_panic", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            port.port.panic()?;
            Ok(())
        })
    }

    /// Turns autoreset on or off (mido's `autoreset`; default off). With it on, closing the port
    /// (`midisock_port_close`, or `midisock_port_free` of an open port) first sends a note-off
    /// for every note this port left sounding, then mido's reset set, so a synth on the other end
    /// is not left with hanging notes. Nothing is sent when the peer has already gone.
    ///
    /// Never blocks (the close that follows blocks like a send). Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_set_autoreset(port: *const midisock_port, on: bool) -> midisock_result {
        ffi_boundary!("midisock_port_set_autoreset", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            port.port.set_autoreset(on);
            Ok(())
        })
    }

    /// Writes where the port's connection stands to `*status_out`: for a port made with a
    /// reconnect policy (`midisock_connect_options_set_reconnect`) connected, disconnected,
    /// reconnecting (attempt N in D ms), gave up or closed; for any other port connected or
    /// closed. `midisock_port_link_text` gives the same in words, with the reason of a drop.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle; `status_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_link_status(
        port: *const midisock_port,
        status_out: *mut midisock_link_status,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_link_status", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `status_out` is valid for a write.
            let status_out = unsafe { try_out(status_out, "status_out")? };
            status_out.write(midisock_link_status::from(&port.link_state()));
            Ok(())
        })
    }

    /// Writes the port's connection state in words, NUL-terminated, to `buf[0..len]` (e.g.
    /// `"reconnecting: attempt 2 in 200 ms"`, `"disconnected: the server closed the
    /// connection"`); `*len_out` is its length without the NUL
    /// (`MIDISOCK_RESULT_BUFFER_TOO_SMALL`: the size needed, NUL included).
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle; `buf` is valid for writes of `len` bytes; `len_out` for a
    /// write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_link_text(
        port: *const midisock_port,
        buf: *mut c_char,
        len: usize,
        len_out: *mut usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_link_text", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
            let buf = unsafe { try_text_buf(buf, len, "buf")? };
            // SAFETY: the caller guarantees `len_out` is valid for a write.
            let len_out = unsafe { try_out(len_out, "len_out")? };
            write_text(&port.link_state().to_string(), buf, len_out)
        })
    }

    /// Writes what this port's receiving parser has ignored or dropped so far (see
    /// `midisock_parser_statistics`) to `*stats_out`. The byte stream has no error channel, so
    /// this is how a program learns that its peer sends garbage.
    ///
    /// Never blocks, even while another thread (or the callback thread) waits in a receive.
    /// Thread: any.
    ///
    /// # Safety
    /// `port` is a live port handle; `stats_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_parser_stats(
        port: *const midisock_port,
        stats_out: *mut midisock_parser_statistics,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_parser_stats", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `stats_out` is valid for a write.
            let stats_out = unsafe { try_out(stats_out, "stats_out")? };
            stats_out.write(port.port.parser_stats().into());
            Ok(())
        })
    }

    /// Writes the state of the port's jitter buffer (`midisock_connect_options_set_jitter_buffer`)
    /// to `*stats_out`: the clock offset and network jitter it measured, the delay in force, late
    /// and dropped messages (see `midisock_playout_stats`).
    ///
    /// Never blocks for longer than a copy. Thread: any.
    ///
    /// A port made with a reconnect policy reports its current connection's buffer (each
    /// connection starts its own, with counters from 0).
    ///
    /// Results: `MIDISOCK_RESULT_NOT_ENABLED` when the port has no jitter buffer, or a
    /// reconnecting port's connection is down (nothing written).
    ///
    /// # Safety
    /// `port` is a live port handle; `stats_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_playout_stats(
        port: *const midisock_port,
        stats_out: *mut midisock_playout_stats,
    ) -> midisock_result {
        ffi_boundary!("midisock_port_playout_stats", {
            // SAFETY: the caller guarantees `port` is a live handle.
            let port = unsafe { midisock_port::from_ptr(port)? };
            // SAFETY: the caller guarantees `stats_out` is valid for a write.
            let stats_out = unsafe { try_out(stats_out, "stats_out")? };
            let stats = port.port.playout_stats().ok_or_else(|| {
                Failure::new(
                    midisock_result::NotEnabled,
                    "the port has no jitter buffer: midisock_connect_options_set_jitter_buffer turns it on",
                )
            })?;
            stats_out.write(stats.into());
            Ok(())
        })
    }

    /// Closes the port (if open), waits for a running callback call to return, and frees the
    /// handle. `midisock_port_free(NULL)` does nothing. Returns `MIDISOCK_RESULT_OK`.
    ///
    /// Blocks only while a callback call is running. Thread: any but the port's callback thread,
    /// and only once no other thread uses the port: close it first to wake blocked receivers,
    /// and let them return.
    ///
    /// # Safety
    /// `port` is NULL or a live port handle that no other thread is using; it is invalid after.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_port_free(port: *mut midisock_port) -> midisock_result {
        ffi_boundary!("midisock_port_free", {
            // SAFETY: the caller guarantees `port` is NULL or a live handle nobody else uses.
            drop(unsafe { from_handle(port) });
            Ok(())
        })
    }
}

/// Checks the arguments shared by every port receive function.
///
/// # Safety
/// As `midisock_port_receive`.
unsafe fn port_args<'a>(
    port: *const midisock_port,
    buf: *mut u8,
    len: usize,
    len_out: *mut usize,
    timestamp_out: *mut u64,
) -> Result<(&'a midisock_port, ReceiveOut<'a>), Failure> {
    // SAFETY: forwarded from the caller, argument by argument.
    unsafe { Ok((midisock_port::from_ptr(port)?, receive_out(buf, len, len_out, timestamp_out)?)) }
}

/// Calls the C callback with one message, encoded on the stack when it is short.
fn call_back(callback: CallbackForm, user_data: *mut c_void, received: &Received) {
    let mut short = [0u8; midisock_core::MAX_SHORT_MESSAGE_LEN];
    let long;
    let bytes: &[u8] = match received.message.encode(&mut short) {
        Ok(len) => &short[..len],
        Err(_) => {
            long = received.message.to_bytes();
            &long
        }
    };
    match callback {
        // SAFETY: the C caller gave a callback matching `midisock_receive_callback` and a
        // `user_data` it may be called with on this thread; `bytes` is valid for the call.
        CallbackForm::Timestamp(callback) => unsafe {
            callback(user_data, bytes.as_ptr(), bytes.len(), received.timestamp_ns)
        },
        CallbackForm::Info(callback) => {
            let info = midisock_received_info::from(received);
            // SAFETY: as above (`midisock_message_callback`); `info` lives through the call.
            unsafe { callback(user_data, bytes.as_ptr(), bytes.len(), &info) }
        }
    }
}
