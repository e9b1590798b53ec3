"""The mido side of the [midisock] tests: real mido socket ports, driven by the test suite.

    mido_peer.py server [PORT]   listen on 127.0.0.1:PORT (0: any free port); print
                                 `port N`, then `connected`, `message B1 B2 ...` (mido's bytes of
                                 each message) and `closed` for each client, one at a time; each
                                 line read from stdin (as for client) is sent to the current
                                 client, then `sent N` printed
    mido_peer.py client PORT     connect to 127.0.0.1:PORT, send each line read from stdin (mido
                                 text, or `bytes B1 B2 ...` for what mido cannot parse from text,
                                 like an empty sysex), print `sent N` after each; close at end of
                                 input
    mido_peer.py listen PORT     connect to 127.0.0.1:PORT, print `connected`, then `message B1 B2
                                 ...` for each message received, and `closed` when the server
                                 closes the connection
    mido_peer.py stall           (no mido) listen on 127.0.0.1 with a full accept queue, print
                                 `port N`, and wait: a connection attempt to it hangs until it
                                 times out, which is how the tests keep a connect under way

Every line is flushed at once: the test suite waits for them.
"""
import socket
import sys
import threading
import time

import mido
import mido.sockets


def say(*words):
    print(*words, flush=True)


def parse(line):
    if line.startswith("bytes "):
        return mido.Message.from_bytes([int(b) for b in line.split()[1:]])
    return mido.Message.from_str(line)


def serve(port):
    server = mido.sockets.PortServer("127.0.0.1", port)
    say("port", server._socket.getsockname()[1])
    current = []  # the client being served, for the stdin thread

    def send_stdin():
        for count, line in enumerate(filter(None, map(str.strip, sys.stdin)), start=1):
            current[0].send(parse(line))
            say("sent", count)

    threading.Thread(target=send_stdin, daemon=True).start()
    while True:
        client = server.accept()
        current[:] = [client]
        say("connected")
        try:
            for message in client:
                say("message", *message.bytes())
        except (OSError, ValueError):
            pass  # the client went away: mido 1.3.3 raises instead of ending the iteration
        say("closed")
        client.close()


def client(port):
    output = mido.sockets.connect("127.0.0.1", port)
    count = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        output.send(parse(line))
        count += 1
        say("sent", count)
    output.close()


def listen(port):
    input = mido.sockets.connect("127.0.0.1", port)
    say("connected")
    try:
        for message in input:
            say("message", *message.bytes())
    except (OSError, ValueError):
        pass
    say("closed")


def stall():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # room for one connection waiting to be accepted
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # takes that room: later SYNs are dropped
    say("port", port)
    while True:
        time.sleep(60)
    del filler


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "server":
        serve(int(rest[0]) if rest else 0)
    elif mode == "client":
        client(int(rest[0]))
    elif mode == "listen":
        listen(int(rest[0]))
    elif mode == "stall":
        stall()
    else:
        sys.exit(f"unknown mode {mode!r}")
