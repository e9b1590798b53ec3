"""Every message type both ways against real mido 1.3.3 socket ports."""

import mido
import mido.sockets

from conftest import every_message_type, mido_receive_all, receive_all
from midisock.sockets import connect


def test_mido_client_to_midisock_server_and_back(server):
    messages = every_message_type()
    client = mido.sockets.connect('127.0.0.1', server.address[1])
    try:
        for message in messages:
            client.send(message)
        assert receive_all(server, len(messages)) == messages
        # The other way: the server broadcasts, the mido client reads.
        for message in messages:
            server.send(message)
        assert mido_receive_all(client, len(messages)) == messages
    finally:
        client._socket.close()  # mido 1.3.3's close() leaves the socket open


def test_midisock_client_to_mido_server_and_back():
    messages = every_message_type()
    mido_server = mido.sockets.PortServer('127.0.0.1', 0)
    port = mido_server._socket.getsockname()[1]
    try:
        with connect('127.0.0.1', port) as client:
            accepted = mido_server.accept()
            for message in messages:
                client.send(message)
            assert mido_receive_all(accepted, len(messages)) == messages
            for message in messages:
                accepted.send(message)
            received = receive_all(client, len(messages))
            assert received == messages
            assert all(isinstance(m, mido.Message) for m in received)
            accepted._socket.close()
    finally:
        mido_server._socket.close()


def test_midisock_to_midisock_every_type(server):
    messages = every_message_type()
    with connect('127.0.0.1', server.address[1]) as client:
        client.send_many(messages)
        assert receive_all(server, len(messages)) == messages
        accepted_messages = list(messages)
        for message in accepted_messages:
            server.send(message)
        assert receive_all(client, len(messages)) == messages


def test_received_messages_are_ordinary_mido_messages(server):
    with connect('127.0.0.1', server.address[1]) as client:
        client.send(mido.Message('note_on', note=61))
        message = server.receive(timeout=20)
    assert type(message) is mido.Message
    assert message.dict() == {'type': 'note_on', 'time': 0, 'channel': 0, 'note': 61, 'velocity': 64}
    assert message.copy(note=62).note == 62
    assert message.bytes() == [0x90, 61, 64]
    assert str(message) == 'note_on channel=0 note=61 velocity=64 time=0'
    # mido's attribute checks apply as to any message.
    message.note = 1
    assert message.note == 1
    try:
        message.note = 'x'
    except TypeError:
        pass
    else:
        raise AssertionError('mido checks attribute values')
    # The client left note 61 sounding when it disconnected: the server releases it.
    assert server.receive(timeout=20) == mido.Message('note_off', note=61, velocity=0)
    sysex = mido.Message('sysex', data=[1, 2])
    with connect('127.0.0.1', server.address[1]) as client:
        client.send(sysex)
        got = server.receive(timeout=20)
    assert got == sysex and type(got.data) is type(sysex.data)
