//! Sender timestamps and a playout (jitter) buffer: network jitter turned into a fixed delay.
//!
//! Plain MIDI over TCP carries no time: a message plays when it arrives, so a link whose delay
//! wanders by 5–30 ms (Wi-Fi) makes notes flam and grooves drag. Two midisock peers can agree —
//! in a hello every other peer ignores ([`hello`]) — that the sender stamps each message with its
//! own monotonic clock ([`wire`]); the receiver then plays each message out at its sender time
//! plus an estimated clock offset plus a chosen delay ([`PlayoutBuffer`]), so every message comes
//! out the same time after it was sent, whatever the network did in between.
//!
//! The pieces, in the order a message meets them:
//! - [`STAMP_REQUEST`] / [`STAMP_ANSWER`]: the negotiation, opt-in by the receiving side.
//! - [`StampEncoder`]: writes `F5 <stamp> <message>` on the sending side; allocates nothing.
//! - [`StampDecoder`]: reads a stream that is plain until the peer's answer and stamped after,
//!   with the core's [`crate::Parser`] for the MIDI inside; recovers from garbage and counts it.
//! - [`PlayoutBuffer`]: `push` on arrival, `next_deadline` for a poll timeout, `pop_due` when
//!   woken; fixed or adaptive delay; bounded (its queue grows with what it holds, up to a
//!   fixed capacity).
//!
//! Ports and servers use them through two crate-private wrappers, so no layer re-implements the
//! glue: `TimedInput` (decoder + optional playout buffer + "the peer asked" latch, delivering
//! [`crate::Received`]) and `TimedOutput` (plain → answer due → stamping).
//!
//! The wire forms and the playout algorithm are described in `docs/timing.md`.

pub mod hello;
mod histogram;
mod input;
mod late_notes;
mod mode_text;
mod output;
mod playout;
mod window;
pub mod wire;

pub use hello::{Hello, STAMP_ANSWER, STAMP_REQUEST, STAMP_VERSION};
pub(crate) use input::TimedInput;
pub use mode_text::{ParseDelayModeError, MAX_FIXED_DELAY_MS};
#[allow(unused_imports)] // NOTE: MAX_TIMED_SHORT_LEN is for the server.
pub(crate) use output::{TimedOutput, MAX_TIMED_SHORT_LEN};
pub use playout::{DelayMode, Played, PlayoutBuffer, PlayoutConfig, PlayoutStats};
pub use wire::{
    Decoded, DecoderStats, StampDecoder, StampEncoder, FULL_STAMP_EVERY_US, MAX_STAMPED_SHORT_LEN, MAX_STAMP_LEN,
};
