"""The jitter buffer from Python: `jitter_buffer=` on connect/SocketPort/PortServer, its bad
values, `playout_stats`, and the sender's clock as `msg.time` (`timestamps='sender'`)."""

import math

import mido
import pytest

from conftest import WAIT, receive_all, wait_until
from midisock.sockets import PortServer, SocketPort, connect


@pytest.mark.parametrize('value', ['auto', 'AUTO', ' auto ', 0, 15, 12.5, '12.5', 10000])
def test_good_settings_are_taken(server, value):
    with connect('127.0.0.1', server.address[1], jitter_buffer=value) as client:
        assert not client.closed
    with PortServer('127.0.0.1', 0, jitter_buffer=value) as other:
        assert other.playout_stats == {}


@pytest.mark.parametrize('value, error', [
    (-1, ValueError), (10001, ValueError), (2**80, ValueError), (math.nan, ValueError),
    (math.inf, ValueError), ('', ValueError), ('fast', ValueError), ('1e3', ValueError),
    ('-5', ValueError), (True, TypeError), ([5], TypeError), (object(), TypeError),
])
def test_bad_settings_are_refused(server, value, error):
    with pytest.raises(error, match='jitter_buffer|jitter buffer'):
        connect('127.0.0.1', server.address[1], jitter_buffer=value)
    with pytest.raises(error, match='jitter_buffer|jitter buffer'):
        PortServer('127.0.0.1', 0, jitter_buffer=value)


def test_no_jitter_buffer_no_stats(server):
    with connect('127.0.0.1', server.address[1]) as client:
        assert client.playout_stats is None
    assert server.playout_stats == {}


def test_conn_with_a_jitter_buffer_asks_the_peer_for_stamps_and_plays_them_out():
    import socket
    sent = [mido.Message('note_on', note=n, velocity=1 + n) for n in range(60)]
    with socket.create_server(('127.0.0.1', 0)) as listener:
        portno = listener.getsockname()[1]
        with connect('127.0.0.1', portno) as sender:
            sock, _ = listener.accept()
            with sock, SocketPort('127.0.0.1', portno, conn=sock, jitter_buffer=5, timestamps='sender') as port:
                assert port.playout_stats['delay'] == pytest.approx(0.005)
                # A port that only sends finds the request from inside send(); what it sent
                # before answering arrives unstamped.
                wait_until(lambda: sender.send(mido.Message('clock')) or sender.sends_stamps,
                           what='the sender to answer the request for stamps')
                sender.send_many(sent)
                got = []
                while len(got) < len(sent):
                    message = port.receive(timeout=WAIT)
                    assert message is not None, f'only {len(got)} of {len(sent)} notes arrived'
                    if message.type == 'note_on':
                        got.append(message)
                assert [m.copy(time=0) for m in got] == sent
                assert all(isinstance(m.time, float) for m in got), 'a note came without the sender time'
                assert port.playout_stats['pushed'] >= len(sent)


def test_conn_with_a_bad_jitter_buffer_is_refused_and_the_socket_stays_usable():
    import socket
    with socket.create_server(('127.0.0.1', 0)) as listener:
        with socket.create_connection(listener.getsockname()) as client:
            sock, _ = listener.accept()
            with sock:
                with pytest.raises(ValueError, match='jitter_buffer|jitter buffer'):
                    SocketPort('127.0.0.1', 1, conn=sock, jitter_buffer='fast')
                # The port's duplicate of the descriptor was closed; the caller's still works.
                sock.sendall(b'\xf8')
                assert client.recv(1) == b'\xf8'


@pytest.mark.parametrize('value, error', [('sometimes', ValueError), (1, TypeError), (1.0, TypeError)])
def test_bad_timestamps_are_refused(server, value, error):
    with pytest.raises(error, match='timestamps'):
        connect('127.0.0.1', server.address[1], timestamps=value)


def test_sender_time_is_none_for_unstamped_messages(server):
    # No jitter buffer: nothing asks the sender for stamps.
    with connect('127.0.0.1', server.address[1], timestamps='sender') as client:
        wait_until(lambda: len(server.ports) == 1, what='the client served')
        server.send(mido.Message('clock'))
        message = client.receive(timeout=WAIT)
        assert message.type == 'clock' and message.time is None


def test_a_jitter_buffered_port_receives_every_message_in_order_with_stats(server):
    sent = [mido.Message('note_on', note=n % 128, velocity=1 + n % 127) for n in range(300)]
    with connect('127.0.0.1', server.address[1], jitter_buffer=5, timestamps='sender') as client:
        wait_until(lambda: len(server.ports) == 1, what='the client served')
        # The server stamps what it sends a client once it has read that client's request: a
        # broadcast before that arrives unstamped (time None), on arrival.
        wait_until(lambda: server.send(mido.Message('clock')) or client.receive(timeout=WAIT).time is not None,
                   what='a stamped broadcast')
        while client.poll() is not None:
            pass
        before = client.playout_stats['pushed']
        for i in range(0, len(sent), 30):
            server.send_many(sent[i:i + 30])
        got = receive_all(client, len(sent))
        assert [m.copy(time=0) for m in got] == sent
        times = [m.time for m in got]
        assert all(isinstance(t, float) for t in times), 'a message came without the sender time'
        assert times == sorted(times)
        stats = client.playout_stats
        assert isinstance(stats, dict)
        assert stats['pushed'] - before == len(sent) and stats['delivered'] == stats['pushed']
        assert stats['queued'] == 0
        assert stats['delay'] >= 0.005


def test_a_jitter_buffered_server_receives_every_message_in_order_with_stats_per_client():
    sent = [mido.Message('control_change', control=n % 128, value=n % 128) for n in range(200)]
    with PortServer('127.0.0.1', 0, jitter_buffer='auto', timestamps='sender') as server:
        with connect('127.0.0.1', server.address[1]) as client:
            # A client that only sends sees the server's request for stamps when it sends:
            # messages sent before that arrive unstamped, on arrival.
            warmups = 0

            def warmed_up():
                nonlocal warmups
                client.send(mido.Message('clock'))
                warmups += 1
                return client.sends_stamps
            wait_until(warmed_up, what='the client answering the request for stamps')
            assert [m.type for m in receive_all(server, warmups)] == ['clock'] * warmups
            before = server.playout_stats.get(f'127.0.0.1:{client.local_address[1]}', {'pushed': 0})['pushed']
            for i in range(0, len(sent), 20):
                client.send_many(sent[i:i + 20])
            got = receive_all(server, len(sent))
            assert [m.copy(time=0) for m in got] == sent
            assert all(isinstance(m.time, float) for m in got), 'a message came without the sender time'
            name = f'127.0.0.1:{client.local_address[1]}'
            stats = server.playout_stats
            assert list(stats) == [name]
            assert stats[name]['pushed'] - before == len(sent)
            assert stats[name]['queued'] == 0
