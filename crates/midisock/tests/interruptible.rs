//! The interruptible waits: `SocketPort::receive_interruptible`, `PortServer::receive_interruptible`
//! and `PortServer::accept_interruptible` end with `Error::Interrupted` when a signal handler runs
//! on their thread — in a blocking read, in `ppoll` (a timeout, a jitter buffer's playout), in the
//! server's futex — and lose nothing; the plain waits go on through the same signals.
//!
//! The handler (SIGUSR1) is installed without `SA_RESTART`, as CPython installs its own, and each
//! signal goes to one thread (`pthread_kill`) once it sleeps in its wait, so nothing here depends
//! on timing or on which thread the kernel would pick.

mod support;

use midisock::timing::DelayMode;
use midisock::{connect, connect_with, ConnectOptions, Error, Message, PortServer, SocketPort};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::{Duration, Instant};
use support::{eventually, thread_id, wait_until_blocked, WAIT};

/// Which threads (kernel ids) the handler ran on, in order: tests run in parallel, each looks
/// for its own thread.
static HANDLED_ON: [AtomicI32; 256] = [const { AtomicI32::new(0) }; 256];
static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn note_signal(_: libc::c_int) {
    let slot = HANDLED.fetch_add(1, Ordering::SeqCst);
    if let Some(slot) = HANDLED_ON.get(slot) {
        // SAFETY: gettid is async-signal-safe and has no preconditions.
        slot.store(unsafe { libc::gettid() }, Ordering::SeqCst);
    }
}

fn handled_on(tid: i32) -> bool {
    HANDLED_ON.iter().any(|t| t.load(Ordering::SeqCst) == tid)
}

/// SIGUSR1 runs `note_signal`; no SA_RESTART, so blocking syscalls fail with EINTR.
fn install_handler() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler only touches atomics and calls gettid,
        // both async-signal-safe; sa_flags 0 means no SA_RESTART (and no SA_SIGINFO).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
        }
    });
}

/// Runs `wait` on a new thread; once `ready()` holds and the thread sleeps in a blocking syscall,
/// signals that thread alone, waits for the handler to have run there, calls `then()`, and
/// returns what `wait` returned and how long it took after the signal. Fails the test if `wait`
/// has not returned within [`WAIT`] of that (the thread is then left blocked, not joined, so the
/// failure is reported instead of hanging).
fn signal_while_blocked<T: Send + 'static>(
    wait: impl FnOnce() -> T + Send + 'static,
    ready: impl Fn() -> bool,
    then: impl FnOnce(),
) -> (T, Duration) {
    install_handler();
    let (ids, id) = mpsc::channel();
    let (results, result) = mpsc::channel();
    thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        ids.send((thread_id(), unsafe { libc::pthread_self() })).unwrap();
        let _ = results.send(wait());
    });
    let (tid, pthread) = id.recv_timeout(WAIT).unwrap();
    eventually("the test's condition", &ready);
    wait_until_blocked(tid);
    let signalled = Instant::now();
    // SAFETY: the thread is alive: it sleeps in `wait`, and only sends its result after that.
    assert_eq!(unsafe { libc::pthread_kill(pthread, libc::SIGUSR1) }, 0);
    eventually("the handler to run on the waiting thread", || handled_on(tid));
    then();
    let result = result.recv_timeout(WAIT).expect("the wait to return after the signal");
    (result, signalled.elapsed())
}

/// [`signal_while_blocked`] with nothing before or after the signal.
fn interrupt<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    signal_while_blocked(wait, || true, || {})
}

/// `f(&object)` as a closure of its own, for the waiting thread of [`signal_while_blocked`].
fn with<O: Send + Sync + 'static, R>(
    object: &Arc<O>,
    f: impl FnOnce(&O) -> R + Send + 'static,
) -> impl FnOnce() -> R + Send + 'static {
    let object = Arc::clone(object);
    move || f(&object)
}

fn note(n: u8) -> Message {
    Message::NoteOn { channel: 0, note: n, velocity: 64 }
}

fn is_interrupted<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Interrupted))
}

