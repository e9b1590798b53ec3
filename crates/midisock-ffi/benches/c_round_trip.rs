//! One MIDI round trip on loopback — send a note, get it echoed back — through the C ABI and
//! through the Rust API, in one criterion group so the two are measured in the same run.
//!
//! Both use the same server and the same kind of peer: an accepted connection whose thread
//! echoes every message. In `c_abi` the client and the echo peer call the exported `midisock_*`
//! functions (as a C program would, through this crate's rlib); in `rust_api` both call
//! `SocketPort`. Target: `c_abi` ≤ 1.05 × `rust_api`.
//!
//! `cargo bench -p midisock-ffi --bench c_round_trip -- --measurement-time 5`

use criterion::{criterion_group, criterion_main, Criterion};
use midisock::{midisock_port, midisock_result, midisock_server};
use midisock_core::{connect, Message, PortServer};
use std::ffi::CString;
use std::hint::black_box;
use std::ptr;
use std::thread::{self, JoinHandle};

/// A port handle carried to the echo thread.
struct PortHandle(*mut midisock_port);

// SAFETY: libmidisock ports may be used from any thread (every function but `_free` is
// thread-safe); the handle is freed only after the echo thread has been joined.
unsafe impl Send for PortHandle {}

impl PortHandle {
    fn get(&self) -> *mut midisock_port {
        self.0
    }
}

fn check(result: midisock_result) {
    assert_eq!(result, midisock_result::Ok);
}

/// The C side: a server, a client and an echo thread, all through the exported functions.
struct CSide {
    server: *mut midisock_server,
    client: *mut midisock_port,
    peer: *mut midisock_port,
    echo: Option<JoinHandle<()>>,
}

impl CSide {
    fn new() -> CSide {
        let mut server = ptr::null_mut();
        let mut client = ptr::null_mut();
        let mut peer = ptr::null_mut();
        let mut port = 0u16;
        // SAFETY: every pointer passed is a valid local; the address is a NUL-terminated string.
        unsafe {
            check(midisock_server::midisock_server_bind(c"127.0.0.1:0".as_ptr(), &mut server));
            check(midisock_server::midisock_server_local_port(server, &mut port));
            let address = CString::new(format!("127.0.0.1:{port}")).unwrap();
            check(midisock_port::midisock_port_connect(address.as_ptr(), &mut client));
            check(midisock_server::midisock_server_accept(server, &mut peer));
        }
        let handle = PortHandle(peer);
        let echo = thread::spawn(move || {
            let peer = handle.get();
            let mut buf = [0u8; 64];
            let (mut len, mut stamp) = (0usize, 0u64);
            loop {
                // SAFETY: `peer` stays alive until this thread is joined; the buffers are locals.
                let received = unsafe {
                    midisock_port::midisock_port_receive(peer, buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp)
                };
                if received != midisock_result::Ok {
                    break;
                }
                // SAFETY: as above; `buf[..len]` holds the message just received.
                let sent = unsafe { midisock_port::midisock_port_send(peer, buf.as_ptr(), len) };
                if sent != midisock_result::Ok {
                    break;
                }
            }
        });
        CSide { server, client, peer, echo: Some(echo) }
    }

    fn round_trip(&self, note: &[u8; 3], buf: &mut [u8; 64]) -> usize {
        let (mut len, mut stamp) = (0usize, 0u64);
        // SAFETY: `client` is live for `self`'s lifetime; the buffers are valid for their lengths.
        unsafe {
            check(midisock_port::midisock_port_send(self.client, note.as_ptr(), note.len()));
            check(midisock_port::midisock_port_receive(self.client, buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp));
        }
        len
    }
}

impl Drop for CSide {
    fn drop(&mut self) {
        // SAFETY: the handles are live; the echo thread is joined before its port is freed.
        unsafe {
            check(midisock_port::midisock_port_close(self.client));
            if let Some(echo) = self.echo.take() {
                echo.join().unwrap();
            }
            check(midisock_port::midisock_port_free(self.peer));
            check(midisock_port::midisock_port_free(self.client));
            check(midisock_server::midisock_server_free(self.server));
        }
    }
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");

    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = connect(server.local_addr()).unwrap();
    let peer = server.accept().unwrap();
    let echo = thread::spawn(move || {
        while let Ok(message) = peer.receive() {
            if peer.send(&message).is_err() {
                break;
            }
        }
    });
    let message = Message::note_on(0, 60, 64).unwrap();
    group.bench_function("rust_api", |b| {
        b.iter(|| {
            client.send(black_box(&message)).unwrap();
            black_box(client.receive().unwrap())
        })
    });

    let c_side = CSide::new();
    let note = [0x90u8, 60, 64];
    let mut buf = [0u8; 64];
    group.bench_function("c_abi", |b| b.iter(|| black_box(c_side.round_trip(black_box(&note), &mut buf))));
    group.finish();

    drop(c_side);
    client.close();
    echo.join().unwrap();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
