"""Timeouts, callbacks, timestamps, close semantics, bad input, IPv6 (Ctrl-C: test_signals.py)."""

import threading
import time

import mido
import pytest

import midisock
from conftest import WAIT, receive_all, wait_until
from midisock.sockets import PortServer, SocketPort, connect, format_address, parse_address

CC = mido.Message('control_change', control=1, value=2)


def served(server, clients=1):
    """Waits until the server sends to `clients` clients (a broadcast reaches only those)."""
    wait_until(lambda: len(server.ports) == clients, what=f'{clients} clients served')


# Timeouts

def test_receive_timeout_returns_none_after_the_timeout(server):
    with connect('127.0.0.1', server.address[1]) as client:
        start = time.monotonic()
        assert client.receive(timeout=0.2) is None
        assert time.monotonic() - start >= 0.19
        assert server.receive(timeout=0.05) is None
        client.send(CC)
        assert server.receive(timeout=WAIT) == CC


def test_receive_block_false_and_poll(server):
    with connect('127.0.0.1', server.address[1]) as client:
        assert client.receive(block=False) is None
        assert client.poll() is None
        assert server.poll() is None
        served(server)
        server.send(CC)
        wait_until(lambda: client.poll() == CC, what='the broadcast')


def test_accept_timeout_and_nonblocking(server):
    assert server.accept(block=False) is None
    start = time.monotonic()
    assert server.accept(timeout=0.2) is None
    assert time.monotonic() - start >= 0.19
    with connect('127.0.0.1', server.address[1]) as client:
        accepted = server.accept(timeout=WAIT)
        assert accepted is not None and accepted.name == format_address(*client.local_address)
        accepted.close()


def test_bad_timeouts_are_value_errors(server):
    with connect('127.0.0.1', server.address[1]) as client:
        for bad in (-1, float('nan'), float('inf')):
            with pytest.raises(ValueError):
                client.receive(timeout=bad)


# Callbacks

def test_port_callback_receives_every_message(server):
    got = []
    with connect('127.0.0.1', server.address[1], callback=got.append) as client:
        assert client.callback == got.append
        served(server)
        messages = [mido.Message('note_on', note=n) for n in range(50)]
        for message in messages:
            server.send(message)
        wait_until(lambda: len(got) == 50, what='50 callbacks')
        assert got == messages
        with pytest.raises(ValueError):
            client.receive()
        with pytest.raises(ValueError):
            client.poll()


def test_callback_set_later_and_replaced(server):
    first, second = [], []
    with connect('127.0.0.1', server.address[1]) as client:
        client.callback = first.append
        served(server)
        server.send(CC)
        wait_until(lambda: first == [CC], what='the first callback')
        client.callback = second.append
        server.send(CC)
        wait_until(lambda: second == [CC], what='the second callback')
        assert first == [CC]
        with pytest.raises(ValueError):
            client.callback = 'not callable'
        assert client.callback == second.append


def test_server_callback(server):
    got = []
    server.callback = got.append
    with connect('127.0.0.1', server.address[1]) as a, connect('127.0.0.1', server.address[1]) as b:
        a.send(CC)
        b.send(mido.Message('stop'))
        wait_until(lambda: len(got) == 2, what='two callbacks')
        assert sorted(m.type for m in got) == ['control_change', 'stop']
        with pytest.raises(ValueError):
            server.receive()


def test_server_callback_keyword():
    got = []
    with PortServer('127.0.0.1', 0, callback=got.append) as server:
        with connect('127.0.0.1', server.address[1]) as client:
            client.send(CC)
            wait_until(lambda: got == [CC], what='the callback')


def test_callbacks_may_close_their_own_port_or_server():
    server = PortServer('127.0.0.1', 0)
    closed = []

    def close_server(message):
        server.close()
        closed.append(message)
    server.callback = close_server
    with connect('127.0.0.1', server.address[1]) as client:
        client.send(CC)
        wait_until(lambda: closed == [CC] and server.closed, what='the server closed by its callback')
    with PortServer('127.0.0.1', 0) as other:
        got = []
        client = connect('127.0.0.1', other.address[1])

        def close_port(message):
            client.close()
            got.append(message)
        client.callback = close_port
        served(other)
        other.send(CC)
        wait_until(lambda: got == [CC] and client.closed, what='the port closed by its callback')
        del client


