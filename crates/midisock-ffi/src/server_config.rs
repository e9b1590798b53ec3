//! `midisock_server_config`: a server's limits and protections, for `midisock_server_bind_with`.

use crate::boundary::{ffi_boundary, from_handle, into_handle, try_out, try_ref, try_str};
use crate::errors::Failure;
use crate::jitter::delay_mode;
use crate::result::midisock_result;
use midisock_core::timing::PlayoutConfig;
use midisock_core::{ServerConfig, SysexPolicy, TlsServer};
use parking_lot::Mutex;
use std::ffi::c_char;
use std::time::Duration;

/// What a server does with sysex messages from its clients
/// (`midisock_server_config_set_sysex`).
///
/// Values are explicit and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum midisock_sysex_policy {
    /// Deliver sysex up to the configured length (the default).
    Allow = 0,
    /// Drop every sysex from clients, counted in `midisock_server_statistics.sysex_denied`. For
    /// servers that drive real instruments from peers they do not trust: a sysex can overwrite
    /// a synth's patches.
    Deny = 1,
}

impl midisock_sysex_policy {
    /// The policy with this value; `None` for a value C made up.
    fn from_u32(value: u32) -> Option<midisock_sysex_policy> {
        [midisock_sysex_policy::Allow, midisock_sysex_policy::Deny].into_iter().find(|p| *p as u32 == value)
    }
}

impl From<midisock_sysex_policy> for SysexPolicy {
    fn from(policy: midisock_sysex_policy) -> SysexPolicy {
        match policy {
            midisock_sysex_policy::Allow => SysexPolicy::Allow,
            midisock_sysex_policy::Deny => SysexPolicy::Deny,
        }
    }
}

/// A server configuration: limits that keep a server's memory bounded whatever its clients do,
/// and who may connect. Opaque; made by `midisock_server_config_new` with every default, changed
/// by the `midisock_server_config_*` setters, used (copied) by `midisock_server_bind_with`, freed
/// by `midisock_server_config_free`.
///
/// One configuration may bind any number of servers, and may be changed or freed once a bind
/// returned: the server keeps its own copy.
///
/// Thread safety: every function except `midisock_server_config_free` may be called on one
/// configuration from several threads at once (each call takes a lock; the last setter wins).
#[derive(Debug)]
pub struct midisock_server_config {
    config: Mutex<ServerConfig>,
}

