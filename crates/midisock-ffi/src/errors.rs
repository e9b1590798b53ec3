//! Failures: what an exported function reports when it does not succeed, how a core error
//! becomes a result code, and the per-thread last error (`midisock_last_error_message`).

use crate::boundary::{copy_text, ffi_boundary, try_out, try_text_buf, Out, Outcome};
use crate::result::midisock_result;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_char;

/// Why an exported function did not succeed: the code it returns and the detail the calling
/// thread can read back with `midisock_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: midisock_result,
    /// Borrowed when fixed, so the expected non-failures (`MIDISOCK_RESULT_WOULD_BLOCK` from an
    /// empty poll) allocate nothing.
    pub detail: Cow<'static, str>,
}

impl Failure {
    pub fn new(code: midisock_result, detail: impl Into<Cow<'static, str>>) -> Failure {
        Failure { code, detail: detail.into() }
    }

    pub(crate) fn null(argument: &str) -> Failure {
        Failure::new(midisock_result::NullArgument, format!("argument `{argument}` is NULL"))
    }
}

impl From<midisock_core::Error> for Failure {
    fn from(error: midisock_core::Error) -> Failure {
        use midisock_core::Error as E;
        let code = match &error {
            E::AddressSyntax { .. } => midisock_result::AddressSyntax,
            E::Resolve { .. } => midisock_result::Resolve,
            E::Connect { .. } => midisock_result::Connect,
            E::Bind { .. } => midisock_result::Bind,
            E::Closed => midisock_result::Closed,
            E::Refused { .. } => midisock_result::Refused,
            E::Disconnected { .. } => midisock_result::Disconnected,
            E::GaveUp { .. } => midisock_result::GaveUp,
            E::InvalidMessage(_) => midisock_result::InvalidMessage,
            E::MessageText(_) => midisock_result::MessageText,
            E::CallbackInstalled => midisock_result::CallbackInstalled,
            E::Tls(_) => midisock_result::Tls,
            E::InvalidToken => midisock_result::InvalidToken,
            // Io, and whatever the core adds later (its Error is non_exhaustive).
            _ => midisock_result::Io,
        };
        Failure::new(code, error.to_string())
    }
}

thread_local! {
    /// The detail of the last failure on this thread.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(detail: String) {
    // `try_with`: during thread teardown the slot may be gone; losing the detail then is fine.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = detail);
}

/// Copies the calling thread's last error detail, e.g. `"midisock_port_connect: cannot connect
/// to 127.0.0.1:9: Connection refused (os error 111)"`, as a NUL-terminated string into
/// `buf[0..len]`; `*len_out` is its length without the NUL. Empty when no call on this thread has
/// failed yet.
///
/// Every call that returns something other than `MIDISOCK_RESULT_OK` replaces the detail;
/// successful calls leave it alone (like `errno`). This function never changes it, so it can be
/// retried with a bigger buffer after `MIDISOCK_RESULT_BUFFER_TOO_SMALL`.
///
/// Thread: any; each thread has its own last error. Never blocks.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes; `len_out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_last_error_message(
    buf: *mut c_char,
    len: usize,
    len_out: *mut usize,
) -> midisock_result {
    ffi_boundary!(quiet "midisock_last_error_message", {
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
        let buf = unsafe { try_text_buf(buf, len, "buf")? };
        // SAFETY: the caller guarantees `len_out` is valid for a write.
        let len_out = unsafe { try_out(len_out, "len_out")? };
        copy_last_error(buf, len_out)
    })
}

fn copy_last_error(buf: &mut [u8], len_out: Out<'_, usize>) -> Outcome {
    let copied = LAST_ERROR.with(|slot| copy_text(&slot.borrow(), buf));
    match copied {
        Ok(len) => {
            len_out.write(len);
            Ok(())
        }
        Err(needed) => {
            len_out.write(needed);
            Err(Failure::new(midisock_result::BufferTooSmall, "last error message does not fit"))
        }
    }
}
