//! What happens to the notes of late messages, per channel and key.
//!
//! - A note-on later than the stale limit is dropped, and so is the note-off that ends it: a note
//!   that comes seconds late (after a stall) would only be a burst of noise.
//! - A note-on delivered late but within the limit keeps its length: its note-off is held until
//!   the note has sounded as long as the sender played it, rather than following at once (the
//!   backlog after a stall would otherwise turn each note into a click). The held note-off is let
//!   out early when the same key is played again, so a note never cuts its successor.

use crate::message::Message;

const KEYS: usize = 16 * 128;

/// Per key: a note-on that was delivered late, `(delivered at, its sender time)`.
type LateOns = [Option<(u64, u64)>; KEYS];

/// A note-off held back so a late note keeps its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeldNoteOff {
    pub(crate) release_ns: u64,
    pub(crate) message: Message,
    pub(crate) sender_ns: Option<u64>,
    pub(crate) arrival_ns: u64,
}

/// NOTE: the per-key tables (50 KiB together) are made when the first note is late, not
/// before: a link that is never late (or a server's client whose buffer sees few late notes)
/// does not pay for them.
#[derive(Debug)]
pub(crate) struct LateNotes {
    /// Per key: note-offs still to drop because their note-on was dropped as stale.
    to_drop: Option<Box<[u8; KEYS]>>,
    /// Per key: a note-on that was delivered late, `(delivered at, its sender time)`.
    late_on: Option<Box<LateOns>>,
    /// Held note-offs, at most one per key.
    held: Vec<HeldNoteOff>,
}

/// The key of a note message, and whether it starts a note (a note-on with velocity 0 ends one).
pub(crate) fn note_key(message: &Message) -> Option<(usize, bool)> {
    match *message {
        Message::NoteOn { channel, note, velocity } => {
            Some((usize::from(channel & 0x0F) * 128 + usize::from(note & 0x7F), velocity > 0))
        }
        Message::NoteOff { channel, note, .. } => {
            Some((usize::from(channel & 0x0F) * 128 + usize::from(note & 0x7F), false))
        }
        _ => None,
    }
}

impl LateNotes {
    pub(crate) fn new() -> LateNotes {
        LateNotes { to_drop: None, late_on: None, held: Vec::new() }
    }

    /// A note-on is dropped as stale: its note-off will be too.
    pub(crate) fn drop_note(&mut self, key: usize) {
        let to_drop = self.to_drop.get_or_insert_with(|| Box::new([0; KEYS]));
        to_drop[key] = to_drop[key].saturating_add(1);
    }

    /// True when this note-off ends a dropped note (and is dropped with it).
    pub(crate) fn take_dropped_end(&mut self, key: usize) -> bool {
        if let Some(count) = self.to_drop.as_mut().map(|to_drop| &mut to_drop[key]).filter(|count| **count > 0) {
            *count -= 1;
            true
        } else {
            false
        }
    }

    /// A note-on was delivered at `now_ns`, `late` or not. Returns a held note-off of the same
    /// key, to be delivered first.
    pub(crate) fn note_on_delivered(
        &mut self,
        key: usize,
        sender_ns: u64,
        now_ns: u64,
        late: bool,
    ) -> Option<HeldNoteOff> {
        let previous = self.take_held(key);
        match (&mut self.late_on, late) {
            (Some(late_on), _) => late_on[key] = late.then_some((now_ns, sender_ns)),
            (None, true) => {
                let mut late_on = Box::new([None; KEYS]);
                late_on[key] = Some((now_ns, sender_ns));
                self.late_on = Some(late_on);
            }
            // Never late yet: nothing to forget.
            (None, false) => {}
        }
        previous
    }

    /// A note-off is due at `now_ns`: `Some(release time)` when it must be held until then.
    pub(crate) fn hold_until(&mut self, key: usize, sender_ns: u64, now_ns: u64) -> Option<u64> {
        let (delivered, on_sender) = self.late_on.as_mut()?[key].take()?;
        let release = delivered.saturating_add(sender_ns.saturating_sub(on_sender));
        (release > now_ns).then_some(release)
    }

    pub(crate) fn hold(&mut self, key: usize, note_off: HeldNoteOff) {
        // One per key: an older held note-off of the key goes out first (rare: two note-offs in
        // a row); the caller checked with `take_held`.
        debug_assert!(self.held.iter().all(|h| note_key(&h.message).map(|(k, _)| k) != Some(key)));
        if self.held.len() < KEYS {
            self.held.push(note_off);
        }
    }

    /// The held note-off of `key`, if any, taken out.
    pub(crate) fn take_held(&mut self, key: usize) -> Option<HeldNoteOff> {
        let at = self.held.iter().position(|h| note_key(&h.message).map(|(k, _)| k) == Some(key))?;
        Some(self.held.swap_remove(at))
    }

    /// The earliest release time of the held note-offs.
    pub(crate) fn next_release(&self) -> Option<u64> {
        self.held.iter().map(|h| h.release_ns).min()
    }

    /// Takes out the earliest held note-off whose release time is at or before `now_ns`.
    pub(crate) fn take_released(&mut self, now_ns: u64) -> Option<HeldNoteOff> {
        let at = self
            .held
            .iter()
            .enumerate()
            .filter(|(_, h)| h.release_ns <= now_ns)
            .min_by_key(|(_, h)| h.release_ns)
            .map(|(at, _)| at)?;
        Some(self.held.swap_remove(at))
    }

    /// Takes out every held note-off (of one channel, or all), for messages that end notes
    /// wholesale (all notes off, reset).
    pub(crate) fn take_held_of_channel(&mut self, channel: Option<u8>) -> Option<HeldNoteOff> {
        let at = self.held.iter().position(|h| channel.is_none() || h.message.channel() == channel)?;
        Some(self.held.swap_remove(at))
    }

    pub(crate) fn held_count(&self) -> usize {
        self.held.len()
    }
}
