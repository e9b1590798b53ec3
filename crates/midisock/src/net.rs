//! Socket plumbing shared by ports and the server: connecting, listening, waiting.

use crate::address::Address;
use crate::clock::monotonic_ns;
use crate::error::{Error, Result};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::RawFd;
use std::time::Duration;

/// The most bytes one socket read takes, on ports and in the server alike. A send buffer grown
/// past it (by a large sysex) is given back rather than kept.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The listen backlog: large enough that an accept storm is queued, not refused.
pub(crate) const LISTEN_BACKLOG: i32 = 1024;

/// How long a connection may be silent before TCP keepalive starts probing the peer.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Time between keepalive probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes after which the connection is declared dead.
pub const KEEPALIVE_RETRIES: u32 = 3;
/// How long written data may stay unacknowledged before the connection is declared dead (the
/// write deadline, TCP_USER_TIMEOUT).
pub const WRITE_DEADLINE: Duration = Duration::from_secs(20);

/// Options every midisock socket gets, client or server side.
///
/// NOTE: TCP_NODELAY, because Nagle's algorithm holds a small write back until the previous one
/// is acknowledged: a chord of three note_on messages would arrive as one late bunch, which is
/// audible. MIDI messages are tiny and latency is the product.
///
/// NOTE: keepalive and a write deadline, because a peer that vanishes without a FIN (power cut,
/// cable pulled, laptop lid closed) would otherwise hold its connection — and its held notes —
/// forever: an idle dead peer is found within 10 s + 3 × 5 s = 25 s, and one we are writing to
/// within 20 s of the first unacknowledged byte.
pub(crate) fn configure_socket(socket: SockRef<'_>) -> io::Result<()> {
    socket.set_tcp_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    socket.set_tcp_keepalive(&keepalive)?;
    socket.set_tcp_user_timeout(Some(WRITE_DEADLINE))
}

/// [`configure_socket`] for a std stream.
pub(crate) fn configure_stream(stream: &TcpStream) -> io::Result<()> {
    configure_socket(SockRef::from(stream))
}

/// Connects to the first address of `address` that accepts.
pub(crate) fn connect(address: &Address, timeout: Option<Duration>) -> Result<TcpStream> {
    let mut last_error = None;
    for addr in address.resolve_for_connect()? {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => {
                configure_stream(&stream).map_err(Error::Io)?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(Error::Connect {
        address: address.to_string(),
        source: last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")),
    })
}

/// Listens on every address `address` means (see [`crate::address`]). With port 0 the first
/// socket picks a free port and the others use the same one.
pub(crate) fn listen(address: &Address) -> Result<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::new();
    let mut port = address.port;
    let mut last_error = None;
    for mut addr in address.resolve_for_bind()? {
        addr.set_port(port);
        match bind_listener(addr) {
            Ok(listener) => {
                port = listener.local_addr().map_err(Error::Io)?.port();
                listeners.push(listener);
            }
            // `localhost` may resolve to ::1 on a machine without IPv6; one family is enough.
            Err(e) => last_error = Some(e),
        }
    }
    match (listeners.is_empty(), last_error) {
        (false, _) => Ok(listeners),
        (true, e) => Err(Error::Bind {
            address: address.to_string(),
            source: e.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")),
        }),
    }
}

fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // NOTE: SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // The unspecified IPv6 address also takes IPv4 (dual stack); a specific one (::1) must not,
        // so that 127.0.0.1 can be bound beside it on the same port.
        socket.set_only_v6(!addr.ip().is_unspecified())?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// What a wait does when a signal handler interrupts it (its syscall returns `EINTR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnSignal {
    /// Wait on, as if nothing happened: the plain receive and accept methods.
    Resume,
    /// Give up with [`io::ErrorKind::Interrupted`], so the caller can run what the signal asked
    /// for and wait again: the `*_interruptible` methods (see [`crate::Error::Interrupted`]).
    Return,
}

/// The error a wait that gives up on a signal returns.
pub(crate) fn interrupted() -> io::Error {
    io::Error::from(io::ErrorKind::Interrupted)
}

/// Waits until `fd` is readable (data, EOF or error) or the monotonic clock
/// ([`crate::monotonic_ns`]) reaches `deadline_ns`; `None` waits forever. Returns false on
/// timeout; with [`OnSignal::Return`], `Err(Interrupted)` when a signal handler ran meanwhile.
///
/// NOTE: `ppoll`, whose timeout is in nanoseconds, rather than `poll` (milliseconds, which would
/// have to be rounded up and would wake a playout deadline up to 1 ms late) or `SO_RCVTIMEO`
/// (rounded to scheduler ticks, 4 ms here). The kernel's timer slack (50 µs by default) is the
/// only rounding left. `ppoll` is never restarted after a signal handler, whatever its
/// `SA_RESTART`, so an interrupted wait always reaches the `EINTR` arm.
pub(crate) fn wait_readable(fd: RawFd, deadline_ns: Option<u64>, on_signal: OnSignal) -> io::Result<bool> {
    loop {
        let timeout = deadline_ns.map(|deadline| timespec_of(deadline.saturating_sub(monotonic_ns())));
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let timeout_ptr = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `pfd` is one valid pollfd and we pass a count of 1; `timeout_ptr` is null or
        // points to a timespec that lives until the call returns; a null signal mask keeps ours.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, timeout_ptr, std::ptr::null()) };
        match rc {
            1.. => return Ok(true),
            0 if deadline_ns.is_some_and(|d| monotonic_ns() >= d) => return Ok(false),
            0 => continue,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
                if on_signal == OnSignal::Return {
                    return Err(e);
                }
            }
        }
    }
}

/// Sleeps until the monotonic clock reaches `deadline_ns` (at once if it has). With
/// [`OnSignal::Return`], `Err(Interrupted)` when a signal handler cut the sleep short.
pub(crate) fn sleep_until(deadline_ns: u64, on_signal: OnSignal) -> io::Result<()> {
    let ts = timespec_of(deadline_ns);
    // SAFETY: `ts` is a valid timespec; with TIMER_ABSTIME the remaining-time pointer is unused.
    while unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) }
        == libc::EINTR
    {
        if on_signal == OnSignal::Return {
            return Err(interrupted());
        }
    }
    Ok(())
}

fn timespec_of(ns: u64) -> libc::timespec {
    libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long }
}

/// The monotonic time `timeout` from now, `None` when that is beyond the clock's range (wait
/// forever).
pub(crate) fn deadline_after(timeout: Duration) -> Option<u64> {
    u64::try_from(timeout.as_nanos()).ok().and_then(|ns| monotonic_ns().checked_add(ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn waits_end_at_their_deadline_to_well_under_a_millisecond_and_data_ends_them_early() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&server);
        let deadline = monotonic_ns() + 3_300_000;
        assert!(!wait_readable(fd, Some(deadline), OnSignal::Resume).unwrap());
        assert!(monotonic_ns() >= deadline, "never early");
        assert!(!wait_readable(fd, Some(0), OnSignal::Resume).unwrap(), "a past deadline only looks");
        client.write_all(&[0xF8]).unwrap();
        assert!(wait_readable(fd, deadline_after(Duration::from_secs(60)), OnSignal::Resume).unwrap());
        let before = monotonic_ns() + 1_200_000;
        sleep_until(before, OnSignal::Resume).unwrap();
        assert!(monotonic_ns() >= before);
    }
}
