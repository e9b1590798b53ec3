//! A sending end that remembers which notes it left sounding, so that closing can release them.

use midisock::{HeldNotes, Message, PortServer, SocketPort};
use std::sync::{Mutex, MutexGuard};

/// Where messages go: a server's broadcast or a client's connection.
pub trait Destination {
    fn send_all(&self, messages: &[Message]) -> midisock::Result<()>;
}

impl Destination for PortServer {
    fn send_all(&self, messages: &[Message]) -> midisock::Result<()> {
        PortServer::send_all(self, messages)
    }
}

impl Destination for SocketPort {
    fn send_all(&self, messages: &[Message]) -> midisock::Result<()> {
        SocketPort::send_all(self, messages)
    }
}

/// Messages sent through here are tracked with the core's [`HeldNotes`]. The lock is held across
/// the send, so a release can never overtake the note it releases.
#[derive(Debug)]
pub struct Tracked<S> {
    pub inner: S,
    held: Mutex<HeldNotes>,
}

impl<S: Destination> Tracked<S> {
    pub fn new(inner: S) -> Tracked<S> {
        Tracked { inner, held: Mutex::new(HeldNotes::default()) }
    }

    fn held(&self) -> MutexGuard<'_, HeldNotes> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn send(&self, message: &Message) -> midisock::Result<()> {
        self.send_all(std::slice::from_ref(message))
    }

    pub fn send_all(&self, messages: &[Message]) -> midisock::Result<()> {
        let mut held = self.held();
        self.inner.send_all(messages)?;
        for message in messages {
            held.observe(message);
        }
        Ok(())
    }

    /// Sends a note-off for every note still sounding (and lifts held sustain pedals); returns
    /// how many messages that took.
    pub fn release(&self) -> usize {
        let mut held = self.held();
        let mut releases = Vec::new();
        held.release_all(|m| releases.push(m));
        // Best effort: the other side may be gone, which is often why we are releasing.
        let _ = self.inner.send_all(&releases);
        releases.len()
    }
}
