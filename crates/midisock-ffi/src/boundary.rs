//! What every exported function stands on: the panic boundary, the failure type, and the only
//! places where a C pointer becomes a Rust reference.
//!
//! NOTE: all pointer casts live here, in small typed helpers, so an exported function never
//! converts a pointer ad hoc: it asks for "a `&midisock_port` from this argument" or "the bytes
//! of this buffer" and gets either the reference or a `MIDISOCK_RESULT_NULL_ARGUMENT` failure.

use crate::errors::{set_last_error, Failure};
use crate::result::midisock_result;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The body of an exported function returns `Ok(())` or a [`Failure`].
pub(crate) type Outcome = Result<(), Failure>;

/// What an exported function's body may return, and what the function returns instead when the
/// body panics. One impl per C return type (the "per-return-type value on panic").
pub(crate) trait BoundaryOutput {
    type Ffi;
    /// Converts the body's value, recording a failure's detail for the calling thread.
    fn into_ffi(self, function: &str, record: bool) -> Self::Ffi;
    /// What the function returns after a panic.
    fn on_panic() -> Self::Ffi;
}

impl BoundaryOutput for Outcome {
    type Ffi = midisock_result;

    fn into_ffi(self, function: &str, record: bool) -> midisock_result {
        match self {
            Ok(()) => midisock_result::Ok,
            Err(failure) => {
                // NOTE: "nothing waiting" is the normal answer of a poll, not a failure worth a
                // detail: recording it would allocate on every empty poll and overwrite the last
                // real error.
                if record && failure.code != midisock_result::WouldBlock {
                    set_last_error(format!("{function}: {}", failure.detail));
                }
                failure.code
            }
        }
    }

    fn on_panic() -> midisock_result {
        midisock_result::Panic
    }
}

/// Functions returning a static C string (`midisock_result_str`, `midisock_version`).
impl BoundaryOutput for &'static CStr {
    type Ffi = *const c_char;

    fn into_ffi(self, _function: &str, _record: bool) -> *const c_char {
        self.as_ptr()
    }

    fn on_panic() -> *const c_char {
        c"internal panic".as_ptr()
    }
}

/// Runs an exported function's body; a panic becomes the return type's panic value (and a
/// detail for `midisock_last_error_message`), never an unwind across the C boundary.
///
/// `record`: whether a failure overwrites the calling thread's last error (false only for the
/// function that reads it).
pub(crate) fn guard<T: BoundaryOutput>(function: &'static str, record: bool, body: impl FnOnce() -> T) -> T::Ffi {
    // NOTE: AssertUnwindSafe is sound here: after a panic the handles stay usable, because every
    // lock the core and this crate take recovers from poisoning and no invariant spans a call.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value.into_ffi(function, record),
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_owned());
            set_last_error(format!("{function}: internal panic: {reason}"));
            T::on_panic()
        }
    }
}

/// Wraps the body of every exported function: `ffi_boundary!("midisock_x_y", { ... Ok(()) })`.
/// `ffi_boundary!(quiet "name", { ... })` does not record failures as the last error.
macro_rules! ffi_boundary {
    ($function:literal, $body:block) => {
        $crate::boundary::guard($function, true, move || $body)
    };
    (quiet $function:literal, $body:block) => {
        $crate::boundary::guard($function, false, move || $body)
    };
}
pub(crate) use ffi_boundary;

/// A shared reference to the object behind a handle.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that stays valid, and is not mutated except through
/// interior mutability, for `'a`.
pub(crate) unsafe fn try_ref<'a, T>(ptr: *const T, argument: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller guarantees `ptr` is NULL or valid for `'a`; `as_ref` checks NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(argument))
}

/// An output slot the function writes only on success.
pub(crate) struct Out<'a, T>(&'a mut T);

impl<T> Out<'_, T> {
    pub fn write(self, value: T) {
        *self.0 = value;
    }
}

/// The output slot behind an out-pointer.
///
/// # Safety
/// `ptr` is NULL or valid for writes of a `T` (properly aligned) for `'a`, and nothing else
/// accesses it meanwhile.
pub(crate) unsafe fn try_out<'a, T: Copy>(ptr: *mut T, argument: &str) -> Result<Out<'a, T>, Failure> {
    // SAFETY: the caller guarantees `ptr` is NULL or valid for writes for `'a`. `T: Copy` types
    // here (integers, bools, pointers) are valid whatever bytes the slot held before.
    unsafe { ptr.as_mut() }.map(Out).ok_or_else(|| Failure::null(argument))
}

