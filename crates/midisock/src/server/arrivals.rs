//! [`Arrivals`]: what reads from one client gave, on its two ways out — to `receive()` (now, or
//! later through the client's jitter buffer) and, when relaying, to the other clients at once.

use crate::message::{Message, Received};

#[derive(Default)]
pub(crate) struct Arrivals {
    /// For `receive()` now, in the client's order: what no jitter buffer holds back (and what a
    /// full one pushed out early, or a departing client's buffer held).
    pub(crate) to_inbox: Vec<Received>,
    pub(crate) relayed: Relayed,
}

/// Copies of what a client sent, for the other clients.
#[derive(Default)]
pub(crate) struct Relayed {
    /// When relaying: every message that arrived, on arrival (not on playout: the final
    /// receiver's own buffer removes the jitter of both legs at once), encoded plain once...
    pub(crate) plain: Vec<u8>,
    /// ...and as messages, for the clients that get them stamped...
    pub(crate) messages: Vec<Message>,
    /// ...at these times on the server's clock: the sender's stamp moved to our clock by the
    /// client's estimated offset, or the arrival time when it came unstamped.
    pub(crate) times: Vec<u64>,
    /// The stamps of relayed messages whose time is not set yet (see [`Relayed::set_times`]).
    stamps: Vec<Option<u64>>,
}

impl Arrivals {
    pub(crate) fn clear(&mut self) {
        self.to_inbox.clear();
        self.relayed.clear();
    }

    /// Gives back what a burst made the buffers grow to (one 64 KiB read of one-byte messages
    /// takes 3 MiB as `Received`), once the client has nothing more to read: a flood must not
    /// pin its peak for ever.
    pub(crate) fn shrink(&mut self) {
        const KEEP: usize = 1024;
        self.to_inbox.shrink_to(KEEP);
        self.relayed.shrink(KEEP);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.to_inbox.is_empty() && self.relayed.messages.is_empty()
    }
}

impl Relayed {
    fn clear(&mut self) {
        self.plain.clear();
        self.messages.clear();
        self.times.clear();
        self.stamps.clear();
    }

    fn shrink(&mut self, keep: usize) {
        self.plain.shrink_to(keep * 3);
        self.messages.shrink_to(keep);
        self.times.shrink_to(keep);
        self.stamps.shrink_to(keep);
    }

    /// Copies `message`, which carried `sender_ns`, for the other clients; its time is set by
    /// [`Relayed::set_times`] once the read is complete.
    pub(crate) fn copy(&mut self, message: &Message, sender_ns: Option<u64>) {
        message.encode_to_vec(&mut self.plain);
        self.messages.push(message.clone());
        self.stamps.push(sender_ns);
    }

    /// True when a copy made since the last [`Relayed::set_times`] carried a stamp.
    pub(crate) fn has_stamps(&self) -> bool {
        self.stamps.iter().any(Option::is_some)
    }

    /// Sets the times of the copies made since the last call: sender time plus `offset_ns`
    /// (receiver clock − sender clock, as the client's jitter buffer estimates it); a copy with
    /// no stamp, or no estimate yet, takes `arrival_ns`.
    pub(crate) fn set_times(&mut self, offset_ns: Option<i64>, arrival_ns: u64) {
        self.times.extend(self.stamps.drain(..).map(|stamp| {
            let translated = match (stamp, offset_ns) {
                (Some(sender), Some(offset)) => sender.checked_add_signed(offset),
                _ => None,
            };
            translated.unwrap_or(arrival_ns)
        }));
    }

    /// Copies of `messages` for the other clients, sent at `now_ns` (the note-offs for what a
    /// departing client left held).
    pub(crate) fn copy_at(&mut self, messages: &[Message], now_ns: u64) {
        for message in messages {
            self.copy(message, None);
        }
        self.set_times(None, now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_move_to_the_server_clock_and_unstamped_copies_take_the_arrival() {
        let mut relayed = Relayed::default();
        relayed.copy(&Message::Clock, Some(1_000));
        relayed.copy(&Message::Stop, None);
        relayed.set_times(Some(-400), 9_000);
        relayed.copy(&Message::Start, Some(2_000));
        relayed.set_times(None, 10_000);
        relayed.copy(&Message::Continue, Some(100));
        relayed.set_times(Some(-400), 11_000);
        assert_eq!(relayed.times, [600, 9_000, 10_000, 11_000], "no estimate, or one below zero: arrival");
        assert_eq!(relayed.plain, [0xF8, 0xFC, 0xFA, 0xFB]);
        assert_eq!(relayed.messages.len(), 4);
    }
}
