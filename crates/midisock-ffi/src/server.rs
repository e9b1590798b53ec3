//! `midisock_server`: listens, broadcasts, receives from every client, hands out connections.

use crate::boundary::{
    ffi_boundary, from_handle, into_handle, try_bytes, try_out, try_out_array, try_ref, try_str, try_text_buf, Outcome,
};
use crate::errors::Failure;
use crate::jitter::{midisock_client_playout_stats, midisock_received_info};
use crate::message::{decode_outgoing, write_text, Outgoing};
use crate::port::midisock_port;
use crate::receive::{self, receive_message_out, receive_out, wait_for, Kept, ReceiveOut, Wait};
use crate::result::midisock_result;
use crate::server_config::midisock_server_config;
use midisock_core::{PortServer, ServerStats, SocketPort};
use std::ffi::{c_char, c_int};
use std::time::Duration;

/// A server: accepts any number of clients on one I/O thread ("midisock-server"). Opaque; made
/// by `midisock_server_bind`, freed by `midisock_server_free`.
///
/// Three ways to use it, which can be mixed: receive from every client
/// (`midisock_server_receive*`), broadcast to every client (`midisock_server_send`), or take one
/// connection for yourself (`midisock_server_accept*`).
///
/// Thread safety: every function except `midisock_server_free` may be called on one server from
/// several threads at once.
#[derive(Debug)]
pub struct midisock_server {
    server: PortServer,
    kept: Kept,
    /// Whether the server was bound with a jitter buffer: with one and no client yet, the
    /// playout stats are an empty list, not "not enabled".
    jitter_buffer: bool,
}

/// What a server has accepted, refused and dropped (`midisock_server_stats`). Every field counts
/// from the bind on.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct midisock_server_statistics {
    /// Connections accepted and served (or handed to `midisock_server_accept*`).
    pub connections_accepted: u64,
    /// Connections closed at once: over the client limit, or not on the allowlist.
    pub connections_refused: u64,
    /// Clients disconnected because their outgoing queue passed the client queue limit.
    pub slow_clients_dropped: u64,
    /// Sysex messages from clients dropped by `MIDISOCK_SYSEX_POLICY_DENY`.
    pub sysex_denied: u64,
    /// Sysex messages from clients dropped for exceeding the sysex length limit.
    pub sysex_oversized: u64,
    /// Note-offs (and sustain-offs) the server generated for clients that left with notes held.
    pub notes_released: u64,
    /// Connections closed for a wrong, missing or late token hello, or a failed TLS handshake.
    pub auth_failures: u64,
}

impl From<ServerStats> for midisock_server_statistics {
    fn from(stats: ServerStats) -> midisock_server_statistics {
        // Destructured, so a counter the core adds is a compile error here, not a silent gap.
        let ServerStats {
            connections_accepted,
            connections_refused,
            slow_clients_dropped,
            sysex_denied,
            sysex_oversized,
            notes_released,
            auth_failures,
        } = stats;
        midisock_server_statistics {
            connections_accepted,
            connections_refused,
            slow_clients_dropped,
            sysex_denied,
            sysex_oversized,
            notes_released,
            auth_failures,
        }
    }
}

impl midisock_server {
    /// The server behind a handle.
    ///
    /// # Safety
    /// `server` is NULL or a live handle from this library, not freed during the call.
    unsafe fn from_ptr<'a>(server: *const midisock_server) -> Result<&'a midisock_server, Failure> {
        // SAFETY: forwarded from the caller.
        unsafe { try_ref(server, "server") }
    }

    /// Every receive export of a server: refused once closed, else the one receive path.
    fn receive(&self, wait: Wait, out: ReceiveOut<'_>) -> Outcome {
        self.ensure_open()?;
        receive::receive(&self.kept, &self.server, wait, out)
    }

    /// The refusal of every export that needs the server running: closed.
    fn ensure_open(&self) -> Outcome {
        if self.server.is_closed() {
            return Err(midisock_core::Error::Closed.into());
        }
        Ok(())
    }

