//! Running out of file descriptors (EMFILE): the server refuses the connection it cannot take,
//! keeps serving the others, and does not spin.
//!
//! The scenario lowers the descriptor limit, which is per process: run inside the test harness's
//! process, any other test (or the harness itself) opening a file at the wrong moment would hit
//! the limit, or free a number the arithmetic counted on. So the test starts this same binary
//! again as a child that runs only the scenario, on one thread, and owns its limit. In the child
//! the descriptor table is filled to the limit with placeholders and exactly the room the
//! scenario needs is freed, so the outcome does not depend on how many descriptors were open.

mod support;

use midisock::{connect, Message, PortServer, RefusalCause, ServerConfig, ServerEvent};
use std::io::Read;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use support::run_scenario_in_child;

/// The longest any single wait may take: generous, so that only a real hang fails a test, even
/// on a machine loaded far past its cores.
const WAIT: Duration = Duration::from_secs(30);
/// Set in the child's environment: run the scenario instead of skipping it.
const CHILD_ENV: &str = "MIDISOCK_DESCRIPTORS_CHILD";
const SCENARIO: &str = "scenario_in_child_process";

#[test]
fn out_of_descriptors_refuses_cleanly_and_does_not_spin() {
    run_scenario_in_child(SCENARIO, CHILD_ENV);
}

/// The scenario; does nothing unless started by the test above as a child process.
#[test]
fn scenario_in_child_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let (sender, events) = std::sync::mpsc::channel();
    let sender = std::sync::Mutex::new(sender);
    let config = ServerConfig::default().on_event(move |e| {
        let _ = sender.lock().unwrap().send(e.clone());
    });
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    let schedstat = server_thread_schedstat();
    let address = server.local_addr();

    // The server needs one descriptor for each connection it takes; each client socket needs
    // one. Free room for two whole connections (2 × client + server side) and one more client
    // socket: the server's accept of that third connection is the one that hits EMFILE.
    let mut placeholders = fill_descriptor_table(1024);
    placeholders.truncate(placeholders.len() - 5);

    let first = connect(address).unwrap();
    let _second = connect(address).unwrap();
    let deadline = Instant::now() + WAIT;
    while server.client_count() < 2 {
        assert!(Instant::now() < deadline, "two clients never admitted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut third = TcpStream::connect(address).unwrap();
    third.set_read_timeout(Some(WAIT)).unwrap();
    // Refused with the reserved descriptor: told why and closed at once, not left waiting.
    let mut notice = Vec::new();
    let _ = third.read_to_end(&mut notice);
    assert_eq!(notice, b"\xF4refused: server out of file descriptors\xF7");
    assert_eq!(server.stats().connections_refused, 1);
    let refused = ServerEvent::Refused { peer: third.local_addr().unwrap(), cause: RefusalCause::OutOfResources };
    while events.recv_timeout(WAIT).unwrap() != refused {}

    // Not spinning: over half a second of wall time the server thread uses a sliver of CPU. (A
    // spinning thread would use all of the CPU it is given: even sharing a core with two busy
    // processes, a third of 500 ms.)
    let before = cpu_ns(&schedstat);
    std::thread::sleep(Duration::from_millis(500));
    let used_ms = (cpu_ns(&schedstat) - before) / 1_000_000;
    assert!(used_ms < 100, "server thread used {used_ms} ms of CPU in 500 ms while out of descriptors");

    // And the others are still served.
    first.send(&Message::Start).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Start));
    drop(placeholders);
}

/// Lowers the descriptor limit to `limit` and opens placeholders until the table is full; returns
/// them (close some to make exactly that much room).
fn fill_descriptor_table(limit: u64) -> Vec<OwnedFd> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid rlimit structs for get/setrlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut current), 0);
        current.rlim_cur = limit.min(current.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &current), 0);
    }
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut placeholders = Vec::new();
    loop {
        // SAFETY: dup of a descriptor we own; the new one is owned by the OwnedFd.
        let fd = unsafe { libc::dup(null.as_raw_fd()) };
        if fd < 0 {
            let error = std::io::Error::last_os_error();
            assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "filling the table: {error}");
            break;
        }
        // SAFETY: `fd` was just returned by dup and is owned by nothing else.
        placeholders.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
    // The /dev/null descriptor itself is one more to give back: keep the count exact by
    // replacing it with a placeholder.
    drop(null);
    // SAFETY: as above.
    let fd = unsafe { libc::dup(placeholders[0].as_raw_fd()) };
    assert!(fd >= 0, "the slot /dev/null left must be free");
    // SAFETY: as above.
    placeholders.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    placeholders
}

/// The schedstat file of the process's "midisock-server" thread, opened while descriptors are
/// still to be had.
fn server_thread_schedstat() -> std::fs::File {
    // The thread names itself once it runs: look again until it has.
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "midisock-server" {
                return std::fs::File::open(task.path().join("schedstat")).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no midisock-server thread");
}

/// CPU time (ns) the thread has used, read without opening anything.
fn cpu_ns(schedstat: &std::fs::File) -> u64 {
    let mut buf = [0u8; 128];
    let n = std::os::unix::fs::FileExt::read_at(schedstat, &mut buf, 0).unwrap();
    std::str::from_utf8(&buf[..n]).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}
