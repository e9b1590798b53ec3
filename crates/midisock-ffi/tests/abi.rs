//! The C ABI called from Rust, on loopback: the rules of the contract that C tests check too,
//! kept here so `cargo test` alone catches a regression.

use midisock::*;
use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::Arc;
use std::thread;

fn ok(result: midisock_result) {
    assert_eq!(result, midisock_result::Ok, "{}", last_error());
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0;
    // SAFETY: the buffer and the length slot are valid locals.
    let r = unsafe { midisock_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(r, midisock_result::Ok);
    // SAFETY: on success the buffer holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

/// A server on a free loopback port and one connected client.
struct Pair {
    server: *mut midisock_server,
    client: *mut midisock_port,
}

// SAFETY: handles may be used from any thread; `Pair` frees them only in `drop`, after every
// thread that borrowed them has been joined (the tests join before dropping).
unsafe impl Send for Pair {}
// SAFETY: as above; every function but `_free` is thread-safe.
unsafe impl Sync for Pair {}

impl Pair {
    fn new() -> Pair {
        let mut server = ptr::null_mut();
        let mut client = ptr::null_mut();
        let mut port = 0u16;
        // SAFETY: valid locals and NUL-terminated strings.
        unsafe {
            ok(midisock_server::midisock_server_bind(c"127.0.0.1:0".as_ptr(), &mut server));
            ok(midisock_server::midisock_server_local_port(server, &mut port));
            let address = CString::new(format!("127.0.0.1:{port}")).unwrap();
            ok(midisock_port::midisock_port_connect(address.as_ptr(), &mut client));
        }
        Pair { server, client }
    }

    fn accept(&self) -> *mut midisock_port {
        let mut port = ptr::null_mut();
        // SAFETY: the server is live; `port` is a valid local.
        ok(unsafe { midisock_server::midisock_server_accept_timeout(self.server, 5000, &mut port) });
        port
    }

    fn wait_for_clients(&self, want: usize) {
        for _ in 0..5000 {
            let mut count = 0;
            // SAFETY: the server is live; `count` is a valid local.
            ok(unsafe { midisock_server::midisock_server_client_count(self.server, &mut count) });
            if count == want {
                return;
            }
            thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("the server never had {want} clients");
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // SAFETY: both handles are live and no other thread uses them any more.
        unsafe {
            ok(midisock_port::midisock_port_free(self.client));
            ok(midisock_server::midisock_server_free(self.server));
        }
    }
}

/// Receives one message from a port with a 5 s limit.
fn receive(port: *const midisock_port, buf: &mut [u8]) -> Result<Vec<u8>, (midisock_result, usize)> {
    let (mut len, mut stamp) = (usize::MAX, 0u64);
    // SAFETY: the port is live; the buffer and slots are valid for their sizes.
    let r = unsafe {
        midisock_port::midisock_port_receive_timeout(port, 5000, buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp)
    };
    if r == midisock_result::Ok {
        Ok(buf[..len].to_vec())
    } else {
        Err((r, len))
    }
}

#[test]
fn a_message_too_big_for_the_buffer_is_kept_for_the_next_call() {
    let pair = Pair::new();
    let peer = pair.accept();
    let sysex = [0xF0, 1, 2, 3, 4, 5, 0xF7];
    let note = [0x90, 60, 64];
    // SAFETY: the port is live; the byte arrays are valid.
    unsafe {
        ok(midisock_port::midisock_port_send(pair.client, sysex.as_ptr(), sysex.len()));
        ok(midisock_port::midisock_port_send(pair.client, note.as_ptr(), note.len()));
    }
    let mut small = [0u8; 3];
    // Twice: the kept message stays first in line however often the buffer is too small.
    assert_eq!(receive(peer, &mut small), Err((midisock_result::BufferTooSmall, 7)));
    assert_eq!(receive(peer, &mut small), Err((midisock_result::BufferTooSmall, 7)));
    let mut big = [0u8; 16];
    assert_eq!(receive(peer, &mut big), Ok(sysex.to_vec()));
    assert_eq!(receive(peer, &mut small), Ok(note.to_vec()));
    // SAFETY: the accepted port is live and used by no other thread.
    ok(unsafe { midisock_port::midisock_port_free(peer) });
}

#[test]
fn outputs_are_untouched_on_failure_and_nulls_are_refused() {
    let pair = Pair::new();
    let mut buf = [0xAAu8; 8];
    let (mut len, mut stamp) = (12345usize, 678u64);
    // SAFETY: valid locals; the NULL handle is the point of the test.
    let r = unsafe {
        midisock_port::midisock_port_try_receive(ptr::null(), buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp)
    };
    assert_eq!(r, midisock_result::NullArgument);
    assert!(last_error().contains("`port` is NULL"), "{}", last_error());
    // SAFETY: as above.
    let r = unsafe {
        midisock_port::midisock_port_try_receive(pair.client, buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp)
    };
    assert_eq!(r, midisock_result::WouldBlock);
    assert_eq!((len, stamp, buf), (12345, 678, [0xAA; 8]));
    // SAFETY: a NULL output pointer, refused before anything is read.
    let r = unsafe {
        midisock_port::midisock_port_try_receive(pair.client, buf.as_mut_ptr(), buf.len(), ptr::null_mut(), &mut stamp)
    };
    assert_eq!(r, midisock_result::NullArgument);
}

/// Several threads send on one port at once; every message arrives whole, and each thread's
/// messages arrive in the order it sent them.
#[test]
fn concurrent_sends_on_one_port_never_interleave() {
    const THREADS: u8 = 4;
    const EACH: usize = 500;
    let pair = Arc::new(Pair::new());
    let peer = pair.accept() as usize;
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                for i in 0..EACH {
                    let note = [0x90 | t, (i % 128) as u8, 1];
                    let sysex = [0xF0, t, t, t, t, t, t, t, t, 0xF7];
                    let bytes: &[u8] = if i % 10 == 0 { &sysex } else { &note };
                    // SAFETY: the client is live until every sender is joined.
                    ok(unsafe { midisock_port::midisock_port_send(pair.client, bytes.as_ptr(), bytes.len()) });
                }
            })
        })
        .collect();
    let mut next = [0usize; THREADS as usize];
    let mut buf = [0u8; 64];
    for _ in 0..THREADS as usize * EACH {
        let bytes = receive(peer as *const midisock_port, &mut buf).expect("a message within 5 s");
        let thread = match bytes[0] {
            0xF0 => {
                assert_eq!(bytes.len(), 10);
                assert!(bytes[1..9].iter().all(|&b| b == bytes[1]), "interleaved sysex {bytes:?}");
                bytes[1]
            }
            status => {
                assert_eq!(bytes[1] as usize, next[(status & 0x0F) as usize] % 128);
                status & 0x0F
            }
        } as usize;
        next[thread] += 1;
    }
    assert_eq!(next, [EACH; THREADS as usize]);
    for sender in senders {
        sender.join().unwrap();
    }
    // SAFETY: the accepted port is live and no other thread uses it.
    ok(unsafe { midisock_port::midisock_port_free(peer as *mut midisock_port) });
}

