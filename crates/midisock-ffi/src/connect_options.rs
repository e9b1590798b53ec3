//! `midisock_connect_options`: how `midisock_port_connect_with` connects (timeout, token, TLS).

use crate::boundary::{ffi_boundary, from_handle, into_handle, try_out, try_ref, try_str};
use crate::errors::Failure;
use crate::jitter::delay_mode;
use crate::result::midisock_result;
use midisock_core::timing::PlayoutConfig;
use midisock_core::{ConnectOptions, Reconnect, TlsClient};
use parking_lot::Mutex;
use std::ffi::c_char;
use std::time::Duration;

/// Options for `midisock_port_connect_with`: a connect timeout, an authentication token, TLS.
/// Opaque; made by `midisock_connect_options_new` with every default, changed by the
/// `midisock_connect_options_set_*` setters, freed by `midisock_connect_options_free`.
///
/// One set of options may serve any number of connects, and may be changed or freed once a
/// connect returned: ports keep nothing of it.
///
/// Thread safety: every function except `midisock_connect_options_free` may be called on one
/// set of options from several threads at once (each call takes a lock; the last setter wins).
#[derive(Debug)]
pub struct midisock_connect_options {
    settings: Mutex<Settings>,
}

/// The options, and the TLS server name kept apart so the setters can come in any order.
#[derive(Clone, Debug, Default)]
struct Settings {
    options: ConnectOptions,
    tls_server_name: Option<String>,
}

