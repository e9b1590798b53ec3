"""MIDI over TCP/IP: the names of ``mido.sockets``, on midisock's Rust core.

``PortServer``, ``SocketPort``, ``connect``, ``parse_address`` and ``format_address`` behave as
mido documents them and talk to mido's socket ports byte for byte::

    from midisock.sockets import PortServer, connect

    for message in PortServer('localhost', 8080):
        print(message)

Messages in and out are ``mido.Message``. Waits release the GIL and can be interrupted with
Ctrl-C. Beyond mido: receive timeouts (``receive(timeout=...)``), ``callback=``, receive
timestamps (``timestamps=True``), and the server's protections (``allow=``, ``sysex=``,
``token=``, TLS, limits, ``relay=``). docs/python.md lists every difference from mido.
"""

import atexit
import os
import threading
import weakref

from mido.messages import Message
from mido.parser import Parser
from mido.ports import BaseIOPort, MultiPort

from . import _core
from ._core import PortClosedError

__all__ = ['PortServer', 'SocketPort', 'connect', 'parse_address', 'format_address', 'PortClosedError']


def parse_address(address):
    """Parse an address on the format ``host:port`` (or ``[ipv6]:port``).

    Returns a tuple ``(host, port)``. Raises ValueError if the format is invalid or the port is
    not an integer in 1..65535.
    """
    if not isinstance(address, str):
        raise ValueError(f'address must be a str like "host:port", got {type(address).__name__}')
    if address.startswith('['):
        host, bracket, rest = address[1:].partition(']')
        if not bracket or not rest.startswith(':') or ':' not in host:
            raise ValueError('an IPv6 address is written [address]:port')
        port = rest[1:]
    else:
        words = address.split(':')
        if len(words) != 2:
            raise ValueError('address must contain exactly one colon (IPv6: [address]:port)')
        host, port = words
    try:
        port = int(port)
    except ValueError as error:
        raise ValueError('port number must be an integer') from error
    # Port 0 is not a port anyone can connect to.
    if not 0 < port < 2**16:
        raise ValueError('port number out of range')
    return (host, port)


def format_address(host, portno):
    """``host:port``, the inverse of parse_address() (IPv6 hosts in brackets)."""
    if ':' in host and not host.startswith('['):
        host = f'[{host}]'
    return f'{host}:{portno:d}'


def _check_port_number(portno, allow_zero):
    if isinstance(portno, bool) or not isinstance(portno, int):
        raise TypeError(f'port number must be an int, got {type(portno).__name__}')
    low = 0 if allow_zero else 1
    if not low <= portno < 2**16:
        raise ValueError(f'port number {portno} out of range {low}..65535')


def _check_host(host):
    if not isinstance(host, str):
        raise TypeError(f'host must be a str, got {type(host).__name__}')


def _init_port_attributes(port, name):
    # What mido's BasePort.__init__ sets. It cannot be called: it returns early when the object
    # already has `closed`, which ours always has (a property of the connection).
    port.name = name
    port._lock = threading.RLock()
    port._parser = Parser()
    port._messages = port._parser.messages


# Ports and servers still open at exit are closed before the interpreter goes away, so no
# reader thread calls into a finalizing interpreter.
_open = weakref.WeakSet()


@atexit.register
def _close_all():
    for port in list(_open):
        try:
            port.close()
        except Exception:
            pass


def _adopt_socket(sock, timestamps, jitter_buffer):
    """A connection on the TCP socket ``sock`` (a ``socket.socket``), through a duplicate of its
    descriptor: the socket object and the port each own and close their own."""
    fileno = getattr(sock, 'fileno', None)
    if isinstance(sock, int) or not callable(fileno):
        raise TypeError(f'conn must be a connected TCP socket (socket.socket), not {type(sock).__name__}')
    fd = fileno()
    if not isinstance(fd, int) or fd < 0:
        raise ValueError('conn is closed')
    return _core.adopt(os.dup(fd), timestamps=timestamps, jitter_buffer=jitter_buffer)


