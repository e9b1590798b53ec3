//! Whether the MIDI backend a port watcher talks to is still the one it connected to.
//!
//! A JACK client of a server that died keeps answering from the shared memory the dead server
//! left behind: its port list still shows every port, so a watcher asking only "is the port
//! there?" would never notice a JACK restart, and the bridge's connections would stay attached
//! to the dead server. midir gives no way to learn of the server's end, so with the `jack`
//! feature a watcher holds one more client of its own (no ports, never activated, so it takes no
//! part in the server's cycle) with a shutdown callback: once the server that client belongs to
//! is gone, the flag stays set, even if a new server has started since.
//!
//! ALSA's sequencer is part of the kernel and its port list is always current: there, the
//! backend is alive for as long as it could be opened.

/// What users call the backend, for the lines logged when it goes and comes back.
pub const BACKEND: &str = if cfg!(feature = "jack") { "the JACK server" } else { "the MIDI system" };

#[cfg(feature = "jack")]
pub use jack::Liveness;

#[cfg(not(feature = "jack"))]
pub use always::Liveness;

#[cfg(not(feature = "jack"))]
mod always {
    /// ALSA (and CoreMIDI, WinMM): nothing to watch.
    pub struct Liveness;

    impl Liveness {
        pub fn open() -> Option<Liveness> {
            Some(Liveness)
        }

        pub fn alive(&self) -> bool {
            true
        }
    }
}

#[cfg(feature = "jack")]
mod jack {
    use std::ffi::{c_void, CString};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A portless JACK client whose shutdown callback records that its server is gone.
    pub struct Liveness {
        client: *mut jack_sys::jack_client_t,
        /// Leaked into the callback's argument while the client is open; freed on drop.
        gone: *const AtomicBool,
    }

    // SAFETY: a jack_client_t may be used from any thread; the flag is atomic.
    unsafe impl Send for Liveness {}

    unsafe extern "C" fn on_shutdown(arg: *mut c_void) {
        // SAFETY: `arg` is the flag leaked by `open`, freed only after the client is closed
        // (after which libjack calls nothing of it).
        unsafe { (*(arg as *const AtomicBool)).store(true, Ordering::Release) };
    }

    impl Liveness {
        /// A client of the server running now; None when none runs.
        pub fn open() -> Option<Liveness> {
            let name = CString::new("midisock-watch").ok()?;
            // SAFETY: a valid C string; a null status pointer is allowed.
            let client =
                unsafe { jack_sys::jack_client_open(name.as_ptr(), jack_sys::JackNoStartServer, std::ptr::null_mut()) };
            if client.is_null() {
                return None;
            }
            let gone = Box::into_raw(Box::new(AtomicBool::new(false)));
            // SAFETY: `client` is open; `gone` outlives it (freed in drop, after the close).
            unsafe { jack_sys::jack_on_shutdown(client, Some(on_shutdown), gone as *mut c_void) };
            Some(Liveness { client, gone })
        }

        /// False once the server this client belongs to has ended (for good: a restarted
        /// server is another one).
        pub fn alive(&self) -> bool {
            // SAFETY: `gone` lives as long as self.
            !unsafe { &*self.gone }.load(Ordering::Acquire)
        }
    }

    impl Drop for Liveness {
        fn drop(&mut self) {
            // SAFETY: closes the client this value opened (once); no callback runs after it
            // returns, so the flag can be freed.
            unsafe {
                jack_sys::jack_client_close(self.client);
                drop(Box::from_raw(self.gone as *mut AtomicBool));
            }
        }
    }
}
