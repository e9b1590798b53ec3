//! [`PortServer::set_callback`]: every message from every client handed to a function, on a
//! thread the server owns, instead of to the receive methods.
//!
//! The thread waits on the same doorbell as `receive`, so a message is delivered the moment the
//! event loop puts it in the inbox, and an idle server's callback thread sleeps until then (no
//! polling). Removing the callback rings the doorbell to end that thread's wait.

use super::PortServer;
use crate::error::{Error, Result};
use crate::message::Received;
use crate::net::OnSignal;
use parking_lot::MutexGuard;
use std::sync::Arc;
use std::thread;

/// The name of the thread that calls a server's callback.
const CALLBACK_THREAD_NAME: &str = "midisock-srv-cb";

impl PortServer {
    /// Delivers every message from every client to `callback` instead of the receive methods,
    /// from a named thread ("midisock-srv-cb") that the server owns; the receive methods
    /// return `Err(Error::CallbackInstalled)` meanwhile.
    ///
    /// Messages already received but not yet taken are delivered first, in order. The callback
    /// runs until [`PortServer::remove_callback`] is called or the server is closed (closing
    /// waits for the message being delivered, not for the rest). It may send
    /// (broadcast) from the callback, but must not block for long: the next message waits for it
    /// to return. Only one callback can be installed at a time (`Err(Error::CallbackInstalled)`
    /// on a second call); `Err(Error::Closed)` once the server is closed.
    pub fn set_callback<F>(&self, mut callback: F) -> Result<()>
    where
        F: FnMut(Received) + Send + 'static,
    {
        let generation = {
            let mut state = self.claim_reads();
            if state.stopping || state.stopped {
                return Err(Error::Closed);
            }
            if state.callback_installed {
                return Err(Error::CallbackInstalled);
            }
            state.callback_installed = true;
            state.callback_generation += 1;
            state.callback_generation
        };
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new().name(CALLBACK_THREAD_NAME.into()).spawn(move || {
            let mut state = shared.state();
            // Checked before each message: once the callback is removed, what is left stays in
            // the inbox for the receive methods; once the server closes, delivery ends (close()
            // waits for the message being delivered, not for a backlog).
            while state.callback_generation == generation && !(state.stopping || state.stopped) {
                if let Some(received) = shared.take_next(&mut state) {
                    MutexGuard::unlocked(&mut state, || callback(received));
                } else {
                    shared.wait_changed(&mut state, None, OnSignal::Resume);
                }
            }
        });
        match spawned {
            Ok(handle) => {
                *self.callback_thread.lock() = Some(handle);
                Ok(())
            }
            Err(e) => {
                self.shared.state().callback_installed = false;
                Err(Error::Io(e))
            }
        }
    }

    /// Stops delivering to the callback installed by [`PortServer::set_callback`] and joins its
    /// thread (the message it is delivering is delivered first); every later message goes to the
    /// receive methods again. Called from the callback itself, it returns at once and the thread
    /// ends when the callback returns. Does nothing when no callback is installed.
    pub fn remove_callback(&self) {
        {
            let mut state = self.shared.state();
            if !state.callback_installed {
                return;
            }
            state.callback_generation += 1;
            self.shared.changed.ring();
        }
        self.join_callback_thread();
        self.shared.state().callback_installed = false;
    }

    /// Joins the callback thread, if there is one — unless this is that thread (a callback that
    /// removes itself or closes the server), which then ends when the callback returns.
    pub(super) fn join_callback_thread(&self) {
        let handle = self.callback_thread.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}
