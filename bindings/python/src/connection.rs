//! `Connection`: one TCP connection (the core's `SocketPort`), as `midisock.sockets.SocketPort`
//! uses it. Every wait releases the GIL; every send releases it too, because a send blocks while
//! the peer's window is full and the peer may be a Python thread of this same process.

use crate::callback::{self, Slot};
use crate::convert::{from_mido, to_mido, Timestamps};
use crate::errors::IntoPyResult;
use crate::wait::{deadline, interruptible};
use midisock::timing::PlayoutConfig;
use midisock::{ConnectOptions, Received, SocketPort, TlsClient};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use socket2::{Domain, Protocol, SockRef, Type};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

#[pyclass(frozen, module = "midisock._core")]
pub struct Connection {
    /// `Some` until the object is dropped (see `Drop`).
    port: Option<Arc<SocketPort>>,
    timestamps: Timestamps,
    callback: Slot,
}

impl Connection {
    pub fn wrap(port: SocketPort, timestamps: Timestamps) -> Connection {
        Connection { port: Some(Arc::new(port)), timestamps, callback: Slot::default() }
    }

    fn port(&self) -> &Arc<SocketPort> {
        self.port.as_ref().expect("the port is only taken by Drop")
    }
}

/// `connect(host, port, timeout=None, token=None, tls_ca=None, tls_server_name=None,
/// timestamps=False, jitter_buffer=None)`: a connection to a server (midisock's or mido's).
#[pyfunction]
#[pyo3(signature = (
    host, port, timeout=None, token=None, tls_ca=None, tls_server_name=None, timestamps=None, jitter_buffer=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn connect(
    py: Python<'_>,
    host: &str,
    port: u16,
    timeout: Option<f64>,
    token: Option<String>,
    tls_ca: Option<std::path::PathBuf>,
    tls_server_name: Option<String>,
    timestamps: Option<&Bound<'_, PyAny>>,
    jitter_buffer: Option<&Bound<'_, PyAny>>,
) -> PyResult<Connection> {
    let timestamps = timestamps_keyword(timestamps)?;
    let mut options = ConnectOptions::default();
    if let Some(mode) = crate::timing::delay_mode(jitter_buffer)? {
        options = options.jitter_buffer(mode);
    }
    if let Some(timeout) = timeout {
        deadline(Some(timeout))?;
        options = options.timeout(Duration::from_secs_f64(timeout.max(0.001)));
    }
    if let Some(token) = token {
        midisock::validate_token(&token).py_err()?;
        options = options.token(token);
    }
    if let Some(ca) = tls_ca {
        let mut tls = TlsClient::with_ca_file(&ca).py_err()?;
        if let Some(name) = tls_server_name {
            tls = tls.server_name(name);
        }
        options = options.tls(tls);
    } else if tls_server_name.is_some() {
        return Err(pyo3::exceptions::PyValueError::new_err("tls_server_name needs tls_ca"));
    }
    let host = host.to_owned();
    let port = py.allow_threads(|| midisock::connect_with((host.as_str(), port), &options)).py_err()?;
    Ok(Connection::wrap(port, timestamps))
}

/// `adopt(fd, timestamps=False, jitter_buffer=None)`: a connection on a TCP socket the Python
/// program connected or accepted itself (mido's `SocketPort(host, port, conn=socket)`); with a
/// jitter buffer, its first bytes ask the peer for stamps. Takes ownership of `fd` — the caller
/// passes a duplicate of its socket's descriptor — and closes it on every error: a closed
/// descriptor is a `ValueError`, one that is not a connected TCP socket (a file, a pipe, a UDP or
/// Unix socket) a `TypeError`, one not connected an `OSError` (ENOTCONN); a bad keyword is the
/// error `connect` gives for it.
#[pyfunction]
#[pyo3(signature = (fd, timestamps=None, jitter_buffer=None))]
pub fn adopt(
    fd: RawFd,
    timestamps: Option<&Bound<'_, PyAny>>,
    jitter_buffer: Option<&Bound<'_, PyAny>>,
) -> PyResult<Connection> {
    let keywords = timestamps_keyword(timestamps).and_then(|t| Ok((t, crate::timing::delay_mode(jitter_buffer)?)));
    let (timestamps, jitter_buffer) = match keywords {
        Ok(k) => k,
        Err(e) => {
            // SAFETY: the caller handed the descriptor over; closing it on this error is ours.
            unsafe { libc::close(fd) };
            return Err(e);
        }
    };
    // SAFETY: F_GETFD only reads the descriptor's flags; on a number that is not open it fails
    // with EBADF and nothing else happens.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(PyValueError::new_err(format!("conn has no open file descriptor ({fd})")));
    }
    // SAFETY: the descriptor is open and the caller handed it over: from here on it is ours
    // alone, and dropping `owned` (on an error) or the port closes it exactly once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    check_tcp_socket(SockRef::from(&owned))?;
    let stream = TcpStream::from(owned);
    let adopted = match jitter_buffer {
        Some(mode) => SocketPort::from_stream_with_jitter_buffer(stream, PlayoutConfig::new(mode)),
        None => SocketPort::from_stream(stream),
    };
    match adopted {
        Ok(port) => Ok(Connection::wrap(port, timestamps)),
        Err(midisock::Error::Io(e)) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(PyOSError::new_err((
            libc::ENOTCONN,
            "conn is a TCP socket that is not connected (a listening socket, or one not connected yet)",
        ))),
        Err(e) => Err(e).py_err(),
    }
}