/// An output array of `capacity` elements (`T *items, size_t capacity`), written whole or not
/// at all. NULL is accepted with a capacity of 0 only: the usual way to ask how many there are.
pub(crate) struct OutArray<'a, T> {
    ptr: *mut T,
    capacity: usize,
    _slots: std::marker::PhantomData<&'a mut [T]>,
}

impl<T: Copy> OutArray<'_, T> {
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes `items`, which the caller checked fit.
    pub fn write(self, items: &[T]) {
        assert!(items.len() <= self.capacity, "the caller checks the capacity");
        for (i, item) in items.iter().enumerate() {
            // SAFETY: `i < capacity`, and the creator of this value guarantees `capacity`
            // writable elements. `write` does not read the (possibly uninitialised) old value.
            unsafe { self.ptr.add(i).write(*item) };
        }
    }
}

/// The output array behind `items` and `capacity`.
///
/// # Safety
/// `ptr` is NULL or valid for writes of `capacity` properly aligned `T`s for `'a`, and nothing
/// else accesses them meanwhile.
pub(crate) unsafe fn try_out_array<'a, T>(
    ptr: *mut T,
    capacity: usize,
    argument: &str,
) -> Result<OutArray<'a, T>, Failure> {
    if ptr.is_null() && capacity > 0 {
        return Err(Failure::null(argument));
    }
    Ok(OutArray { ptr, capacity, _slots: std::marker::PhantomData })
}

/// The bytes of an input buffer. NULL is refused even with `len` 0: a NULL buffer is almost
/// always a bug in the caller.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn try_bytes<'a>(ptr: *const u8, len: usize, argument: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes for `'a`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An output buffer.
///
/// # Safety
/// `ptr` is NULL or valid for writes of `len` bytes for `'a`, and nothing else accesses it
/// meanwhile.
pub(crate) unsafe fn try_bytes_mut<'a>(ptr: *mut u8, len: usize, argument: &str) -> Result<&'a mut [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` writable bytes for `'a`. Every byte
    // value is a valid u8, so uninitialised C memory is fine to expose as a slice we only write.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// An output text buffer (`char *buf, size_t len`), seen as bytes.
///
/// # Safety
/// As [`try_bytes_mut`].
pub(crate) unsafe fn try_text_buf<'a>(ptr: *mut c_char, len: usize, argument: &str) -> Result<&'a mut [u8], Failure> {
    // SAFETY: forwarded; `c_char` and `u8` have the same size and alignment.
    unsafe { try_bytes_mut(ptr.cast::<u8>(), len, argument) }
}

/// A NUL-terminated UTF-8 input string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for reads for `'a`.
pub(crate) unsafe fn try_str<'a>(ptr: *const c_char, argument: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(argument));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string valid for `'a`.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map_err(|e| Failure::new(midisock_result::InvalidUtf8, format!("argument `{argument}` is not UTF-8: {e}")))
}

/// Copies `text` and a terminating NUL into `buf`; `Err(needed)` (text length + 1) if it does
/// not fit, leaving `buf` untouched. Returns the text length.
pub(crate) fn copy_text(text: &str, buf: &mut [u8]) -> Result<usize, usize> {
    let needed = text.len() + 1;
    let Some(dest) = buf.get_mut(..needed) else {
        return Err(needed);
    };
    dest[..text.len()].copy_from_slice(text.as_bytes());
    dest[text.len()] = 0;
    Ok(text.len())
}

/// Moves a Rust object to the heap and hands out the owning handle.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back ownership of a handle made by [`into_handle`]; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] for this `T` and has not been freed; no other
/// thread uses it any more.
pub(crate) unsafe fn from_handle<T>(ptr: *mut T) -> Option<Box<T>> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees `ptr` is an unfreed `Box<T>` pointer nobody else uses.
        Some(unsafe { Box::from_raw(ptr) })
    }
}