    /// Listens on `address` and writes the new server to `*server_out`; the caller owns it and
    /// frees it with `midisock_server_free`.
    ///
    /// `address` is `"host:port"` or `"[v6addr]:port"`, the port a number 0-65535 (0 picks a
    /// free port; `midisock_server_local_port` tells which):
    /// - an empty host, `":8080"`, or `"[::]:8080"`: every IPv4 and IPv6 address of the machine
    ///   (one dual-stack socket);
    /// - `"0.0.0.0:8080"`: every IPv4 address;
    /// - an IP address (`"127.0.0.1:8080"`, `"[::1]:8080"`): that address only;
    /// - a name (`"localhost:8080"`): every address the name resolves to — `localhost` is
    ///   127.0.0.1, plus ::1 where the system resolves it to ::1 too.
    ///
    /// Anything else (`""`, `"8080"`, `"::1:8080"` without brackets, a port above 65535, white
    /// space) is `MIDISOCK_RESULT_ADDRESS_SYNTAX`.
    ///
    /// Blocks only for name resolution. Starts the server's I/O thread. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_ADDRESS_SYNTAX`, `MIDISOCK_RESULT_RESOLVE`,
    /// `MIDISOCK_RESULT_BIND` (in use, permission, no such interface),
    /// `MIDISOCK_RESULT_INVALID_UTF8`, `MIDISOCK_RESULT_IO`.
    ///
    /// # Safety
    /// `address` is a NUL-terminated string; `server_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_bind(
        address: *const c_char,
        server_out: *mut *mut midisock_server,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_bind", {
            // SAFETY: the caller guarantees `address` is a NUL-terminated string.
            let address = unsafe { try_str(address, "address")? };
            // SAFETY: the caller guarantees `server_out` is valid for a write.
            let server_out = unsafe { try_out(server_out, "server_out")? };
            let server = PortServer::bind(address)?;
            server_out.write(into_handle(midisock_server { server, kept: Kept::default(), jitter_buffer: false }));
            Ok(())
        })
    }

    /// `midisock_server_bind` with the limits and protections of `config` (see
    /// `midisock_server_config`): writes the new server to `*server_out`; the caller owns it and
    /// frees it with `midisock_server_free`. The server copies the configuration, which the
    /// caller may change, reuse or free afterwards.
    ///
    /// Blocks only for name resolution. Starts the server's I/O thread. Thread: any.
    ///
    /// Results: as `midisock_server_bind`.
    ///
    /// # Safety
    /// `address` is a NUL-terminated string; `config` is a live configuration handle;
    /// `server_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_bind_with(
        address: *const c_char,
        config: *const midisock_server_config,
        server_out: *mut *mut midisock_server,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_bind_with", {
            // SAFETY: the caller guarantees `address` is a NUL-terminated string.
            let address = unsafe { try_str(address, "address")? };
            // SAFETY: the caller guarantees `config` is a live handle.
            let config = unsafe { midisock_server_config::from_ptr(config)? };
            // SAFETY: the caller guarantees `server_out` is valid for a write.
            let server_out = unsafe { try_out(server_out, "server_out")? };
            let config = config.snapshot();
            let jitter_buffer = config.jitter_buffer.is_some();
            let server = PortServer::bind_with(address, config)?;
            server_out.write(into_handle(midisock_server { server, kept: Kept::default(), jitter_buffer }));
            Ok(())
        })
    }

    /// Writes the TCP port the server listens on (the real one when 0 was asked for) to
    /// `*port_out`.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `server` is a live server handle; `port_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_local_port(
        server: *const midisock_server,
        port_out: *mut u16,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_local_port", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `port_out` is valid for a write.
            let port_out = unsafe { try_out(port_out, "port_out")? };
            port_out.write(server.server.local_addr().port());
            Ok(())
        })
    }

    /// Writes the server's name (`"host:port"` as given to bind, with the real port),
    /// NUL-terminated, to `buf[0..len]`; `*len_out` is its length without the NUL
    /// (`MIDISOCK_RESULT_BUFFER_TOO_SMALL`: the size needed, NUL included).
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `server` is a live server handle; `buf` is valid for writes of `len` bytes; `len_out` for
    /// a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_name(
        server: *const midisock_server,
        buf: *mut c_char,
        len: usize,
        len_out: *mut usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_name", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
            let buf = unsafe { try_text_buf(buf, len, "buf")? };
            // SAFETY: the caller guarantees `len_out` is valid for a write.
            let len_out = unsafe { try_out(len_out, "len_out")? };
            write_text(server.server.name(), buf, len_out)
        })
    }

    /// Writes the number of connected clients the server serves (not counting connections
    /// handed out by accept) to `*count_out`. Clients connect asynchronously: a client whose
    /// `midisock_port_connect` returned may take a moment to be counted.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `server` is a live server handle; `count_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_client_count(
        server: *const midisock_server,
        count_out: *mut usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_client_count", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `count_out` is valid for a write.
            let count_out = unsafe { try_out(count_out, "count_out")? };
            count_out.write(server.server.client_count());
            Ok(())
        })
    }

    /// Writes what the server has accepted, refused and dropped since it was bound to
    /// `*stats_out` (see `midisock_server_statistics`). The counters only grow; each is read on
    /// its own, so a snapshot taken while clients come and go need not add up exactly.
    ///
    /// Never blocks. Thread: any. Works on a closed server too.
    ///
    /// # Safety
    /// `server` is a live server handle; `stats_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_stats(
        server: *const midisock_server,
        stats_out: *mut midisock_server_statistics,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_stats", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `stats_out` is valid for a write.
            let stats_out = unsafe { try_out(stats_out, "stats_out")? };
            stats_out.write(server.server.stats().into());
            Ok(())
        })
    }

    /// Writes the state of each connected client's jitter buffer
    /// (`midisock_server_config_set_jitter_buffer`) to `items[0..capacity]`, one
    /// `midisock_client_playout_stats` (the client's address and its stats) per client that
    /// stamps its messages (a midisock peer that answered the server's request; mido clients,
    /// whose messages are delivered on arrival, are not listed), and their number to
    /// `*count_out`. Call it with `items` NULL and
    /// `capacity` 0 to learn the number; clients come and go, so allow a few more.
    ///
    /// Never blocks for longer than a copy. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_NOT_ENABLED` when the server was bound without a jitter buffer;
    /// `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the number of clients in `*count_out` and nothing
    /// else written; `MIDISOCK_RESULT_NULL_ARGUMENT` for a NULL `items` with a `capacity` above 0.
    ///
    /// # Safety
    /// `server` is a live server handle; `items` is NULL (with `capacity` 0) or valid for writes
    /// of `capacity` elements; `count_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_playout_stats(
        server: *const midisock_server,
        items: *mut midisock_client_playout_stats,
        capacity: usize,
        count_out: *mut usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_playout_stats", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `items` is NULL or valid for `capacity` elements.
            let items = unsafe { try_out_array(items, capacity, "items")? };
            // SAFETY: the caller guarantees `count_out` is valid for a write.
            let count_out = unsafe { try_out(count_out, "count_out")? };
            if !server.jitter_buffer {
                return Err(Failure::new(
                    midisock_result::NotEnabled,
                    "the server has no jitter buffer: midisock_server_config_set_jitter_buffer turns it on",
                ));
            }
            let clients: Vec<midisock_client_playout_stats> = server
                .server
                .playout_stats()
                .into_iter()
                .map(|(peer, stats)| midisock_client_playout_stats::new(peer, stats))
                .collect();
            count_out.write(clients.len());
            if clients.len() > items.capacity() {
                return Err(Failure::new(
                    midisock_result::BufferTooSmall,
                    format!("{} clients, room for {}", clients.len(), items.capacity()),
                ));
            }
            items.write(&clients);
            Ok(())
        })
    }

    /// Broadcasts the MIDI messages in `bytes[0..len]` (one or more whole messages, as for
    /// `midisock_port_send`) to every connected client. Sending with no client connected is not
    /// an error.
    ///
    /// Never blocks on a client: what a client's socket does not take at once is queued, and a
    /// client whose queue overflows is disconnected (never thinned). Thread: any; concurrent
    /// broadcasts are safe and never interleave.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_BYTES` (nothing sent), `MIDISOCK_RESULT_CLOSED`.
    ///
    /// # Safety
    /// `server` is a live server handle; `bytes` is valid for reads of `len` bytes.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_send(
        server: *const midisock_server,
        bytes: *const u8,
        len: usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_send", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `bytes` is valid for `len` bytes.
            let bytes = unsafe { try_bytes(bytes, len, "bytes")? };
            match decode_outgoing(bytes)? {
                Outgoing::One(message) => server.server.send(&message)?,
                Outgoing::Many(messages) => server.server.send_all(&messages)?,
            }
            Ok(())
        })
    }

    /// Waits for the next message from any client and writes it like `midisock_port_receive`:
    /// bytes to `buf[0..len]`, their count to `*len_out`, receive time (through a jitter
    /// buffer, the played-out time) to `*timestamp_out`. Messages from all clients are merged
    /// in arrival order (through a jitter buffer, in played-out order).
    ///
    /// Besides what clients send, this delivers the note-offs the server makes when a client
    /// goes away (closed, vanished, or disconnected for not reading) with notes still held: one
    /// note-off (velocity 0) per note that client left sounding, so a synth fed from here is
    /// never left with a stuck note. They come after that client's last message.
    ///
    /// The first call also changes who gets new connections: until then they wait for
    /// `midisock_server_accept*`; from then on they are read here at once, unless a thread is
    /// blocked in `midisock_server_accept` / `_accept_timeout` at that moment.
    ///
    /// Blocks until a message arrives or the server is closed (no polling). Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED` once the server is closed;
    /// `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the size needed in `*len_out`, the message kept
    /// for the next receive call.
    ///
    /// # Safety
    /// `server` is a live server handle; `buf` is valid for writes of `len` bytes; `len_out` and
    /// `timestamp_out` are valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_receive(
        server: *const midisock_server,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        timestamp_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_receive", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (server, out) = unsafe { server_args(server, buf, len, len_out, timestamp_out)? };
            server.receive(Wait::Forever, out)
        })
    }

    /// `midisock_server_receive` without waiting: `MIDISOCK_RESULT_WOULD_BLOCK` if no message is
    /// waiting. Never blocks. Thread: any.
    ///
    /// Results: as `midisock_server_receive`, plus `MIDISOCK_RESULT_WOULD_BLOCK`.
    ///
    /// # Safety
    /// As `midisock_server_receive`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_try_receive(
        server: *const midisock_server,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        timestamp_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_try_receive", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (server, out) = unsafe { server_args(server, buf, len, len_out, timestamp_out)? };
            server.receive(Wait::No, out)
        })
    }

    /// `midisock_server_receive` waiting at most `timeout_ms` milliseconds:
    /// `MIDISOCK_RESULT_TIMED_OUT` if no message came. Blocks up to `timeout_ms`. Thread: any.
    ///
    /// Results: as `midisock_server_receive`, plus `MIDISOCK_RESULT_TIMED_OUT`.
    ///
    /// # Safety
    /// As `midisock_server_receive`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_receive_timeout(
        server: *const midisock_server,
        timeout_ms: u64,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        timestamp_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_receive_timeout", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (server, out) = unsafe { server_args(server, buf, len, len_out, timestamp_out)? };
            server.receive(Wait::Millis(timeout_ms), out)
        })
    }

    /// `midisock_port_receive_message` for a server: waits at most `timeout_ms` milliseconds (0:
    /// not at all; `MIDISOCK_WAIT_FOREVER`: until a message comes or the server is closed) for a
    /// message from any client, and writes its bytes, their count and its times (the delivery
    /// time and, for a stamped message, the sender's) to `buf`, `*len_out` and `*info_out`.
    ///
    /// Blocks up to `timeout_ms`. Thread: any.
    ///
    /// Results: as `midisock_server_receive`, plus `MIDISOCK_RESULT_WOULD_BLOCK` (`timeout_ms` 0,
    /// nothing waiting) and `MIDISOCK_RESULT_TIMED_OUT` (nothing within `timeout_ms`).
    ///
    /// # Safety
    /// `server` is a live server handle; `buf` is valid for writes of `len` bytes; `len_out` and
    /// `info_out` are valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_receive_message(
        server: *const midisock_server,
        timeout_ms: u64,
        buf: *mut u8,
        len: usize,
        len_out: *mut usize,
        info_out: *mut midisock_received_info,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_receive_message", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees every other pointer is valid as documented.
            let out = unsafe { receive_message_out(buf, len, len_out, info_out)? };
            server.receive(wait_for(timeout_ms), out)
        })
    }

    /// Writes to `*due_ns_out` when the next message held in any client's jitter buffer is due
    /// (`midisock_server_config_set_jitter_buffer`): the `CLOCK_MONOTONIC` time in nanoseconds
    /// at which the server's I/O thread moves it to where `midisock_server_try_receive` finds it.
    /// Writes `MIDISOCK_NOTHING_DUE` (0) when no buffer holds anything, or the server has none.
    /// A message kept after `MIDISOCK_RESULT_BUFFER_TOO_SMALL` is due at once.
    ///
    /// The I/O thread moves a message within its own wake-up time of this instant, so a host
    /// that polls exactly then may still get `MIDISOCK_RESULT_WOULD_BLOCK`: wait on
    /// `midisock_server_poll_fd` instead, which becomes readable once the message is there.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED` (the server is closed).
    ///
    /// # Safety
    /// `server` is a live server handle; `due_ns_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_next_due_ns(
        server: *const midisock_server,
        due_ns_out: *mut u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_next_due_ns", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `due_ns_out` is valid for a write.
            let due_ns_out = unsafe { try_out(due_ns_out, "due_ns_out")? };
            server.ensure_open()?;
            due_ns_out.write(receive::next_due(&server.kept, server.server.next_due_ns()));
            Ok(())
        })
    }

    /// Writes to `*fd_out` a file descriptor that is readable whenever
    /// `midisock_server_try_receive` may have something: messages arrived from a client, a
    /// client's jitter buffer played one out (the I/O thread moves it at its time), a client
    /// connected or left (read `midisock_server_client_count` after receiving until
    /// `MIDISOCK_RESULT_WOULD_BLOCK`, which clears the signal), or the server stopped. For a host with a file-descriptor hook: wait on it, then
    /// receive with `_try_receive` until `MIDISOCK_RESULT_WOULD_BLOCK`, which makes it quiet
    /// again (level-triggered). The same descriptor for the server's life (made on the first
    /// call), owned by the server: never close it, and stop waiting on it before
    /// `midisock_server_free`.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED` (the server is closed), `MIDISOCK_RESULT_IO` (out of
    /// file descriptors).
    ///
    /// # Safety
    /// `server` is a live server handle; `fd_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_poll_fd(
        server: *const midisock_server,
        fd_out: *mut c_int,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_poll_fd", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            // SAFETY: the caller guarantees `fd_out` is valid for a write.
            let fd_out = unsafe { try_out(fd_out, "fd_out")? };
            server.ensure_open()?;
            fd_out.write(server.server.poll_fd()?);
            Ok(())
        })
    }

    /// Waits for a client to connect and hands its connection to the caller as a new port in
    /// `*port_out` (owned by the caller: `midisock_port_free`). The server neither reads from nor
    /// broadcasts to that connection again.
    ///
    /// Blocks until a client connects or the server is closed. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_CLOSED`, `MIDISOCK_RESULT_IO`.
    ///
    /// # Safety
    /// `server` is a live server handle; `port_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_accept(
        server: *const midisock_server,
        port_out: *mut *mut midisock_port,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_accept", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (server, port_out) = unsafe { accept_args(server, port_out)? };
            let port = server.server.accept()?;
            port_out.write(into_handle(midisock_port::new(port)));
            Ok(())
        })
    }

    /// `midisock_server_accept` without waiting: `MIDISOCK_RESULT_WOULD_BLOCK` if no client is
    /// waiting to be accepted. Never blocks. Thread: any.
    ///
    /// The client it takes may already have been served: a connection waits for accept in a
    /// lobby where it already receives the server's broadcasts (`midisock_server_send`), so the
    /// port may have been sent messages before it was accepted — those still queued go out
    /// first, none is lost or repeated. From the accept on, the server neither reads from nor
    /// broadcasts to it. Once `midisock_server_receive*` has been called, new clients are read
    /// by the server at once and this returns `MIDISOCK_RESULT_WOULD_BLOCK` for them.
    ///
    /// Results: `MIDISOCK_RESULT_WOULD_BLOCK`, `MIDISOCK_RESULT_CLOSED`, `MIDISOCK_RESULT_IO`.
    ///
    /// # Safety
    /// As `midisock_server_accept`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_try_accept(
        server: *const midisock_server,
        port_out: *mut *mut midisock_port,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_try_accept", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (server, port_out) = unsafe { accept_args(server, port_out)? };
            let port = server.server.try_accept()?;
            port_out.write(accepted(port, || Failure::new(midisock_result::WouldBlock, "no client waiting"))?);
            Ok(())
        })
    }

    /// `midisock_server_accept` waiting at most `timeout_ms` milliseconds:
    /// `MIDISOCK_RESULT_TIMED_OUT` if no client came. Blocks up to `timeout_ms`. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_TIMED_OUT`, `MIDISOCK_RESULT_CLOSED`, `MIDISOCK_RESULT_IO`.
    ///
    /// # Safety
    /// As `midisock_server_accept`.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_accept_timeout(
        server: *const midisock_server,
        timeout_ms: u64,
        port_out: *mut *mut midisock_port,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_accept_timeout", {
            // SAFETY: the caller guarantees every pointer is valid as documented.
            let (server, port_out) = unsafe { accept_args(server, port_out)? };
            let port = server.server.accept_timeout(Duration::from_millis(timeout_ms))?;
            port_out.write(accepted(port, || {
                Failure::new(midisock_result::TimedOut, format!("no client within {timeout_ms} ms"))
            })?);
            Ok(())
        })
    }

    /// Broadcasts mido's reset set (all notes off, reset all controllers, every channel).
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `server` is a live server handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_reset(server: *const midisock_server) -> midisock_result {
        ffi_boundary!("midisock_server_reset", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            server.server.reset()?;
            Ok(())
        })
    }

    /// Broadcasts mido's panic set (all sound off, every channel). Never blocks. Thread: any.
    ///
    /// # Safety
    /// `server` is a live server handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_panic(server: *const midisock_server) -> midisock_result {
        ffi_boundary!("midisock_server_panic", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            server.server.panic()?;
            Ok(())
        })
    }

    /// Stops the server: it stops listening, closes every connection it serves, and threads
    /// blocked in its receive or accept functions return `MIDISOCK_RESULT_CLOSED`, as do later
    /// calls. Ports already handed out by accept stay open. The handle stays valid until
    /// `midisock_server_free`. Closing twice is harmless and returns `MIDISOCK_RESULT_OK`.
    ///
    /// Blocks until the I/O thread has stopped (it flushes queued broadcasts briefly first).
    /// Thread: any.
    ///
    /// # Safety
    /// `server` is a live server handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_close(server: *const midisock_server) -> midisock_result {
        ffi_boundary!("midisock_server_close", {
            // SAFETY: the caller guarantees `server` is a live handle.
            let server = unsafe { midisock_server::from_ptr(server)? };
            server.server.close();
            server.kept.clear();
            Ok(())
        })
    }

    /// Closes the server (if open) and frees the handle. `midisock_server_free(NULL)` does
    /// nothing. Returns `MIDISOCK_RESULT_OK`.
    ///
    /// Blocks like `midisock_server_close`. Thread: any, once no other thread uses the server:
    /// close it first to wake blocked receivers and acceptors, and let them return.
    ///
    /// # Safety
    /// `server` is NULL or a live server handle that no other thread is using; it is invalid
    /// after.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_free(server: *mut midisock_server) -> midisock_result {
        ffi_boundary!("midisock_server_free", {
            // SAFETY: the caller guarantees `server` is NULL or a live handle nobody else uses.
            drop(unsafe { from_handle(server) });
            Ok(())
        })
    }
}

