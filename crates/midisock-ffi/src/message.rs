//! Messages across the boundary: raw MIDI bytes in, raw MIDI bytes (plus a timestamp) out, and
//! conversion to and from mido's text format.
//!
//! Nothing here decodes MIDI itself: the core's `decode_messages` and `Message::from_bytes` decide
//! what the bytes are, and this module maps their `DecodeError` to `MIDISOCK_RESULT_INVALID_BYTES`
//! with the core's words as the last error.

use crate::boundary::{
    copy_text, ffi_boundary, try_bytes, try_bytes_mut, try_out, try_str, try_text_buf, Out, Outcome,
};
use crate::errors::Failure;
use crate::result::midisock_result;
use midisock_core::{decode_messages, DecodeError, Message};
use std::ffi::c_char;

/// The messages a send call was given: nearly always one, which needs no allocation.
pub(crate) enum Outgoing {
    One(Message),
    Many(Vec<Message>),
}

/// The bytes given to a send call, which must be whole messages and nothing else: the core's
/// [`decode_messages`] decides, this only collects what it found and maps its error.
pub(crate) fn decode_outgoing(bytes: &[u8]) -> Result<Outgoing, Failure> {
    let mut first = None;
    let mut rest = Vec::new();
    decode_messages(bytes, |message| match first {
        None => first = Some(message),
        Some(_) => rest.push(message),
    })
    .map_err(invalid_bytes)?;
    let Some(first) = first else { return Err(invalid_bytes(DecodeError::NoMessage)) };
    if rest.is_empty() {
        Ok(Outgoing::One(first))
    } else {
        rest.insert(0, first);
        Ok(Outgoing::Many(rest))
    }
}

fn invalid_bytes(error: DecodeError) -> Failure {
    Failure::new(midisock_result::InvalidBytes, error.as_str())
}

/// Parses exactly one message (for `midisock_message_to_text`).
fn decode_one(bytes: &[u8]) -> Result<Message, Failure> {
    Message::from_bytes(bytes).map_err(invalid_bytes)
}

/// Parses one line of mido text (`"note_on channel=0 note=60 velocity=64 time=0"`; omitted
/// fields take mido's defaults) and writes the message's MIDI bytes into `buf[0..len]`;
/// `*len_out` is the number of bytes written.
///
/// Results: `MIDISOCK_RESULT_MESSAGE_TEXT` for text mido would not accept (or a value out of
/// range); `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the size needed in `*len_out` (3 bytes fit any
/// message but sysex); `MIDISOCK_RESULT_INVALID_UTF8`.
///
/// Thread: any. Never blocks. Allocates only while parsing.
///
/// # Safety
/// `text` is a NUL-terminated string; `buf` is valid for writes of `len` bytes; `len_out` is
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_message_from_text(
    text: *const c_char,
    buf: *mut u8,
    len: usize,
    len_out: *mut usize,
) -> midisock_result {
    ffi_boundary!("midisock_message_from_text", {
        // SAFETY: the caller guarantees `text` is a NUL-terminated string.
        let text = unsafe { try_str(text, "text")? };
        // SAFETY: the caller guarantees `buf` is valid for `len` bytes.
        let buf = unsafe { try_bytes_mut(buf, len, "buf")? };
        // SAFETY: the caller guarantees `len_out` is valid for a write.
        let len_out = unsafe { try_out(len_out, "len_out")? };
        let message: Message = text.parse().map_err(|e| Failure::from(midisock_core::Error::MessageText(e)))?;
        match message.encode(buf) {
            Ok(written) => {
                len_out.write(written);
                Ok(())
            }
            Err(too_small) => {
                len_out.write(too_small.needed);
                Err(Failure::new(midisock_result::BufferTooSmall, too_small.to_string()))
            }
        }
    })
}

/// Renders the message in `bytes[0..len]` (exactly one whole message) as mido's `str(msg)` text,
/// e.g. `"note_on channel=0 note=60 velocity=64 time=0"`, NUL-terminated, into `buf[0..buf_len]`;
/// `*text_len_out` is the text length without the NUL.
///
/// Results: `MIDISOCK_RESULT_INVALID_BYTES` if `bytes` is not exactly one message;
/// `MIDISOCK_RESULT_BUFFER_TOO_SMALL` with the buffer size needed (including the NUL) in
/// `*text_len_out`. 64 bytes fit any message but sysex.
///
/// Thread: any. Never blocks.
///
/// # Safety
/// `bytes` is valid for reads of `len` bytes; `buf` for writes of `buf_len` bytes;
/// `text_len_out` for a write.
#[no_mangle]
pub unsafe extern "C" fn midisock_message_to_text(
    bytes: *const u8,
    len: usize,
    buf: *mut c_char,
    buf_len: usize,
    text_len_out: *mut usize,
) -> midisock_result {
    ffi_boundary!("midisock_message_to_text", {
        // SAFETY: the caller guarantees `bytes` is valid for `len` bytes.
        let bytes = unsafe { try_bytes(bytes, len, "bytes")? };
        // SAFETY: the caller guarantees `buf` is valid for `buf_len` bytes.
        let buf = unsafe { try_text_buf(buf, buf_len, "buf")? };
        // SAFETY: the caller guarantees `text_len_out` is valid for a write.
        let text_len_out = unsafe { try_out(text_len_out, "text_len_out")? };
        let text = decode_one(bytes)?.to_string();
        write_text(&text, buf, text_len_out)
    })
}

/// Writes `text` NUL-terminated into `buf`, or `BUFFER_TOO_SMALL` with the size needed.
pub(crate) fn write_text(text: &str, buf: &mut [u8], len_out: Out<'_, usize>) -> Outcome {
    match copy_text(text, buf) {
        Ok(len) => {
            len_out.write(len);
            Ok(())
        }
        Err(needed) => {
            let have = buf.len();
            len_out.write(needed);
            Err(Failure::new(
                midisock_result::BufferTooSmall,
                format!("the text needs {needed} bytes with its NUL, the buffer has {have}"),
            ))
        }
    }
}
