"""A real mido 1.3.3 server for the timing tests (crates/midisock/tests/timing_mido.rs).

Usage: mido_peer.py server-both. Prints "PORT <n>", accepts one client, sends it the messages of
every_message() (printing "SENT <str>" for each), then receives until the client closes,
printing "GOT <str>" for every message mido parsed, and "END". Every wait has a deadline, so a
bug fails the test instead of hanging it.
"""
import socket
import sys
import time

import mido
from mido.sockets import PortServer

DEADLINE_S = 20.0


def every_message():
    return [
        mido.Message('note_off', channel=1, note=60, velocity=10),
        mido.Message('note_on', channel=15, note=127, velocity=0),
        mido.Message('polytouch', channel=2, note=3, value=4),
        mido.Message('control_change', channel=3, control=7, value=127),
        mido.Message('program_change', channel=4, program=99),
        mido.Message('aftertouch', channel=5, value=6),
        mido.Message('pitchwheel', channel=6, pitch=-8192),
        mido.Message('sysex', data=[0x7E, 0x00, 0x7F, 0x09]),
        mido.Message('quarter_frame', frame_type=7, frame_value=15),
        mido.Message('songpos', pos=16383),
        mido.Message('song_select', song=12),
        mido.Message('tune_request'),
        mido.Message('clock'),
        mido.Message('start'),
        mido.Message('stop'),
        mido.Message('active_sensing'),
        mido.Message('reset'),
    ]


def say(text):
    print(text, flush=True)


def main():
    if sys.argv[1:] != ['server-both']:
        sys.exit(f'usage: mido_peer.py server-both (got {sys.argv[1:]!r})')
    server = PortServer('127.0.0.1', 0)
    say(f'PORT {server._socket.getsockname()[1]}')
    server._socket.settimeout(DEADLINE_S)
    client = server.accept()
    client._socket.settimeout(None)
    for message in every_message():
        client.send(message)
        say(f'SENT {message}')
    deadline = time.monotonic() + DEADLINE_S
    # mido's receive(block=False) reads what the socket has; `closed` turns true at its end.
    while True:
        if time.monotonic() > deadline:
            sys.exit('timed out waiting for the client to close')
        message = client.receive(block=False)
        if message is not None:
            say(f'GOT {message}')
            continue
        if client.closed:
            break
        time.sleep(0.001)
    say('END')
    try:
        client._socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    client.close()
    server.close()


if __name__ == '__main__':
    main()
