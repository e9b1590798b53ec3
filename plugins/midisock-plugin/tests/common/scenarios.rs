//! The scenarios both host tests run the same way, written once against [`HostRig`]: what a
//! CLAP or a VST3 host can do with a loaded plugin, in MIDI bytes.

use super::{rebind, receive_n, server, DEADLINE};
use midisock::{Message, PortServer};
use std::time::{Duration, Instant};

/// A loaded, processing plugin in some host.
pub trait HostRig {
    /// One block with 3-byte MIDI events at their sample offsets; returns the MIDI bytes the
    /// plugin put out, in order.
    fn process_midi(&mut self, input: &[(u32, [u8; 3])]) -> Vec<Vec<u8>>;

    /// Processes empty blocks (about in real time) until `done` says so; returns every output
    /// event seen. Panics at the deadline.
    fn process_until(&mut self, what: &str, mut done: impl FnMut(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            seen.extend(self.process_midi(&[]));
            if done(&seen) {
                return seen;
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}; output so far: {seen:02X?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Processes empty blocks until `server` has `n` clients.
    fn wait_for_clients(&mut self, server: &PortServer, n: usize) {
        let start = Instant::now();
        while server.client_count() != n {
            self.process_midi(&[]);
            assert!(start.elapsed() < DEADLINE, "the plugin did not connect to {}", server.local_addr());
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn message(text: &str) -> Message {
    text.parse().expect("a message in mido's text form")
}

/// What a server sends comes out of the plugin as these bytes, in order.
pub fn server_messages_come_out(rig: &mut impl HostRig, server: &PortServer, sent: &[&str]) {
    let sent: Vec<Message> = sent.iter().map(|text| message(text)).collect();
    server.send_all(&sent).unwrap();
    let want: Vec<Vec<u8>> = sent.iter().map(Message::to_bytes).collect();
    let seen = rig.process_until("the server's messages", |seen| seen.len() >= want.len());
    assert_eq!(seen, want);
}

/// The server goes away: the note it left sounding in the track gets its note-off. A server on
/// the same address again: the plugin reconnects by itself and sends to it.
pub fn reconnects_after_the_server_restarts_and_releases_the_network_notes<R: HostRig>(
    new_rig: impl FnOnce(&str) -> R,
) {
    let server = server();
    let port = server.local_addr().port();
    let mut rig = new_rig(&format!("127.0.0.1:{port}"));
    rig.wait_for_clients(&server, 1);

    server.send(&message("note_on channel=2 note=64 velocity=90")).unwrap();
    rig.process_until("the note from the server", |seen| seen.contains(&vec![0x92, 64, 90]));

    server.close();
    drop(server);
    rig.process_until("the note-off for the lost connection", |seen| seen.contains(&vec![0x82, 64, 0]));

    let server = rebind(port);
    rig.wait_for_clients(&server, 1);
    rig.process_midi(&[(0, [0x92, 70, 1])]);
    assert_eq!(receive_n(&server, 1), vec![message("note_on channel=2 note=70 velocity=1")]);
}

/// With the token the server wants, over TLS: notes go both ways and no hello failed.
pub fn reaches_a_server_protected_by_a_token_and_tls<R: HostRig>(new_rig: impl FnOnce(&[u8]) -> R) {
    let protected = super::ProtectedServer::new("s3cret token", "s3cret token");
    let server = &protected.server;
    let mut rig = new_rig(&protected.plugin_state);
    rig.wait_for_clients(server, 1);
    rig.process_midi(&[(0, [0x90, 61, 64])]);
    assert_eq!(receive_n(server, 1), vec![message("note_on channel=0 note=61 velocity=64")]);
    server.send(&message("note_on channel=3 note=50 velocity=70")).unwrap();
    rig.process_until("the note from the protected server", |seen| seen.contains(&vec![0x93, 50, 70]));
    assert_eq!(server.stats().auth_failures, 0);
}

/// With a wrong token: TLS works (the handshake completes), the hello does not, so the server
/// counts a failed hello and never admits the plugin.
pub fn a_wrong_token_is_refused_by_the_protected_server<R: HostRig>(new_rig: impl FnOnce(&[u8]) -> R) {
    let protected = super::ProtectedServer::new("s3cret token", "not the token");
    let server = &protected.server;
    let mut rig = new_rig(&protected.plugin_state);
    let start = Instant::now();
    while server.stats().auth_failures == 0 {
        rig.process_midi(&[]);
        assert!(start.elapsed() < DEADLINE, "the server never saw the plugin's wrong token");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(server.client_count(), 0);
}