impl midisock_connect_options {
    /// The options behind a handle.
    ///
    /// # Safety
    /// `options` is NULL or a live handle from this library, not freed during the call.
    pub(crate) unsafe fn from_ptr<'a>(
        options: *const midisock_connect_options,
    ) -> Result<&'a midisock_connect_options, Failure> {
        // SAFETY: forwarded from the caller.
        unsafe { try_ref(options, "options") }
    }

    /// The core's options for one connect.
    pub(crate) fn to_core(&self) -> Result<ConnectOptions, Failure> {
        let settings = self.settings.lock().clone();
        let mut options = settings.options;
        if let Some(name) = settings.tls_server_name {
            let tls = options.tls.take().ok_or_else(|| {
                Failure::new(
                    midisock_result::Tls,
                    "a TLS server name is set but no CA file: call midisock_connect_options_set_tls_ca_file",
                )
            })?;
            options.tls = Some(tls.server_name(name));
        }
        Ok(options)
    }

    /// Applies `change` to the settings behind a handle.
    ///
    /// # Safety
    /// As [`midisock_connect_options::from_ptr`].
    unsafe fn update(
        options: *mut midisock_connect_options,
        change: impl FnOnce(&mut Settings),
    ) -> Result<(), Failure> {
        // SAFETY: forwarded from the caller.
        let options = unsafe { midisock_connect_options::from_ptr(options.cast_const())? };
        change(&mut options.settings.lock());
        Ok(())
    }

    /// Writes new options with every default to `*options_out`; the caller owns them and frees
    /// them with `midisock_connect_options_free`.
    ///
    /// Defaults: the system's connect timeout (minutes), no token, no TLS (plain TCP, what mido
    /// speaks) — with these, `midisock_port_connect_with` is `midisock_port_connect`.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `options_out` is valid for a write.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_new(
        options_out: *mut *mut midisock_connect_options,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_new", {
            // SAFETY: the caller guarantees `options_out` is valid for a write.
            let options_out = unsafe { try_out(options_out, "options_out")? };
            options_out.write(into_handle(midisock_connect_options { settings: Mutex::new(Settings::default()) }));
            Ok(())
        })
    }

    /// Sets the longest wait, in milliseconds, for each address the host resolves to (as
    /// `midisock_port_connect_timeout`). Default: the system's.
    ///
    /// Never blocks. Thread: any.
    ///
    /// # Safety
    /// `options` is a live options handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_set_timeout_ms(
        options: *mut midisock_connect_options,
        timeout_ms: u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_set_timeout_ms", {
            // SAFETY: the caller guarantees `options` is a live handle.
            unsafe {
                midisock_connect_options::update(options, |s| {
                    s.options.timeout = Some(Duration::from_millis(timeout_ms));
                })
            }
        })
    }

    /// Makes `midisock_port_connect_with` return a port that reconnects by itself when its
    /// connection drops: after `initial_delay_ms`, then doubling up to `max_delay_ms` between
    /// attempts (each wait shortened by up to 20 % at random, so many clients of one restarted
    /// server do not return in step). `max_attempts` consecutive failures make it give up and
    /// close (`MIDISOCK_RESULT_GAVE_UP`); 0 means never give up. A refused connection (the
    /// server's notice) and one that drops within a second count as failures too, so a server
    /// that refuses is never hammered. Default: no reconnecting.
    ///
    /// Such a port, while its connection is down, fails sends at once with
    /// `MIDISOCK_RESULT_DISCONNECTED` (nothing is queued: a late note is worse than a lost one),
    /// and its receives wait for the next connection. On every drop its receives first return a
    /// note-off (velocity 0) for each note it had received and not yet seen released.
    /// `midisock_port_link_status` and `midisock_port_link_text` tell where it stands. It takes
    /// no receive callback. The first connection must succeed: `midisock_port_connect_with`
    /// fails as without this option when the server is not there.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_ARGUMENT` when `initial_delay_ms` is 0 or
    /// `max_delay_ms` is smaller than it (nothing changed).
    ///
    /// # Safety
    /// `options` is a live options handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_set_reconnect(
        options: *mut midisock_connect_options,
        initial_delay_ms: u64,
        max_delay_ms: u64,
        max_attempts: u32,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_set_reconnect", {
            if initial_delay_ms == 0 || max_delay_ms < initial_delay_ms {
                return Err(Failure::new(
                    midisock_result::InvalidArgument,
                    format!(
                        "reconnect delays must satisfy 0 < initial_delay_ms <= max_delay_ms, got {initial_delay_ms} \
                         and {max_delay_ms}"
                    ),
                ));
            }
            let policy = Reconnect {
                initial_delay: Duration::from_millis(initial_delay_ms),
                max_delay: Duration::from_millis(max_delay_ms),
                max_attempts: (max_attempts > 0).then_some(max_attempts),
                ..Reconnect::default()
            };
            // SAFETY: the caller guarantees `options` is a live handle.
            unsafe { midisock_connect_options::update(options, |s| s.options.reconnect = Some(policy)) }
        })
    }

    /// Sets the token to present to a server that requires one
    /// (`midisock_server_config_set_token`): 1 to 128 printable ASCII characters, copied. It is
    /// sent as a hello that servers without authentication, mido's included, ignore. Default:
    /// none.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_TOKEN` (nothing changed), `MIDISOCK_RESULT_INVALID_UTF8`.
    ///
    /// # Safety
    /// `options` is a live options handle; `token` is a NUL-terminated string.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_set_token(
        options: *mut midisock_connect_options,
        token: *const c_char,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_set_token", {
            // SAFETY: the caller guarantees `token` is a NUL-terminated string.
            let token = unsafe { try_str(token, "token")? };
            // NOTE: checked here although the core checks again when connecting: a bad token is
            // a mistake in the caller's setup, best reported where it is made.
            midisock_core::validate_token(token)?;
            // SAFETY: the caller guarantees `options` is a live handle.
            unsafe { midisock_connect_options::update(options, |s| s.options.token = Some(token.to_owned())) }
        })
    }

    /// Connects with TLS, trusting the certificates in the PEM file at `ca_path`: a CA, or the
    /// server's self-signed certificate. The file is read now; the path is not kept. The
    /// server's certificate must name the host connected to (or the name set by
    /// `midisock_connect_options_set_tls_server_name`). Default: no TLS.
    ///
    /// Blocks while reading the file. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_TLS` (missing, unreadable, or no certificate in it; nothing
    /// changed), `MIDISOCK_RESULT_INVALID_UTF8`.
    ///
    /// # Safety
    /// `options` is a live options handle; `ca_path` is a NUL-terminated string.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_set_tls_ca_file(
        options: *mut midisock_connect_options,
        ca_path: *const c_char,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_set_tls_ca_file", {
            // SAFETY: the caller guarantees `ca_path` is a NUL-terminated string.
            let ca_path = unsafe { try_str(ca_path, "ca_path")? };
            // SAFETY: the caller guarantees `options` is a live handle; checked before the file
            // is read, so a NULL handle is reported as such.
            unsafe { midisock_connect_options::from_ptr(options.cast_const())? };
            let tls = TlsClient::with_ca_file(ca_path)?;
            // SAFETY: as above.
            unsafe { midisock_connect_options::update(options, |s| s.options.tls = Some(tls)) }
        })
    }

    /// Checks the server's TLS certificate against `name` (copied) instead of the host in the
    /// address, e.g. `"localhost"` when connecting to `"127.0.0.1:port"`. Needs a CA file
    /// (`midisock_connect_options_set_tls_ca_file`, before or after this call); without one,
    /// `midisock_port_connect_with` fails with `MIDISOCK_RESULT_TLS`. Default: the host.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_UTF8`.
    ///
    /// # Safety
    /// `options` is a live options handle; `name` is a NUL-terminated string.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_set_tls_server_name(
        options: *mut midisock_connect_options,
        name: *const c_char,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_set_tls_server_name", {
            // SAFETY: the caller guarantees `name` is a NUL-terminated string.
            let name = unsafe { try_str(name, "name")? };
            // SAFETY: the caller guarantees `options` is a live handle.
            unsafe { midisock_connect_options::update(options, |s| s.tls_server_name = Some(name.to_owned())) }
        })
    }

    /// Plays received messages out through a jitter buffer (see `midisock_jitter_mode`):
    /// `MIDISOCK_JITTER_MODE_FIXED` with `delay_us` from 0 to `MIDISOCK_JITTER_MAX_DELAY_US`,
    /// `MIDISOCK_JITTER_MODE_AUTO` or `MIDISOCK_JITTER_MODE_OFF` with `delay_us` 0. The port
    /// asks its peer for sender timestamps when it connects; a midisock peer stamps what it
    /// sends from then on, a mido peer ignores the request and its messages are delivered on
    /// arrival. Received messages then carry the played-out time as their timestamp, and the
    /// sender's time (`midisock_port_receive_message`); `midisock_port_playout_stats` reads the
    /// buffer. Default: off.
    ///
    /// Never blocks. Thread: any.
    ///
    /// Results: `MIDISOCK_RESULT_INVALID_ARGUMENT` (an unknown mode, a delay above the limit, or
    /// a delay other than 0 with OFF or AUTO; nothing changed).
    ///
    /// # Safety
    /// `options` is a live options handle.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_set_jitter_buffer(
        options: *mut midisock_connect_options,
        mode: u32,
        delay_us: u64,
    ) -> midisock_result {
        ffi_boundary!("midisock_connect_options_set_jitter_buffer", {
            let playout = delay_mode(mode, delay_us)?.map(PlayoutConfig::new);
            // SAFETY: the caller guarantees `options` is a live handle.
            unsafe { midisock_connect_options::update(options, |s| s.options.jitter_buffer = playout) }
        })
    }

    /// Frees the options. Ports connected with them are not affected.
    /// `midisock_connect_options_free(NULL)` does nothing. Returns `MIDISOCK_RESULT_OK`.
    ///
    /// Never blocks. Thread: any, once no other thread uses the options.
    ///
    /// # Safety
    /// `options` is NULL or a live options handle that no other thread is using; it is invalid
    /// after.
    #[no_mangle]
    pub unsafe extern "C" fn midisock_connect_options_free(options: *mut midisock_connect_options) -> midisock_result {
        ffi_boundary!("midisock_connect_options_free", {
            // SAFETY: the caller guarantees `options` is NULL or a live handle nobody else uses.
            drop(unsafe { from_handle(options) });
            Ok(())
        })
    }
}