class _Receiving:
    """What a SocketPort and a PortServer share: a callback, and receive(), poll(),
    iter_pending(), receive_batch() and iteration, on the ``_core`` object in ``self._source``
    (a connection or a server, which have the same receiving methods)."""

    @property
    def callback(self):
        """The function incoming messages go to, or None (then receive() and iteration work)."""
        return self._callback

    @callback.setter
    def callback(self, function):
        # None stops the reader thread (joined before this returns) and hands messages back to
        # receive(); messages it had not delivered yet are not lost.
        self._source.set_callback(function)
        self._callback = function

    def _check_receivable(self):
        if not self.is_input:
            raise ValueError('Not an input port')
        if self._callback is not None:
            raise ValueError('a callback is set for this port')

    def receive(self, block=True, timeout=None):
        """Return the next message.

        Waits for one when ``block`` is true: for ever, or at most ``timeout`` seconds (then
        None). With ``block=False``, return None at once if nothing has arrived. Raises
        ValueError when called on a closed port with nothing left to read, and OSError when the
        port closes while waiting.
        """
        self._check_receivable()
        if not block:
            return self._source.poll()
        try:
            # ValueError when the port is closed before the call, as in mido.
            return self._source.receive(timeout)
        except PortClosedError as error:
            raise OSError('port closed during receive()') from error

    def poll(self):
        """The next message if one has arrived, else None. Same as ``receive(block=False)``."""
        self._check_receivable()
        return self._source.poll()

    def iter_pending(self):
        """Iterate through the messages that have arrived, without waiting."""
        self._check_receivable()
        poll = self._source.poll
        while True:
            msg = poll()
            if msg is None:
                return
            yield msg

    def receive_batch(self, timeout=None):
        """Wait for a message like receive(timeout=...), then return a list of it and every
        other message that has arrived (empty on timeout, or once the port is closed)."""
        self._check_receivable()
        try:
            return self._source.receive_batch(timeout)
        except PortClosedError:
            return []

    def __iter__(self):
        """Iterate through messages until the port closes (or, for a client, the other end)."""
        self._check_receivable()
        receive = self._source.receive
        while True:
            try:
                yield receive(None)
            except (PortClosedError, ValueError):
                # Closed before or during the wait: every message has been yielded.
                if self._source.closed:
                    return
                raise

    def _send_many(self, messages):
        if not self.is_output:
            raise ValueError('Not an output port')
        try:
            # TypeError for anything but mido.Message, ValueError when closed, nothing sent then.
            self._source.send_many(messages)
        except PortClosedError as error:
            raise OSError('the other end has disconnected') from error