/// Checks the arguments shared by every server receive function.
///
/// # Safety
/// As `midisock_server_receive`.
unsafe fn server_args<'a>(
    server: *const midisock_server,
    buf: *mut u8,
    len: usize,
    len_out: *mut usize,
    timestamp_out: *mut u64,
) -> Result<(&'a midisock_server, ReceiveOut<'a>), Failure> {
    // SAFETY: forwarded from the caller, argument by argument.
    unsafe { Ok((midisock_server::from_ptr(server)?, receive_out(buf, len, len_out, timestamp_out)?)) }
}

/// Checks the arguments shared by every accept function.
///
/// # Safety
/// As `midisock_server_accept`.
unsafe fn accept_args<'a>(
    server: *const midisock_server,
    port_out: *mut *mut midisock_port,
) -> Result<(&'a midisock_server, crate::boundary::Out<'a, *mut midisock_port>), Failure> {
    // SAFETY: forwarded from the caller, argument by argument.
    unsafe { Ok((midisock_server::from_ptr(server)?, try_out(port_out, "port_out")?)) }
}

/// The handle for an accepted port, or the failure for "nobody came".
fn accepted(port: Option<SocketPort>, nobody: impl FnOnce() -> Failure) -> Result<*mut midisock_port, Failure> {
    port.map(|p| into_handle(midisock_port::new(p))).ok_or_else(nobody)
}