impl midisock_server_config {
    /// The configuration behind a handle.
    ///
    /// # Safety
    /// `config` is NULL or a live handle from this library, not freed during the call.
    pub(crate) unsafe fn from_ptr<'a>(
        config: *const midisock_server_config,
    ) -> Result<&'a midisock_server_config, Failure> {
        // SAFETY: forwarded from the caller.
        unsafe { try_ref(config, "config") }
    }

    /// A copy of the configuration, for a bind.
    pub(crate) fn snapshot(&self) -> ServerConfig {
        self.config.lock().clone()
    }

    /// Applies `change` to the configuration behind a handle.
    ///
    /// # Safety
    /// As [`midisock_server_config::from_ptr`].
    unsafe fn update(
        config: *mut midisock_server_config,
        change: impl FnOnce(ServerConfig) -> Result<ServerConfig, Failure>,
    ) -> Result<(), Failure> {
        // SAFETY: forwarded from the caller.
        let config = unsafe { midisock_server_config::from_ptr(config.cast_const())? };
        let mut guard = config.config.lock();
        // Changes are made on a copy, so a failed setter leaves the configuration as it was.
        *guard = change(guard.clone())?;
        Ok(())
    }

    /// Writes a new configuration with every default to `*config_out`; the caller owns it and
    /// frees it with `midisock_server_config_free`.
    ///
    /// Defaults: max sysex length 1 MiB, max client queue 1 MiB, max clients 1024, max inbox
    /// 16 MiB, sysex allowed, every peer allowed, relay off, no token, auth timeout 5 s, no TLS
    /// (plain TCP, what mido speaks), shutdown flush 1 s.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_new(
        config_out: *mut *mut midisock_server_config,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_new", {
            // SAFETY: the caller guarantees `config_out` is valid for a write.
            let config_out = unsafe { try_out(config_out, "config_out")? };
            config_out.write(into_handle(midisock_server_config { config: Mutex::new(ServerConfig::default()) }));
            Ok(())
        })
    }

    /// Sets the longest sysex payload accepted from a client, in bytes; a longer one is dropped
    /// while it streams in (counted in `midisock_server_statistics.sysex_oversized`).
    /// Default: 1 MiB.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_max_sysex_len(
        config: *mut midisock_server_config,
        bytes: usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_max_sysex_len", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.max_sysex_len(bytes))) }
        })
    }

    /// Sets how many bytes of broadcast output may wait for one client. A client that falls
    /// further behind has stopped reading and is disconnected (counted in
    /// `midisock_server_statistics.slow_clients_dropped`), so it never stalls the server or the
    /// other clients. Default: 1 MiB.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_max_client_queue(
        config: *mut midisock_server_config,
        bytes: usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_max_client_queue", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.max_client_queue(bytes))) }
        })
    }

    /// Sets how many connections the server serves at once; a connection over the limit is
    /// closed as soon as it is accepted (counted in
    /// `midisock_server_statistics.connections_refused`). Default: 1024.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_max_clients(
        config: *mut midisock_server_config,
        clients: usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_max_clients", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.max_clients(clients))) }
        })
    }

    /// Sets how many bytes of received messages may wait for `midisock_server_receive*`. When
    /// the program reads slower than clients send, the server stops reading their sockets (TCP
    /// pushes back on the clients) instead of buffering without bound; nothing is dropped.
    /// Default: 16 MiB.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_max_inbox_bytes(
        config: *mut midisock_server_config,
        bytes: usize,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_max_inbox_bytes", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.max_inbox_bytes(bytes))) }
        })
    }

    /// Sets what the server does with sysex from clients: `policy` is a `midisock_sysex_policy`
    /// value (`MIDISOCK_SYSEX_POLICY_ALLOW`, the default, or `MIDISOCK_SYSEX_POLICY_DENY`).
    /// Taken as a `uint32_t` so that any value C passes is checked, never undefined behaviour.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_ARGUMENT` for any other value (nothing changed).
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_sysex(
        config: *mut midisock_server_config,
        policy: u32,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_sysex", {
            let policy = midisock_sysex_policy::from_u32(policy).ok_or_else(|| {
                Failure::new(midisock_result::InvalidArgument, format!("{policy} is not a midisock_sysex_policy"))
            })?;
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.sysex(policy.into()))) }
        })
    }

    /// Adds `peer` — an address (`"10.0.0.7"`, `"::1"`) or a CIDR range (`"192.168.1.0/24"`,
    /// `"fd00::/8"`) — to the peers allowed to connect. Once any entry is added, a peer that
    /// matches none is closed before a byte is read (counted in
    /// `midisock_server_statistics.connections_refused`). IPv4-mapped IPv6 peers are matched as
    /// IPv4. Default: an empty list, which allows everyone.
    ///
    /// Never blocks (no name resolution: host names are refused). Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_PEER_RANGE_SYNTAX` (nothing added), `MIDISOCK_RESULT_INVALID_UTF8`.
    ///
    /// # Safety
    /// `config` is a live configuration handle; `peer` is a NUL-terminated string.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_allow(
        config: *mut midisock_server_config,
        peer: *const c_char,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_allow", {
            // SAFETY: the caller guarantees `peer` is a NUL-terminated string.
            let peer = unsafe { try_str(peer, "peer")? };
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe {
                midisock_server_config::update(config, |c| {
                    // NOTE: the core reports a bad range as an address syntax error; C gets its
                    // own code, so a caller can tell a bad allowlist entry from a bad bind
                    // address.
                    c.allow(peer).map_err(|e| Failure::new(midisock_result::PeerRangeSyntax, e.to_string()))
                })
            }
        })
    }

    /// Sets whether the server forwards every message from a client to every other client (a
    /// hub), as well as to `midisock_server_receive*`. Default: off.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_relay(
        config: *mut midisock_server_config,
        on: bool,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_relay", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.relay(on))) }
        })
    }

    /// Sets the shared token clients must present (`midisock_connect_options_set_token`): 1 to
    /// 128 printable ASCII characters, copied. A connection whose first bytes are not the right
    /// hello within the auth timeout is closed (counted in
    /// `midisock_server_statistics.auth_failures`), and an address that fails 5 times within a
    /// minute is refused for the rest of that minute. The token travels in clear text unless TLS
    /// is set too: it keeps strangers out, not eavesdroppers. mido clients cannot send it.
    /// Default: none.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_TOKEN` (nothing changed), `MIDISOCK_RESULT_INVALID_UTF8`.
    ///
    /// # Safety
    /// `config` is a live configuration handle; `token` is a NUL-terminated string.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_token(
        config: *mut midisock_server_config,
        token: *const c_char,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_token", {
            // SAFETY: the caller guarantees `token` is a NUL-terminated string.
            let token = unsafe { try_str(token, "token")? };
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.token(token)?)) }
        })
    }

    /// Sets how long a new connection has, in milliseconds, to finish its TLS handshake and send
    /// its hello when TLS or a token is set. Default: 5000.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_auth_timeout_ms(
        config: *mut midisock_server_config,
        timeout_ms: u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_auth_timeout_ms", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.auth_timeout(Duration::from_millis(timeout_ms)))) }
        })
    }

    /// Sets TLS for every connection: `cert_chain_path` is a PEM file with the server's
    /// certificate chain (leaf first), `private_key_path` a PEM file with its private key. Both
    /// are read now; the paths are not kept. Clients then need TLS too
    /// (`midisock_connect_options_set_tls_ca_file`); mido clients cannot connect. Default: no
    /// TLS.
    ///
    /// Blocks while reading the two files. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_TLS` (a file is missing or unreadable, holds no certificate or
    /// key, or key and certificate do not go together; nothing changed),
    /// `MIDISOCK_RESULT_INVALID_UTF8`.
    ///
    /// # Safety
    /// `config` is a live configuration handle; both paths are NUL-terminated strings.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_tls_pem_files(
        config: *mut midisock_server_config,
        cert_chain_path: *const c_char,
        private_key_path: *const c_char,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_tls_pem_files", {
            // SAFETY: the caller guarantees `cert_chain_path` is a NUL-terminated string.
            let cert_chain_path = unsafe { try_str(cert_chain_path, "cert_chain_path")? };
            // SAFETY: the caller guarantees `private_key_path` is a NUL-terminated string.
            let private_key_path = unsafe { try_str(private_key_path, "private_key_path")? };
            // SAFETY: the caller guarantees `config` is a live handle; checked before the files
            // are read, so a NULL config is reported as such.
            unsafe { midisock_server_config::from_ptr(config.cast_const())? };
            let tls = TlsServer::from_pem_files(cert_chain_path, private_key_path)?;
            // SAFETY: as above.
            unsafe { midisock_server_config::update(config, |c| Ok(c.tls(tls))) }
        })
    }

    /// Sets how long, in milliseconds, a closing server may spend writing what it still has
    /// queued for clients before it closes their connections. Default: 1000.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_shutdown_flush_ms(
        config: *mut midisock_server_config,
        flush_ms: u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_shutdown_flush_ms", {
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe { midisock_server_config::update(config, |c| Ok(c.shutdown_flush(Duration::from_millis(flush_ms)))) }
        })
    }

    /// Plays each client's messages out through its own jitter buffer (see
    /// `midisock_jitter_mode`): `MIDISOCK_JITTER_MODE_FIXED` with `delay_us` from 0 to
    /// `MIDISOCK_JITTER_MAX_DELAY_US`, `MIDISOCK_JITTER_MODE_AUTO` or `MIDISOCK_JITTER_MODE_OFF`
    /// with `delay_us` 0. The server asks each client it admits for sender timestamps; midisock
    /// clients stamp what they send, mido clients ignore the request and their messages are
    /// delivered on arrival. Received messages then carry the played-out time as their
    /// timestamp, and the sender's time (`midisock_server_receive_message`);
    /// `midisock_server_playout_stats` reads the buffers. Default: off.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_ARGUMENT` (an unknown mode, a delay above the limit, or
    /// a delay other than 0 with OFF or AUTO; nothing changed).
    ///
    /// # Safety
    /// `config` is a live configuration handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_set_jitter_buffer(
        config: *mut midisock_server_config,
        mode: u32,
        delay_us: u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_server_config_set_jitter_buffer", {
            let playout = delay_mode(mode, delay_us)?.map(PlayoutConfig::new);
            // SAFETY: the caller guarantees `config` is a live handle.
            unsafe {
                midisock_server_config::update(config, |mut c| {
                    c.jitter_buffer = playout;
                    Ok(c)
                })
            }
        })
    }

    /// Frees the configuration. Servers bound with it keep their own copy and are not affected.
    /// `midisock_server_config_free(NULL)` does nothing. Returns `MIDISOCK_RESULT_OK`.
    ///
    /// Never blocks. Thread: any, once no other thread uses the configuration.
    ///
    /// # Safety
    /// `config` is NULL or a live configuration handle that no other thread is using; it is
    /// invalid after.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_server_config_free(config: *mut midisock_server_config) -> midisock_result {
        ffi_boundary!("midisock_server_config_free", {
            // SAFETY: the caller guarantees `config` is NULL or a live handle nobody else uses.
            drop(unsafe { from_handle(config) });
            Ok(())
        })
    }
}