class SocketPort(_Receiving, BaseIOPort):
    """One end of a connection: what ``connect()`` and ``PortServer.accept()`` return.

    ``SocketPort(host, portno)`` connects to a server; ``SocketPort(host, portno, conn=sock)``
    uses a TCP socket the program accepted (or connected) itself instead, as in mido: the port
    reads and writes that connection, ``host`` and ``portno`` only name the port. The port works
    on its own duplicate of the socket's descriptor and switches the socket to blocking mode;
    closing the port ends the connection (the peer sees end-of-stream), and ``sock`` should then
    be closed too.

    Keywords beyond mido: ``callback=`` (called with each message on a reader thread; the port
    can then not be read directly), ``timestamps=True`` (``msg.time`` is the receive time on the
    ``time.monotonic()`` clock instead of 0; ``'sender'``: the sender's clock, see
    docs/python.md), ``autoreset=True`` (release held notes and send reset() on close),
    ``timeout=`` (seconds for connecting), ``token=`` (for a server started with one),
    ``tls_ca=``/``tls_server_name=`` (TLS with that CA file), ``jitter_buffer=`` (milliseconds or
    ``'auto'``: play messages out at the sender's pace plus a fixed or adaptive delay; a midisock
    sender stamps them, others are received as they arrive; with ``conn=`` too).
    """

    def __init__(self, host, portno, conn=None, *, callback=None, timestamps=False, autoreset=False,
                 timeout=None, token=None, tls_ca=None, tls_server_name=None, jitter_buffer=None):
        if conn is None:
            _check_host(host)
            _check_port_number(portno, allow_zero=False)
            conn = _core.connect(host, portno, timeout=timeout, token=token, tls_ca=tls_ca,
                                 tls_server_name=tls_server_name, timestamps=timestamps,
                                 jitter_buffer=jitter_buffer)
        elif not isinstance(conn, _core.Connection):
            # With a jitter buffer, the port's first bytes ask the peer for stamps.
            conn = _adopt_socket(conn, timestamps, jitter_buffer)
        elif jitter_buffer is not None:
            # A connection PortServer.accept() handed over reads as the server was set up.
            raise ValueError('a connection from PortServer.accept() has the jitter buffer of its server')
        self._conn = self._source = conn
        self._callback = None
        _init_port_attributes(self, format_address(host, portno))
        self.autoreset = autoreset
        _open.add(self)
        if callback is not None:
            self.callback = callback

    def _get_device_type(self):
        return 'socket'

    # mido's BasePort assigns `closed` while opening; ours always reflects the connection.
    @property
    def closed(self):
        return self._conn.closed

    @closed.setter
    def closed(self, value):
        pass

    @property
    def autoreset(self):
        return self._autoreset

    @autoreset.setter
    def autoreset(self, on):
        self._autoreset = bool(on)
        self._conn.set_autoreset(self._autoreset)

    @property
    def playout_stats(self):
        """The jitter buffer's state (a dict: offset, jitter, delay in force, late messages, ...;
        times in seconds), or None when the port has no jitter buffer."""
        return self._conn.playout_stats

    @property
    def sends_stamps(self):
        """True once the other end asked for stamps (it has a jitter buffer) and this port
        answered: what it sends from then on carries its send time. A port that only sends
        notices the request when it sends."""
        return self._conn.sends_stamps

    @property
    def peer_address(self):
        """``(host, port)`` of the other end."""
        return self._conn.peer_address

    @property
    def local_address(self):
        """``(host, port)`` of this end."""
        return self._conn.local_address

    def send(self, msg):
        """Send a message (a mido.Message) to the other end."""
        if not self.is_output:
            raise ValueError('Not an output port')
        if not isinstance(msg, Message):
            raise TypeError('argument to send() must be a Message')
        try:
            # ValueError when this port is closed, as in mido.
            self._conn.send(msg)
        except PortClosedError as error:
            raise OSError('the other end has disconnected') from error

    def send_many(self, messages):
        """Send several messages in one write: all of them, or none if one is invalid."""
        self._send_many(messages)

    def reset(self):
        """Send "All Notes Off" and "Reset All Controllers" on all channels."""
        if not self._conn.closed:
            self._conn.reset()

    def panic(self):
        """Send "All Sounds Off" on all channels."""
        if not self._conn.closed:
            self._conn.panic()

    def parser_stats(self):
        """Counters of what the receiving parser ignored or dropped."""
        return self._conn.parser_stats()

    def close(self):
        """Close the connection; the other end sees it closed at once. Closing twice is harmless."""
        conn = getattr(self, '_conn', None)
        if conn is not None:
            conn.close()
        _open.discard(self)

    def __del__(self):
        self.close()


