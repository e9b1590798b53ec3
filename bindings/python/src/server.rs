//! `Server`: the core's `PortServer`, as `midisock.sockets.PortServer` uses it, with the
//! protections of its `ServerConfig` taken as keyword arguments.

use crate::callback::{self, Slot};
use crate::connection::{received_list, Connection};
use crate::convert::{from_mido, to_mido, Timestamps};
use crate::errors::IntoPyResult;
use crate::wait::{deadline, interruptible};
use midisock::{PortServer, ServerConfig, SysexPolicy, TlsServer};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::Arc;
use std::time::Duration;

#[pyclass(frozen, module = "midisock._core")]
pub struct Server {
    /// `Some` until the object is dropped (see `Drop`).
    server: Option<Arc<PortServer>>,
    timestamps: Timestamps,
    callback: Slot,
}

/// `bind(host, port, ...)`: a listening server. Keywords map to the core's `ServerConfig`.
#[pyfunction]
#[pyo3(signature = (
    host, port, *, timestamps=None, jitter_buffer=None, allow=None, sysex=true, max_sysex_len=None, max_clients=None,
    max_client_queue=None, max_inbox_bytes=None, relay=false, token=None, tls_cert=None, tls_key=None,
    auth_timeout=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn bind(
    py: Python<'_>,
    host: &str,
    port: u16,
    timestamps: Option<&Bound<'_, PyAny>>,
    jitter_buffer: Option<&Bound<'_, PyAny>>,
    allow: Option<Vec<String>>,
    sysex: bool,
    max_sysex_len: Option<usize>,
    max_clients: Option<usize>,
    max_client_queue: Option<usize>,
    max_inbox_bytes: Option<usize>,
    relay: bool,
    token: Option<String>,
    tls_cert: Option<std::path::PathBuf>,
    tls_key: Option<std::path::PathBuf>,
    auth_timeout: Option<f64>,
) -> PyResult<Server> {
    let timestamps = crate::connection::timestamps_keyword(timestamps)?;
    let mut config = ServerConfig::default().relay(relay);
    if let Some(mode) = crate::timing::delay_mode(jitter_buffer)? {
        config = config.jitter_buffer(mode);
    }
    if !sysex {
        config = config.sysex(SysexPolicy::Deny);
    }
    for peer in allow.unwrap_or_default() {
        config = config.allow(&peer).py_err()?;
    }
    let positive = |name: &str, value: usize| {
        if value == 0 {
            Err(PyValueError::new_err(format!("{name} must be at least 1")))
        } else {
            Ok(value)
        }
    };
    if let Some(n) = max_sysex_len {
        config = config.max_sysex_len(positive("max_sysex_len", n)?);
    }
    if let Some(n) = max_clients {
        config = config.max_clients(positive("max_clients", n)?);
    }
    if let Some(n) = max_client_queue {
        config = config.max_client_queue(positive("max_client_queue", n)?);
    }
    if let Some(n) = max_inbox_bytes {
        config = config.max_inbox_bytes(positive("max_inbox_bytes", n)?);
    }
    if let Some(token) = token {
        config = config.token(token).py_err()?;
    }
    if let Some(seconds) = auth_timeout {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(PyValueError::new_err("auth_timeout must be seconds > 0"));
        }
        config = config.auth_timeout(Duration::from_secs_f64(seconds));
    }
    match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => config = config.tls(TlsServer::from_pem_files(cert, key).py_err()?),
        (None, None) => {}
        _ => return Err(PyValueError::new_err("TLS needs both tls_cert and tls_key")),
    }
    let host = host.to_owned();
    let server = py.allow_threads(|| PortServer::bind_with((host.as_str(), port), config)).py_err()?;
    Ok(Server { server: Some(Arc::new(server)), timestamps, callback: Slot::default() })
}

impl Server {
    fn server(&self) -> &Arc<PortServer> {
        self.server.as_ref().expect("the server is only taken by Drop")
    }
}

#[pymethods]
impl Server {
    /// `host:port` as given, with the real port when 0 was given.
    #[getter]
    fn name(&self) -> &str {
        self.server().name()
    }

    /// Every `(host, port)` listened on.
    #[getter]
    fn addresses(&self) -> Vec<(String, u16)> {
        self.server().local_addrs().iter().map(|a| (a.ip().to_string(), a.port())).collect()
    }

    /// `(host, port)` of each client the server sends to.
    #[getter]
    fn client_addresses(&self) -> Vec<(String, u16)> {
        self.server().client_addrs().iter().map(|a| (a.ip().to_string(), a.port())).collect()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.server().is_closed()
    }

    /// Broadcasts to every connected client; never blocks on a slow one.
    fn send(&self, message: &Bound<'_, PyAny>) -> PyResult<()> {
        let message = from_mido(message)?;
        self.server().send(&message).py_err()
    }