def test_callback_exception_is_reported_and_delivery_goes_on(server, monkeypatch):
    got = []
    reported = []
    monkeypatch.setattr('sys.unraisablehook', reported.append)

    def flaky(message):
        got.append(message)
        if len(got) == 1:
            raise RuntimeError('boom')
    with connect('127.0.0.1', server.address[1], callback=flaky):
        served(server)
        server.send(CC)
        server.send(CC)
        wait_until(lambda: len(got) == 2, what='delivery after an exception')
    assert len(reported) == 1 and isinstance(reported[0].exc_value, RuntimeError)


# Timestamps

def test_receive_timestamps_are_monotonic_seconds(server):
    with connect('127.0.0.1', server.address[1], timestamps=True) as client:
        served(server)
        before = time.monotonic()
        server.send(CC)
        message = client.receive(timeout=WAIT)
        after = time.monotonic()
        assert before <= message.time <= after
        assert midisock.monotonic() >= message.time
    with PortServer('127.0.0.1', 0, timestamps=True) as stamped:
        with connect('127.0.0.1', stamped.address[1]) as client:
            before = time.monotonic()
            client.send(CC)
            message = stamped.receive(timeout=WAIT)
            assert before <= message.time <= time.monotonic()


# Close semantics

def test_close_is_seen_by_the_peer_at_once(server):
    client = connect('127.0.0.1', server.address[1])
    accepted = server.accept(timeout=WAIT)
    client.send(CC)
    client.close()
    assert client.closed
    client.close()  # twice is harmless
    # What was sent before the close still arrives; then iteration ends.
    assert list(accepted) == [CC]
    assert accepted.closed
    with pytest.raises(ValueError):
        accepted.receive()
    assert accepted.receive(block=False) is None
    with pytest.raises(ValueError):
        client.send(CC)


def test_iteration_ends_when_the_peer_closed_before_it_started(server):
    client = connect('127.0.0.1', server.address[1])
    accepted = server.accept(timeout=WAIT)
    client.send(CC)
    client.close()
    assert accepted.receive(timeout=WAIT) == CC
    wait_until(lambda: accepted.poll() is None and accepted.closed, what='the close')
    assert list(accepted) == []


def test_close_wakes_a_blocked_receive(server):
    client = connect('127.0.0.1', server.address[1])
    errors = []

    def blocked():
        try:
            client.receive()
        except OSError as error:
            errors.append(error)
    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.05)
    client.close()
    thread.join(WAIT)
    assert not thread.is_alive() and len(errors) == 1


def test_server_close_ends_iteration_and_connections():
    server = PortServer('127.0.0.1', 0)
    client = connect('127.0.0.1', server.address[1])
    client.send(CC)
    got = []
    thread = threading.Thread(target=lambda: got.extend(server))
    thread.start()
    wait_until(lambda: got == [CC], what='the message')
    server.close()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert server.closed
    wait_until(lambda: client.poll() is None and client.closed, what='the client to see the close')
    with pytest.raises(ValueError):
        server.send(CC)
    server.close()


def test_context_managers_close(server):
    with connect('127.0.0.1', server.address[1]) as client:
        pass
    assert client.closed


def test_server_ports_lists_clients(server):
    assert server.ports == []
    with connect('127.0.0.1', server.address[1]) as client:
        wait_until(lambda: server.ports == [format_address(*client.local_address)], what='the client listed')
    wait_until(lambda: server.ports == [], what='the client gone')


def test_iter_pending(server):
    with connect('127.0.0.1', server.address[1]) as client:
        messages = [mido.Message('program_change', program=p) for p in range(10)]
        client.send_many(messages)
        got = []
        wait_until(lambda: got.extend(server.iter_pending()) or len(got) == 10, what='10 messages')
        assert got == messages
        assert list(server.iter_pending()) == []


def test_reset_and_panic_send_mido_sets(server):
    with connect('127.0.0.1', server.address[1]) as client:
        client.reset()
        assert receive_all(server, 32) == list(mido.ports.reset_messages())
        client.panic()
        assert receive_all(server, 16) == list(mido.ports.panic_messages())


def test_autoreset_releases_notes_on_close(server):
    client = connect('127.0.0.1', server.address[1], autoreset=True)
    client.send(mido.Message('note_on', note=70, velocity=90))
    client.close()
    got = receive_all(server, 1 + 1 + 32)
    assert got[0].type == 'note_on'
    assert got[1] == mido.Message('note_off', note=70, velocity=0)
    assert got[2:] == list(mido.ports.reset_messages())


# Bad input