/// `timestamps=`: absent is `False`.
pub fn timestamps_keyword(value: Option<&Bound<'_, PyAny>>) -> PyResult<Timestamps> {
    value.map_or(Ok(Timestamps::Off), Timestamps::from_py)
}

/// `TypeError` unless the socket is a TCP one (stream type, IPv4 or IPv6, protocol TCP): only
/// that is what the protocol runs on.
fn check_tcp_socket(socket: SockRef<'_>) -> PyResult<()> {
    let not_tcp = |what: &str| PyTypeError::new_err(format!("conn must be a connected TCP socket; it is {what}"));
    match socket.r#type() {
        Ok(Type::STREAM) => {}
        Ok(Type::DGRAM) => return Err(not_tcp("a datagram (UDP) socket")),
        Ok(_) => return Err(not_tcp("a socket of another type")),
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => return Err(not_tcp("not a socket (a file or a pipe?)")),
        Err(e) => return Err(e.into()),
    }
    let domain = socket.domain()?;
    if domain != Domain::IPV4 && domain != Domain::IPV6 {
        return Err(not_tcp("a socket of another address family (a Unix socket?)"));
    }
    if socket.protocol()? != Some(Protocol::TCP) {
        return Err(not_tcp("a stream socket of another protocol"));
    }
    Ok(())
}

#[pymethods]
impl Connection {
    /// `host:port` of the peer.
    #[getter]
    fn name(&self) -> &str {
        self.port().name()
    }

    /// `(host, port)` of the peer.
    #[getter]
    fn peer_address(&self) -> PyResult<(String, u16)> {
        let addr = self.port().peer_addr().py_err()?;
        Ok((addr.ip().to_string(), addr.port()))
    }

    /// `(host, port)` of this end.
    #[getter]
    fn local_address(&self) -> PyResult<(String, u16)> {
        let addr = self.port().local_addr().py_err()?;
        Ok((addr.ip().to_string(), addr.port()))
    }

    #[getter]
    fn closed(&self) -> bool {
        self.port().is_closed()
    }