/// Several threads broadcast on one server at once; the client gets every message whole.
#[test]
fn concurrent_broadcasts_on_one_server_never_interleave() {
    const THREADS: u8 = 4;
    const EACH: usize = 250;
    let pair = Arc::new(Pair::new());
    pair.wait_for_clients(1);
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                for i in 0..EACH {
                    let bytes = [0xB0 | t, 7, (i % 128) as u8];
                    // SAFETY: the server is live until every sender is joined.
                    ok(unsafe { midisock_server::midisock_server_send(pair.server, bytes.as_ptr(), bytes.len()) });
                }
            })
        })
        .collect();
    let mut next = [0usize; THREADS as usize];
    let mut buf = [0u8; 8];
    for _ in 0..THREADS as usize * EACH {
        let bytes = receive(pair.client, &mut buf).expect("a message within 5 s");
        let thread = (bytes[0] & 0x0F) as usize;
        assert_eq!((bytes[0] & 0xF0, bytes[1], bytes[2] as usize), (0xB0, 7, next[thread] % 128));
        next[thread] += 1;
    }
    for sender in senders {
        sender.join().unwrap();
    }
}

#[test]
fn text_round_trips_through_bytes() {
    let mut bytes = [0u8; 16];
    let mut len = 0;
    let mut text = [0 as c_char; 64];
    let mut text_len = 0;
    // SAFETY: valid locals and NUL-terminated strings.
    unsafe {
        ok(midisock_message_from_text(c"pitchwheel channel=3 pitch=-8192".as_ptr(), bytes.as_mut_ptr(), 16, &mut len));
        assert_eq!(&bytes[..len], &[0xE3, 0, 0]);
        ok(midisock_message_to_text(bytes.as_ptr(), len, text.as_mut_ptr(), 64, &mut text_len));
        let rendered = CStr::from_ptr(text.as_ptr()).to_str().unwrap();
        assert_eq!(rendered, "pitchwheel channel=3 pitch=-8192 time=0");
        assert_eq!(text_len, rendered.len());
        // Too small by one (the NUL): the size needed comes back, the buffer is untouched.
        text[0] = 0;
        let r = midisock_message_to_text(bytes.as_ptr(), len, text.as_mut_ptr(), rendered.len(), &mut text_len);
        assert_eq!((r, text_len, text[0]), (midisock_result::BufferTooSmall, rendered.len() + 1, 0));
        let r = midisock_message_from_text(c"note_on channel=16".as_ptr(), bytes.as_mut_ptr(), 16, &mut len);
        assert_eq!(r, midisock_result::MessageText);
    }
}
