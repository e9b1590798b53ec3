//! An empty poll (`_try_receive` with nothing waiting) allocates nothing and leaves the last
//! error alone: the crate promises that receiving allocates nothing, and a program that polls
//! every audio block must not pay for "nothing yet". In its own test binary, because it replaces
//! the global allocator with one that counts.

use midisock::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CStr, CString};
use std::ptr;

/// Counts the allocations of the thread that set `COUNTING`.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counters are thread-local cells that allocate
// nothing (const-initialised).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations_of(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut len = 0;
    // SAFETY: the buffer and the length slot are valid locals.
    assert_eq!(unsafe { midisock_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, midisock_result::Ok);
    // SAFETY: on success the buffer holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

#[test]
fn an_empty_poll_allocates_nothing_and_keeps_the_last_error() {
    let mut server = ptr::null_mut();
    let mut client = ptr::null_mut();
    let mut port = 0u16;
    // SAFETY: valid locals and NUL-terminated strings.
    unsafe {
        assert_eq!(midisock_server::midisock_server_bind(c"127.0.0.1:0".as_ptr(), &mut server), midisock_result::Ok);
        assert_eq!(midisock_server::midisock_server_local_port(server, &mut port), midisock_result::Ok);
        let address = CString::new(format!("127.0.0.1:{port}")).unwrap();
        assert_eq!(midisock_port::midisock_port_connect(address.as_ptr(), &mut client), midisock_result::Ok);
        // A real failure, whose detail must survive the polls.
        assert_eq!(
            midisock_port::midisock_port_connect(c"no port".as_ptr(), &mut ptr::null_mut()),
            midisock_result::AddressSyntax
        );
    }
    let before = last_error();
    assert!(before.contains("no port"), "{before}");

    let mut buf = [0u8; 16];
    let (mut len, mut stamp) = (0usize, 0u64);
    // Warm up: the first poll may set up what every later one reuses.
    // SAFETY: live handle and valid locals.
    let first =
        unsafe { midisock_port::midisock_port_try_receive(client, buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp) };
    assert_eq!(first, midisock_result::WouldBlock);
    let count = allocations_of(|| {
        for _ in 0..1000 {
            // SAFETY: live handle and valid locals.
            let r = unsafe {
                midisock_port::midisock_port_try_receive(client, buf.as_mut_ptr(), buf.len(), &mut len, &mut stamp)
            };
            assert_eq!(r, midisock_result::WouldBlock);
        }
    });
    assert_eq!(count, 0, "1000 empty polls allocated {count} times");
    assert_eq!(last_error(), before, "an empty poll is not an error to record");

    // SAFETY: handles from above, freed once.
    unsafe {
        midisock_port::midisock_port_free(client);
        midisock_server::midisock_server_free(server);
    }
}