@pytest.mark.parametrize('address', ['', ':', 'host', 'a:b:c', ':0', ':65536', 'h:port', '[::1]', '[::1]x80'])
def test_parse_address_rejects(address):
    with pytest.raises(ValueError):
        parse_address(address)


def test_parse_and_format_address_round_trip():
    assert parse_address('localhost:8080') == ('localhost', 8080)
    assert parse_address(':8080') == ('', 8080)
    assert parse_address('[::1]:8080') == ('::1', 8080)
    assert format_address('::1', 8080) == '[::1]:8080'
    assert format_address('localhost', 8080) == 'localhost:8080'


def test_bad_arguments_raise_python_errors():
    with pytest.raises(TypeError):
        connect('127.0.0.1', '8080')
    with pytest.raises(ValueError):
        connect('127.0.0.1', 70000)
    with pytest.raises(ValueError):
        connect('127.0.0.1', 0)
    with pytest.raises(TypeError):
        connect(None, 80)
    with pytest.raises(TypeError):
        PortServer('127.0.0.1', 1.5)
    with pytest.raises(TypeError):
        PortServer('127.0.0.1', 0, no_such_option=1)
    with pytest.raises(ValueError):
        PortServer('127.0.0.1', 0, allow=['not an address'])
    with pytest.raises(ValueError):
        PortServer('127.0.0.1', 0, token='')
    with pytest.raises(ValueError):
        PortServer('127.0.0.1', 0, max_clients=0)
    with pytest.raises(TypeError):
        SocketPort('127.0.0.1', 1, conn=object())


def test_network_failures_are_oserrors(server):
    # Nobody listens on a port of a closed server.
    closed = PortServer('127.0.0.1', 0)
    port = closed.address[1]
    closed.close()
    with pytest.raises(ConnectionRefusedError):
        connect('127.0.0.1', port)
    with pytest.raises(OSError):
        connect('no-such-host.invalid', 80)
    with pytest.raises(OSError) as error:
        PortServer('127.0.0.1', server.address[1])
    assert error.value.errno is not None


def test_bad_messages_are_type_or_value_errors(server):
    with connect('127.0.0.1', server.address[1]) as client:
        with pytest.raises(TypeError):
            client.send('note_on')
        with pytest.raises(TypeError):
            client.send(None)
        with pytest.raises(TypeError):
            client.send_many([CC, 'x'])
        out_of_range = mido.Message('note_on', note=1).copy()
        vars(out_of_range)['note'] = 300
        with pytest.raises(ValueError):
            client.send(out_of_range)
        vars(out_of_range)['note'] = 'x'
        with pytest.raises(TypeError):
            client.send(out_of_range)
        bad_sysex = mido.Message('sysex', data=[1])
        vars(bad_sysex)['data'] = (200,)
        with pytest.raises(ValueError):
            client.send(bad_sysex)
        with pytest.raises(TypeError):
            server.send(42)
        # Nothing bad was sent; the connection still works.
        client.send(CC)
        assert server.receive(timeout=WAIT) == CC


def test_garbage_from_the_network_is_ignored(server):
    import socket
    with socket.create_connection(('127.0.0.1', server.address[1])) as raw:
        raw.sendall(bytes(range(256)) * 4 + bytes([0xB0, 1, 2]))
        assert server.receive(timeout=WAIT) is not None
        while (message := server.receive(timeout=0.5)) is not None:
            last = message
    assert last == CC


def test_peer_gone_while_sending_is_an_oserror(server):
    client = connect('127.0.0.1', server.address[1])
    accepted = server.accept(timeout=WAIT)
    accepted.close()
    with pytest.raises((OSError, ValueError)):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            client.send(CC)
    client.close()


# IPv6

def test_ipv6_loopback():
    with PortServer('::1', 0) as server:
        assert server.name.startswith('[::1]:')
        with connect('::1', server.address[1]) as client:
            assert client.name == format_address('::1', server.address[1])
            client.send(CC)
            assert server.receive(timeout=WAIT) == CC
            served(server)
            server.send(CC)
            assert client.receive(timeout=WAIT) == CC


def test_localhost_server_listens_on_every_address_of_localhost():
    import socket
    resolved = {info[4][0] for info in socket.getaddrinfo('localhost', 80, type=socket.SOCK_STREAM)}
    with PortServer('localhost', 0) as server:
        assert {host for host, _ in server.addresses} == resolved
        for host, port in server.addresses:
            with connect(host, port) as client:
                client.send(CC)
                assert server.receive(timeout=WAIT) == CC
