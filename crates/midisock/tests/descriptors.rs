//! Running out of file descriptors (EMFILE): the server refuses the connection it cannot take,
//! keeps serving the others, and does not spin. In its own test binary, because it lowers the
//! whole process's descriptor limit.

use midisock::{connect, Message, PortServer, RefusalCause, ServerConfig, ServerEvent};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn open_descriptors() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    // The listing's own descriptor was open while it ran; it is closed now.
    fds.retain(|&fd| unsafe_is_open(fd));
    fds
}

fn unsafe_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn set_descriptor_limit(limit: u64) {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid rlimit structs for get/setrlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut current), 0);
        current.rlim_cur = limit;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &current), 0);
    }
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

#[test]
fn out_of_descriptors_refuses_cleanly_and_does_not_spin() {
    let (sender, events) = std::sync::mpsc::channel();
    let sender = std::sync::Mutex::new(sender);
    let config = ServerConfig::default().on_event(move |e| {
        let _ = sender.lock().unwrap().send(e.clone());
    });
    let server = PortServer::bind_with("127.0.0.1:0", config).unwrap();
    let schedstat = server_thread_schedstat();
    // Room for two whole connections (client and server side each) and one more client socket:
    // the server's accept of the third connection hits EMFILE. New descriptors take the lowest
    // free numbers, so the limit is where the fifth free number ends.
    let fds = open_descriptors();
    let limit = (0..).filter(|fd| !fds.contains(fd)).nth(4).unwrap() + 1;
    set_descriptor_limit(limit as u64);
    let first = connect(server.local_addr()).unwrap();
    let _second = connect(server.local_addr()).unwrap();
    let deadline = Instant::now() + WAIT;
    while server.client_count() < 2 {
        assert!(Instant::now() < deadline, "two clients never admitted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut third = TcpStream::connect(server.local_addr()).unwrap();
    third.set_read_timeout(Some(WAIT)).unwrap();
    // Refused with the reserved descriptor: told why and closed at once, not left waiting.
    let mut notice = Vec::new();
    let _ = third.read_to_end(&mut notice);
    assert_eq!(notice, b"\xF4refused: server out of file descriptors\xF7");
    assert_eq!(server.stats().connections_refused, 1);
    let refused = ServerEvent::Refused { peer: third.local_addr().unwrap(), cause: RefusalCause::OutOfResources };
    while events.recv_timeout(WAIT).unwrap() != refused {}

    // Not spinning: over half a second the server thread uses a sliver of CPU.
    let before = cpu_ns(&schedstat);
    std::thread::sleep(Duration::from_millis(500));
    let used_ms = (cpu_ns(&schedstat) - before) / 1_000_000;
    assert!(used_ms < 100, "server thread used {used_ms} ms of CPU in 500 ms while out of descriptors");

    // And the others are still served.
    first.send(&Message::Start).unwrap();
    assert_eq!(server.receive_timeout(WAIT).unwrap(), Some(Message::Start));
}