    /// Sends one message; `ValueError` if this port was closed before the call (mido's error),
    /// `PortClosedError` if the peer has gone.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<()> {
        let port = self.port();
        if port.is_closed() {
            return Err(PyValueError::new_err("send() called on closed port"));
        }
        let message = from_mido(message)?;
        py.allow_threads(|| port.send(&message)).py_err()
    }

    /// Sends a sequence of messages in one write: all valid and all sent, or nothing sent.
    fn send_many(&self, py: Python<'_>, messages: &Bound<'_, PyAny>) -> PyResult<()> {
        let messages = messages
            .try_iter()
            .map_err(|_| PyTypeError::new_err("send_many() takes an iterable of mido.Message"))?
            .map(|m| from_mido(&m?))
            .collect::<PyResult<Vec<_>>>()?;
        let port = self.port();
        if port.is_closed() {
            return Err(PyValueError::new_err("send_many() called on closed port"));
        }
        py.allow_threads(|| port.send_all(&messages)).py_err()
    }

    /// The next message; waits at most `timeout` seconds (`None`: for ever) and returns `None`
    /// when none came. `PortClosedError` once the port is closed or the peer's stream is used up.
    /// `ValueError` if the port was closed (or used up) before the call, as mido raises.
    #[pyo3(signature = (timeout=None))]
    fn receive<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let deadline = deadline(timeout)?;
        let port = self.port();
        if port.is_closed() {
            return Err(PyValueError::new_err("receive() called on closed port"));
        }
        let received = interruptible(py, deadline, |limit| port.receive_interruptible(limit))?;
        received.map(|r| to_mido(py, &r, self.timestamps)).transpose()
    }

    /// A message that has arrived, or `None`; never waits.
    fn poll<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Closed: nothing more will come, and mido's poll() says so with None.
        match self.port().try_receive_stamped() {
            Ok(Some(r)) => to_mido(py, &r, self.timestamps).map(Some),
            Ok(None) | Err(midisock::Error::Closed) => Ok(None),
            Err(e) => Err(crate::errors::to_py(e)),
        }
    }

    /// Every message that has arrived, as a list (empty when none); never waits.
    fn pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let port = self.port();
        let mut taken = Vec::new();
        while let Some(r) = port.try_receive_stamped().py_err()? {
            taken.push(r);
        }
        Ok(received_list(py, taken, self.timestamps)?.into_any())
    }

    /// Waits like `receive(timeout)` for one message, then takes every other message that has
    /// arrived: a list, empty on timeout. The fast way to drain a busy stream.
    #[pyo3(signature = (timeout=None))]
    fn receive_batch<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyList>> {
        let port = self.port();
        receive_batch(
            py,
            timeout,
            self.timestamps,
            |limit| port.receive_interruptible(limit),
            || port.try_receive_stamped(),
        )
    }

    /// Closes the connection (the peer sees end-of-stream; a blocked receive returns). With
    /// autoreset on, hanging notes are released and mido's reset set is sent first.
    fn close(&self, py: Python<'_>) {
        let port = self.port();
        // The callback thread ends with the connection; joined here so no thread of this port
        // outlives close() (or the interpreter, which closes every open port at exit).
        py.allow_threads(|| {
            port.close();
            port.remove_callback();
        });
    }

    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        let port = self.port();
        py.allow_threads(|| port.reset()).py_err()
    }

    fn panic(&self, py: Python<'_>) -> PyResult<()> {
        let port = self.port();
        py.allow_threads(|| port.panic()).py_err()
    }

    fn set_autoreset(&self, on: bool) {
        self.port().set_autoreset(on);
    }

    /// Hands every incoming message to `callback(message)` on the port's reader thread; a second
    /// call replaces the function. `None` stops the reader thread (joined before this returns,
    /// unless called from the callback itself) and messages go to `receive()` again.
    fn set_callback(&self, py: Python<'_>, callback: Option<Py<PyAny>>) -> PyResult<()> {
        let port = self.port();
        let Some(callback) = callback else {
            // The reader thread may be waiting for the GIL to deliver: let go of it while joining.
            py.allow_threads(|| port.remove_callback());
            self.callback.clear();
            return Ok(());
        };
        if self.callback.set(callback)? {
            let slot = self.callback.clone();
            let timestamps = self.timestamps;
            let installed = port.set_callback(move |received| callback::deliver(&slot, &received, timestamps));
            if let Err(e) = installed {
                self.callback.clear();
                return Err(crate::errors::to_py(e));
            }
        }
        Ok(())
    }

    /// The jitter buffer's state as a dict, or `None` when the port has none.
    #[getter]
    fn playout_stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.port().playout_stats().map(|s| crate::timing::stats_dict(py, &s)).transpose()
    }

    /// True once the peer asked for stamps (it has a jitter buffer) and this port answers:
    /// what it sends carries its send time.
    #[getter]
    fn sends_stamps(&self) -> bool {
        self.port().sends_stamps()
    }

    /// What the receiving parser ignored or dropped: a dict of counters.
    fn parser_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.port().parser_stats();
        dict_of!(
            py,
            stats,
            stray_data_bytes,
            sysex_overflows,
            sysex_aborted,
            partial_messages_dropped,
            undefined_status_bytes
        )
    }

    fn __repr__(&self) -> String {
        format!("<midisock._core.Connection {} {}>", self.port().name(), if self.closed() { "closed" } else { "open" })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping the core port joins its callback thread, which may be waiting for the GIL this
        // thread holds: let go of the GIL for that.
        if let Some(port) = self.port.take() {
            Python::with_gil(|py| py.allow_threads(move || drop(port)));
        }
    }
}

/// `receive_batch(timeout)` of a connection or a server: waits with `wait` (an interruptible
/// wait of the core, GIL released) for one message, then takes what `try_next` has without waiting (the rest of what
/// the last read brought); a list, empty on timeout or once closed (`closed` tells which).
pub fn receive_batch<'py>(
    py: Python<'py>,
    timeout: Option<f64>,
    timestamps: Timestamps,
    wait: impl Fn(Option<Duration>) -> midisock::Result<Option<Received>> + Sync,
    try_next: impl Fn() -> midisock::Result<Option<Received>>,
) -> PyResult<Bound<'py, PyList>> {
    let mut taken: Vec<Received> = Vec::new();
    match interruptible(py, deadline(timeout)?, wait) {
        Ok(Some(first)) => taken.push(first),
        Ok(None) => {}
        Err(e) if e.is_instance_of::<crate::errors::PortClosedError>(py) => {}
        Err(e) => return Err(e),
    }
    if !taken.is_empty() {
        while let Ok(Some(r)) = try_next() {
            taken.push(r);
        }
    }
    received_list(py, taken, timestamps)
}

/// A Python list from messages (used by the server too).
pub fn received_list<'py>(
    py: Python<'py>,
    taken: Vec<Received>,
    timestamps: Timestamps,
) -> PyResult<Bound<'py, PyList>> {
    let messages = taken.iter().map(|r| to_mido(py, r, timestamps)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, messages)
}