class PortServer(_Receiving, MultiPort):
    """A server that any number of clients (midisock or mido) connect to.

    Use it as a port (receive from every client, send to every client, iterate) or call
    ``accept()`` to take clients one by one as SocketPorts; both can be mixed.

    ``host`` '' listens on every address (IPv4 and IPv6), 'localhost' on 127.0.0.1 and ::1;
    ``portno`` 0 picks a free port (see ``.name`` or ``.address``). ``backlog`` is accepted for
    mido compatibility; the server accepts connections as fast as they come.

    Keywords beyond mido: ``callback=``, ``timestamps=True``, ``allow=['10.0.0.0/8', ...]``
    (peers allowed to connect), ``sysex=False`` (drop sysex from clients), ``token=`` (clients
    must connect with the same token), ``tls_cert=``/``tls_key=`` (PEM files), ``relay=True``
    (pass each client's messages on to the others), ``max_clients=``, ``max_sysex_len=``,
    ``max_client_queue=``, ``max_inbox_bytes=``, ``auth_timeout=``, ``jitter_buffer=``
    (milliseconds or ``'auto'``, for every client that stamps its messages).
    """

    def __init__(self, host, portno, backlog=1, *, callback=None, timestamps=False, **protections):
        _check_host(host)
        _check_port_number(portno, allow_zero=True)
        if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
            raise ValueError('backlog must be an int >= 0')
        self._server = self._source = _core.bind(host, portno, timestamps=timestamps, **protections)
        self._callback = None
        self.yield_ports = False
        _init_port_attributes(self, format_address(host, self._server.addresses[0][1]))
        _open.add(self)
        if callback is not None:
            self.callback = callback

    def _get_device_type(self):
        return 'server'

    @property
    def closed(self):
        return self._server.closed

    @closed.setter
    def closed(self, value):
        pass

    @property
    def ports(self):
        """``host:port`` of each client the server currently serves (receives from and
        broadcasts to). Clients taken with accept() are yours, not listed here."""
        return [format_address(host, port) for host, port in self._server.client_addresses]

    @property
    def address(self):
        """``(host, port)`` the server listens on (the first, when it listens on several)."""
        return self._server.addresses[0]

    @property
    def addresses(self):
        """Every ``(host, port)`` the server listens on."""
        return self._server.addresses

    @property
    def playout_stats(self):
        """``{'host:port': dict}``: the jitter buffer's state for each client that has one."""
        return {format_address(host, port): stats for (host, port), stats in self._server.playout_stats.items()}

    def accept(self, block=True, timeout=None):
        """Accept a connection from a client.

        Waits until a client connects (at most ``timeout`` seconds if given) and returns a
        SocketPort. With ``block=False``, returns None at once if no client is waiting.
        """
        if self._server.closed:
            raise ValueError('accept() called on closed server')
        try:
            conn = self._server.accept(0.0 if not block else timeout)
        except PortClosedError as error:
            raise OSError('server closed during accept()') from error
        if conn is None:
            return None
        host, port = conn.peer_address
        return SocketPort(host, port, conn=conn)

    def send(self, msg):
        """Send a message to every connected client."""
        if not isinstance(msg, Message):
            raise TypeError('argument to send() must be a Message')
        if self._server.closed:
            raise ValueError('send() called on closed port')
        self._server.send(msg)

    def send_many(self, messages):
        """Send several messages to every client, in order."""
        self._send_many(messages)

    def reset(self):
        """Send "All Notes Off" and "Reset All Controllers" to every client."""
        if not self._server.closed:
            self._server.reset()

    def panic(self):
        """Send "All Sounds Off" to every client."""
        if not self._server.closed:
            self._server.panic()

    def stats(self):
        """Counters: connections accepted and refused, slow clients dropped, sysex denied, ..."""
        return self._server.stats()

    def close(self):
        """Stop listening and close every client connection (not those taken with accept())."""
        server = getattr(self, '_server', None)
        if server is not None:
            server.close()
        _open.discard(self)

    def __del__(self):
        self.close()


def connect(host, portno, **options):
    """Connect to a socket port server (midisock's or mido's).

    Returns a SocketPort connected to the server; messages can be sent either way. Takes
    SocketPort's keywords (``callback=``, ``timestamps=``, ``timeout=``, ``token=``, ...).
    """
    return SocketPort(host, portno, **options)
