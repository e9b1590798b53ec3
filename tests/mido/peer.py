"""A real mido 1.3.3 peer for midisock's interop tests (tests/mido_interop.rs).

Usage: peer.py MODE [ARGS]. Every mode prints mido's str() of each message it sends or receives,
one per line, flushed, so the Rust side can compare texts byte for byte. A server mode first
prints "PORT <n>". Every blocking step has a deadline, so a bug fails the test instead of hanging.

Known mido 1.3.3 behaviour worked around here: PortServer iteration/receive hangs once a client
connects (so servers use accept()); SocketPort.close() leaves the socket open (so we shut the
socket down explicitly).
"""
import socket
import struct
import sys
import time

import mido
from mido.sockets import PortServer, connect

DEADLINE_S = 10.0


def every_message():
    """One message of every type mido knows, with distinctive values and range extremes."""
    return [
        mido.Message('note_off', channel=1, note=60, velocity=10),
        mido.Message('note_on', channel=15, note=127, velocity=0),
        mido.Message('polytouch', channel=2, note=3, value=4),
        mido.Message('control_change', channel=3, control=7, value=127),
        mido.Message('program_change', channel=4, program=99),
        mido.Message('aftertouch', channel=5, value=6),
        mido.Message('pitchwheel', channel=6, pitch=-8192),
        mido.Message('pitchwheel', channel=7, pitch=8191),
        mido.Message('sysex', data=[0x7E, 0x00, 0x7F, 0x09]),
        mido.Message('sysex', data=[]),
        mido.Message('quarter_frame', frame_type=7, frame_value=15),
        mido.Message('songpos', pos=16383),
        mido.Message('song_select', song=12),
        mido.Message('tune_request'),
        mido.Message('clock'),
        mido.Message('start'),
        mido.Message('continue'),
        mido.Message('stop'),
        mido.Message('active_sensing'),
        mido.Message('reset'),
    ]


def say(text):
    print(text, flush=True)


def shut(port):
    """Really close a mido SocketPort: mido's close() leaves the descriptor open."""
    try:
        port._socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    port.close()


def receive_n(port, count):
    deadline = time.monotonic() + DEADLINE_S
    got = 0
    while got < count:
        if time.monotonic() > deadline:
            sys.exit(f'timed out after {got} of {count} messages')
        message = port.receive(block=False)
        if message is None:
            if port.closed:
                sys.exit(f'peer closed after {got} of {count} messages')
            time.sleep(0.001)
            continue
        say(str(message))
        got += 1


def receive_until_closed(port):
    """Prints "GOT <str>" for every message mido parses until the peer closes; mido's
    receive(block=False) reads what the socket has, and `closed` turns true at its end."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        if time.monotonic() > deadline:
            sys.exit('timed out waiting for the peer to close')
        message = port.receive(block=False)
        if message is not None:
            say(f'GOT {message}')
        elif port.closed:
            return
        else:
            time.sleep(0.001)


def accept_one(server):
    server._socket.settimeout(DEADLINE_S)
    client = server.accept()
    client._socket.settimeout(None)
    return client


def bound_server():
    server = PortServer('127.0.0.1', 0)
    say(f'PORT {server._socket.getsockname()[1]}')
    return server


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == 'client-send':
        port = connect('127.0.0.1', int(args[0]))
        for message in every_message():
            port.send(message)
            say(str(message))
        shut(port)
    elif mode == 'client-receive':
        port = connect('127.0.0.1', int(args[0]))
        say('CONNECTED')
        receive_n(port, int(args[1]))
        shut(port)
    elif mode == 'server-receive':
        server = bound_server()
        client = accept_one(server)
        receive_n(client, int(args[0]))
        shut(client)
        server.close()
    elif mode == 'server-send':
        server = bound_server()
        client = accept_one(server)
        for message in every_message():
            client.send(message)
            say(str(message))
        shut(client)
        server.close()
    elif mode == 'server-both':
        # Sends every_message() ("SENT <str>" each), then receives until the client closes
        # ("GOT <str>" each), then "END".
        server = bound_server()
        client = accept_one(server)
        for message in every_message():
            client.send(message)
            say(f'SENT {message}')
        receive_until_closed(client)
        say('END')
        shut(client)
        server.close()
    elif mode == 'client-vanish':
        # Send whole messages, then half of a note_on and half of a sysex, then vanish with a
        # reset (SO_LINGER 0) as a crashed peer would.
        port = connect('127.0.0.1', int(args[0]))
        port.send(mido.Message('note_on', note=60, velocity=100))
        port._socket.sendall(bytes([0xF0, 1, 2, 3, 0x90, 61]))
        port._socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        port._socket.close()
        say('VANISHED')
    else:
        sys.exit(f'unknown mode {mode!r}')


if __name__ == '__main__':
    main()