    fn send_many(&self, messages: &Bound<'_, PyAny>) -> PyResult<()> {
        let messages = messages
            .try_iter()
            .map_err(|_| PyTypeError::new_err("send_many() takes an iterable of mido.Message"))?
            .map(|m| from_mido(&m?))
            .collect::<PyResult<Vec<_>>>()?;
        if self.server().is_closed() {
            return Err(PyValueError::new_err("send_many() called on closed port"));
        }
        self.server().send_all(&messages).py_err()
    }

    /// The next message from any client; `None` after `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn receive<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let deadline = deadline(timeout)?;
        let server = self.server();
        if server.is_closed() {
            return Err(PyValueError::new_err("receive() called on closed port"));
        }
        let received = interruptible(py, deadline, |limit| server.receive_interruptible(limit))?;
        received.map(|r| to_mido(py, &r, self.timestamps)).transpose()
    }

    fn poll<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Closed: nothing more will come, and mido's poll() says so with None.
        match self.server().try_receive_stamped() {
            Ok(Some(r)) => to_mido(py, &r, self.timestamps).map(Some),
            Ok(None) | Err(midisock::Error::Closed) => Ok(None),
            Err(e) => Err(crate::errors::to_py(e)),
        }
    }

    fn pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let server = self.server();
        let mut taken = Vec::new();
        while let Some(r) = server.try_receive_stamped().py_err()? {
            taken.push(r);
        }
        received_list(py, taken, self.timestamps)
    }

    /// Waits like `receive(timeout)` for one message from any client, then takes every other
    /// one that has arrived: a list, empty on timeout.
    #[pyo3(signature = (timeout=None))]
    fn receive_batch<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyList>> {
        let server = self.server();
        crate::connection::receive_batch(
            py,
            timeout,
            self.timestamps,
            |limit| server.receive_interruptible(limit),
            || server.try_receive_stamped(),
        )
    }

    /// A client's connection, handed over whole; `None` after `timeout` seconds (0: don't wait).
    #[pyo3(signature = (timeout=None))]
    fn accept(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Connection>> {
        let server = self.server();
        let port = if timeout == Some(0.0) {
            server.try_accept().py_err()?
        } else {
            interruptible(py, deadline(timeout)?, |limit| server.accept_interruptible(limit))?
        };
        Ok(port.map(|p| Connection::wrap(p, self.timestamps)))
    }

    /// Stops listening and closes every connection the server serves (not those handed out by
    /// `accept`); a blocked receive or accept returns.
    fn close(&self, py: Python<'_>) {
        let server = self.server();
        // Joins the callback thread, which may be waiting for the GIL to deliver.
        py.allow_threads(|| server.close());
    }

    fn reset(&self) -> PyResult<()> {
        self.server().reset().py_err()
    }

    fn panic(&self) -> PyResult<()> {
        self.server().panic().py_err()
    }

    /// Each client's jitter buffer state: `{(host, port): dict}` (empty without a jitter buffer).
    #[getter]
    fn playout_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (addr, stats) in self.server().playout_stats() {
            dict.set_item((addr.ip().to_string(), addr.port()), crate::timing::stats_dict(py, &stats)?)?;
        }
        Ok(dict)
    }

    /// Counters: connections accepted and refused, slow clients dropped, sysex denied, ...
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.server().stats();
        dict_of!(
            py,
            s,
            connections_accepted,
            connections_refused,
            slow_clients_dropped,
            sysex_denied,
            sysex_oversized,
            notes_released,
            auth_failures
        )
    }

    /// Hands every message from every client to `callback(message)` on the server's callback
    /// thread; a second call replaces the function, `None` stops the thread (joined before this
    /// returns, unless called from the callback) and messages go to `receive()` again.
    fn set_callback(&self, py: Python<'_>, callback: Option<Py<PyAny>>) -> PyResult<()> {
        let server = self.server();
        let Some(callback) = callback else {
            // The callback thread may be waiting for the GIL to deliver: let go of it meanwhile.
            py.allow_threads(|| server.remove_callback());
            self.callback.clear();
            return Ok(());
        };
        if self.callback.set(callback)? {
            let slot = self.callback.clone();
            let timestamps = self.timestamps;
            let installed = server.set_callback(move |received| callback::deliver(&slot, &received, timestamps));
            if let Err(e) = installed {
                self.callback.clear();
                return Err(crate::errors::to_py(e));
            }
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("<midisock._core.Server {} {}>", self.name(), if self.closed() { "closed" } else { "open" })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The callback thread may be waiting for the GIL this thread holds: let go of it.
        if let Some(server) = self.server.take() {
            Python::with_gil(|py| {
                py.allow_threads(|| {
                    server.close();
                    drop(server);
                })
            });
        }
    }
}
