//! A lock-free single-producer single-consumer channel of small `Copy` events with a byte lane for
//! sysex payloads: two pre-allocated rtrb rings, one of events and one of bytes.
//!
//! An event says how many payload bytes belong to it ([`Payload::sysex_len`]); the sender writes
//! those bytes to the byte ring *before* it pushes the event, so a receiver that has popped an
//! event always finds its bytes at the head of the byte ring. Pushing either writes both or
//! nothing; popping always consumes an event's bytes (a [`Popped`] that is not read skips them
//! when dropped). Nothing here allocates, locks or makes a system call after [`channel`].

/// An event that may own a number of bytes in the byte lane.
pub trait Payload: Copy {
    /// How many bytes of the byte lane belong to this event (0 for most).
    fn sysex_len(&self) -> usize;
}

/// The sending end.
#[derive(Debug)]
pub struct Sender<T> {
    events: rtrb::Producer<T>,
    bytes: rtrb::Producer<u8>,
}

/// The receiving end.
#[derive(Debug)]
pub struct Receiver<T> {
    events: rtrb::Consumer<T>,
    bytes: rtrb::Consumer<u8>,
}

/// A channel holding up to `events` events and `bytes` payload bytes (allocates: call it off the
/// audio thread).
pub fn channel<T>(events: usize, bytes: usize) -> (Sender<T>, Receiver<T>) {
    let (event_tx, event_rx) = rtrb::RingBuffer::new(events);
    let (byte_tx, byte_rx) = rtrb::RingBuffer::new(bytes);
    (Sender { events: event_tx, bytes: byte_tx }, Receiver { events: event_rx, bytes: byte_rx })
}

impl<T: Payload> Sender<T> {
    /// Pushes `event` with its payload bytes `sysex` (`sysex.len()` must be `event.sysex_len()`).
    /// Gives the event back if either ring lacks room (nothing is written then) or the lengths
    /// disagree.
    pub fn push(&mut self, event: T, sysex: &[u8]) -> Result<(), T> {
        if sysex.len() != event.sysex_len() {
            return Err(event);
        }
        if !sysex.is_empty() {
            if self.events.is_full() || self.bytes.slots() < sysex.len() {
                return Err(event);
            }
            // Cannot fail: we are the only writer, so the room checked above can only grow.
            if self.bytes.push_entire_slice(sysex).is_err() {
                return Err(event);
            }
        }
        self.events.push(event).map_err(|rtrb::PushError::Full(event)| event)
    }
}

impl<T: Payload> Receiver<T> {
    /// The next event, if any, without taking it.
    pub fn peek(&self) -> Option<&T> {
        self.events.peek().ok()
    }

    /// Takes the next event; its payload bytes stay in the lane until the [`Popped`] reads them or
    /// is dropped.
    pub fn pop(&mut self) -> Option<Popped<'_, T>> {
        let event = self.events.pop().ok()?;
        Some(Popped { event, pending: event.sysex_len(), bytes: &mut self.bytes })
    }

    /// Takes the next event and copies its payload bytes to the front of `buffer`: the event and
    /// those bytes (empty if it has none or they do not fit in `buffer`).
    pub fn pop_into<'b>(&mut self, buffer: &'b mut [u8]) -> Option<(T, &'b [u8])> {
        let popped = self.pop()?;
        let event = popped.event;
        let len = event.sysex_len();
        if len == 0 || len > buffer.len() {
            return Some((event, &[]));
        }
        let payload = &mut buffer[..len];
        let read = popped.read_sysex(payload);
        Some((event, if read { payload } else { &[] }))
    }
}

/// An event taken from a [`Receiver`], with its payload bytes still in the byte lane.
#[derive(Debug)]
pub struct Popped<'a, T: Payload> {
    pub event: T,
    /// Payload bytes not yet taken from the lane.
    pending: usize,
    bytes: &'a mut rtrb::Consumer<u8>,
}

impl<T: Payload> Popped<'_, T> {
    /// Copies the event's payload into `out`, which must be exactly `event.sysex_len()` long;
    /// `false` (and the bytes are skipped) if it is not or the lane is short.
    pub fn read_sysex(mut self, out: &mut [u8]) -> bool {
        if out.len() != self.pending {
            return false;
        }
        let ok = self.bytes.pop_entire_slice(out).is_ok();
        if ok {
            self.pending = 0;
        }
        ok
    }
}

impl<T: Payload> Drop for Popped<'_, T> {
    fn drop(&mut self) {
        if self.pending > 0 {
            // A short lane means the rings disagree (a bug): skip what there is.
            let n = self.pending.min(self.bytes.slots());
            if let Ok(chunk) = self.bytes.read_chunk(n) {
                chunk.commit_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct E(usize);
    impl Payload for E {
        fn sysex_len(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn payloads_follow_their_events_across_the_wrap_and_unread_ones_are_skipped() {
        let (mut tx, mut rx) = channel::<E>(4, 10);
        let mut buf = [0u8; 16];
        for round in 0..5u8 {
            tx.push(E(0), &[]).unwrap();
            tx.push(E(3), &[round, 1, 2]).unwrap();
            tx.push(E(4), &[9, 9, 9, 9]).unwrap();
            tx.push(E(2), &[round, 7]).unwrap();
            assert_eq!(rx.pop_into(&mut buf), Some((E(0), &[][..])));
            assert_eq!(rx.pop_into(&mut buf), Some((E(3), &[round, 1, 2][..])));
            assert_eq!(rx.pop().unwrap().event, E(4)); // dropped unread: skipped
            let popped = rx.pop().unwrap();
            let mut two = [0u8; 2];
            assert!(popped.read_sysex(&mut two));
            assert_eq!(two, [round, 7]);
            assert!(rx.pop().is_none());
        }
    }

    #[test]
    fn a_push_without_room_writes_nothing() {
        let (mut tx, mut rx) = channel::<E>(4, 5);
        tx.push(E(4), &[1, 2, 3, 4]).unwrap();
        assert_eq!(tx.push(E(2), &[5, 6]), Err(E(2)));
        assert_eq!(tx.push(E(2), &[5]), Err(E(2)), "length mismatch");
        tx.push(E(1), &[5]).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.pop_into(&mut buf), Some((E(4), &[1, 2, 3, 4][..])));
        assert_eq!(rx.pop_into(&mut buf), Some((E(1), &[5][..])));
        assert!(rx.pop().is_none());
    }
}
