"""SocketPort(host, portno, conn=sock): a port on a TCP socket the program accepted itself, as in
mido 1.3.3, and every kind of wrong `conn` refused with a clear Python error."""

import errno
import os
import socket

import mido
import mido.sockets
import pytest

from conftest import WAIT, every_message_type, mido_receive_all, receive_all
from midisock.sockets import SocketPort, connect


def open_fds():
    return set(os.listdir('/proc/self/fd'))


@pytest.fixture
def listener():
    """A plain Python listening socket on 127.0.0.1, any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        s.listen()
        s.settimeout(WAIT)
        yield s


def test_a_socket_accepted_in_python_carries_messages_both_ways_with_a_mido_client(listener):
    messages = every_message_type()
    client = mido.sockets.connect('127.0.0.1', listener.getsockname()[1])
    conn, (host, portno) = listener.accept()
    try:
        port = SocketPort(host, portno, conn=conn)
        assert port.name == f'127.0.0.1:{portno}'
        assert port.peer_address == client._socket.getsockname()
        for message in messages:
            client.send(message)
        received = receive_all(port, len(messages))
        assert received == messages
        assert all(isinstance(m, mido.Message) for m in received)
        for message in messages:
            port.send(message)
        assert mido_receive_all(client, len(messages)) == messages

        # Closing the port ends the connection although `conn` still holds its own descriptor.
        port.close()
        assert port.closed
        client._socket.settimeout(WAIT)
        assert client._socket.recv(1) == b''
    finally:
        conn.close()
        client._socket.close()  # mido 1.3.3's close() leaves the socket open


def test_the_port_owns_a_duplicate_so_closing_the_python_socket_does_not_break_it(listener):
    with connect('127.0.0.1', listener.getsockname()[1]) as client:
        conn, (host, portno) = listener.accept()
        # A timeout makes Python's socket non-blocking underneath; the port still blocks properly.
        conn.settimeout(0.5)
        with SocketPort(host, portno, conn=conn, timestamps=True) as port:
            conn.close()
            client.send(mido.Message('note_on', note=60))
            message = port.receive(timeout=WAIT)
            assert message.copy(time=0) == mido.Message('note_on', note=60)
            assert message.time > 0  # timestamps=True applies to an adopted socket too
            port.send(mido.Message('control_change', control=7, value=100))
            assert client.receive(timeout=WAIT) == mido.Message('control_change', control=7, value=100)
        # The port closed: the client sees the end of the stream (a timeout would return None).
        with pytest.raises(OSError, match='closed'):
            client.receive(timeout=WAIT)
        assert client.closed


def test_an_accepted_ipv6_socket(listener):
    try:
        server = socket.create_server(('::1', 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip('no IPv6 loopback on this machine')
    with server, connect('::1', server.getsockname()[1]) as client:
        server.settimeout(WAIT)
        conn, address = server.accept()
        with conn, SocketPort(address[0], address[1], conn=conn) as port:
            assert port.name == f'[::1]:{address[1]}'
            port.send(mido.Message('start'))
            assert client.receive(timeout=WAIT) == mido.Message('start')


@pytest.mark.parametrize('conn', [5, True, 'localhost', b'', 3.5, object()])
def test_conn_that_is_not_a_socket_object_is_a_type_error(conn):
    with pytest.raises(TypeError, match='conn must be a connected TCP socket'):
        SocketPort('127.0.0.1', 9, conn=conn)


def test_closed_socket_is_a_value_error():
    sock = socket.socket()
    sock.close()
    with pytest.raises(ValueError, match='conn is closed'):
        SocketPort('127.0.0.1', 9, conn=sock)


def test_descriptors_that_are_not_tcp_sockets_are_type_errors_and_do_not_leak(tmp_path):
    before = open_fds()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect(('127.0.0.1', 9))  # connected, so only its type can refuse it
    unix_a, unix_b = socket.socketpair()
    read_end, write_end = os.pipe()
    wrong = [
        ('UDP', udp),
        ('address family', unix_a),
        ('not a socket', open(tmp_path / 'file', 'w')),
        ('not a socket', os.fdopen(read_end, 'rb')),
        ('not a socket', os.fdopen(write_end, 'wb')),
    ]
    try:
        for reason, obj in wrong:
            with pytest.raises(TypeError, match=reason):
                SocketPort('127.0.0.1', 9, conn=obj)
    finally:
        for _, obj in wrong:
            obj.close()
        unix_b.close()
    assert open_fds() == before, 'a refused conn must not leave its duplicate descriptor open'


def test_a_tcp_socket_that_is_not_connected_is_an_oserror(listener):
    before = open_fds()
    with socket.socket() as unconnected:
        with pytest.raises(OSError) as error:
            SocketPort('127.0.0.1', 9, conn=unconnected)
        assert error.value.errno == errno.ENOTCONN
    with pytest.raises(OSError, match='not connected'):
        SocketPort('127.0.0.1', 9, conn=listener)  # listening, not connected
    assert open_fds() - before == set()
