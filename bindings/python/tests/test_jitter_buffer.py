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


def test_conn_with_a_jitter_buffer_is_refused(server):
    import socket
    with socket.create_connection(server.address) as sock:
        with pytest.raises(ValueError, match='conn='):
            SocketPort('127.0.0.1', server.address[1], conn=sock, jitter_buffer=5)


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
        for i in range(0, len(sent), 30):
            server.send_many(sent[i:i + 30])
        got = receive_all(client, len(sent))
        assert [m.copy(time=0) for m in got] == sent
        times = [m.time for m in got]
        assert all(isinstance(t, float) for t in times), 'a message came without the sender time'
        assert times == sorted(times)
        stats = client.playout_stats
        assert isinstance(stats, dict)
        assert stats['pushed'] == len(sent) and stats['delivered'] == len(sent)
        assert stats['queued'] == 0
        assert stats['delay'] >= 0.005