/// A server and a raw TCP client whose connection the server handed over: bytes written to the
/// client arrive at the port exactly as written, split wherever the test likes.
fn raw_pair() -> (PortServer, TcpStream, Arc<SocketPort>) {
    let server = PortServer::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(server.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    let port = server.accept_timeout(WAIT).unwrap().expect("the client");
    (server, client, Arc::new(port))
}

#[test]
fn a_blocking_receive_is_interrupted_and_the_half_message_read_before_is_kept() {
    let (_server, mut client, port) = raw_pair();
    // Half a note_on first: the receive reads it, then blocks for the rest.
    client.write_all(&[0x90, 60]).unwrap();
    let (result, after) = interrupt(with(&port, |p| p.receive_interruptible(None)));
    assert!(is_interrupted(&result), "{result:?}");
    assert!(after < WAIT, "returned {after:?} after the signal");
    client.write_all(&[100]).unwrap();
    let received = port.receive_interruptible(Some(WAIT)).unwrap().expect("the whole note");
    assert_eq!(received.message, Message::NoteOn { channel: 0, note: 60, velocity: 100 });
}

#[test]
fn a_receive_with_a_timeout_is_interrupted_long_before_its_timeout() {
    let (_server, mut client, port) = raw_pair();
    let (result, after) = interrupt(with(&port, |p| p.receive_interruptible(Some(WAIT * 4))));
    assert!(is_interrupted(&result), "{result:?}");
    assert!(after < WAIT, "returned {after:?} after the signal");
    client.write_all(&[0x90, 61, 64]).unwrap();
    assert_eq!(port.receive_interruptible(Some(WAIT)).unwrap().map(|r| r.message), Some(note(61)));
    // A timeout still ends the wait without a message.
    assert!(port.receive_interruptible(Some(Duration::from_millis(20))).unwrap().is_none());
}

#[test]
fn the_plain_receives_go_on_through_signals() {
    let (_server, client, port) = raw_pair();
    // Written once the signal was handled: the receive had to wait on through it.
    let client = &client;
    let write_note = |n: u8| move || (&*client).write_all(&[0x90, n, 64]).unwrap();
    let (result, _) = signal_while_blocked(with(&port, |p| p.receive_timeout(WAIT)), || true, write_note(62));
    assert_eq!(result.unwrap(), Some(note(62)));
    let (result, _) = signal_while_blocked(with(&port, |p| p.receive()), || true, write_note(63));
    assert_eq!(result.unwrap(), note(63));
}

#[test]
fn a_jitter_buffered_receive_waiting_for_a_due_time_is_interrupted_and_keeps_the_queued_message() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A minute's delay: the stamped message sits in the buffer for the whole test.
    let options = ConnectOptions::default().jitter_buffer(DelayMode::fixed(60_000_000_000));
    let receiver = Arc::new(connect_with(listener.local_addr().unwrap(), &options).unwrap());
    let sender = SocketPort::from_stream(listener.accept().unwrap().0).unwrap();
    eventually("the sender to answer the request for stamps", || {
        sender.send(&Message::ActiveSensing).unwrap();
        sender.sends_stamps()
    });
    sender.send(&note(64)).unwrap();
    // Something queued: the receive then waits in ppoll for its due time, not in a read.
    let queued = || receiver.playout_stats().expect("a jitter buffer").queued > 0;
    let (result, after) = signal_while_blocked(
        with(&receiver, |receiver| loop {
            // Unstamped messages (sent before the answer) come out at once; stamped ones wait.
            match receiver.receive_interruptible(None) {
                Ok(Some(r)) if r.message == Message::ActiveSensing => continue,
                other => break other,
            }
        }),
        queued,
        || {},
    );
    assert!(is_interrupted(&result), "{result:?}");
    assert!(after < WAIT, "returned {after:?} after the signal");
    assert!(queued(), "what was queued is still queued: {:?}", receiver.playout_stats());
}

#[test]
fn the_server_receive_is_interrupted_and_loses_nothing() {
    let server = Arc::new(PortServer::bind("127.0.0.1:0").unwrap());
    let client = connect(server.local_addr()).unwrap();
    let (result, after) = interrupt(with(&server, |s| s.receive_interruptible(None)));
    assert!(is_interrupted(&result), "{result:?}");
    assert!(after < WAIT, "returned {after:?} after the signal");
    let (result, _) = interrupt(with(&server, |s| s.receive_interruptible(Some(WAIT * 4))));
    assert!(is_interrupted(&result), "{result:?}");
    client.send(&note(65)).unwrap();
    assert_eq!(server.receive_interruptible(Some(WAIT)).unwrap().map(|r| r.message), Some(note(65)));
    assert!(server.receive_interruptible(Some(Duration::from_millis(20))).unwrap().is_none());
    // The plain receive waits on through a signal.
    let (result, _) =
        signal_while_blocked(with(&server, |s| s.receive_timeout(WAIT)), || true, || client.send(&note(66)).unwrap());
    assert_eq!(result.unwrap(), Some(note(66)));
}

#[test]
fn the_server_accept_is_interrupted_and_the_next_accept_gets_the_client() {
    let server = Arc::new(PortServer::bind("127.0.0.1:0").unwrap());
    let (result, after) = interrupt(with(&server, |s| s.accept_interruptible(None)));
    assert!(is_interrupted(&result), "{result:?}");
    assert!(after < WAIT, "returned {after:?} after the signal");
    let client = connect(server.local_addr()).unwrap();
    let accepted = server.accept_interruptible(Some(WAIT)).unwrap().expect("the client");
    assert_eq!(accepted.name(), client.local_addr().unwrap().to_string());
    assert!(server.accept_interruptible(Some(Duration::from_millis(20))).unwrap().is_none());
    // The plain accept waits on through a signal.
    let second = std::cell::OnceCell::new();
    let connect_second = || drop(second.set(connect(server.local_addr()).unwrap()));
    let (result, _) = signal_while_blocked(with(&server, |s| s.accept_timeout(WAIT)), || true, connect_second);
    let accepted = result.unwrap().expect("the second client");
    assert_eq!(accepted.name(), second.get().unwrap().local_addr().unwrap().to_string());
}
