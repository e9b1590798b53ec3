"""The bench report's workloads run with mido 1.3.3's socket ports, for `cargo xtask bench-report`.

What is measured, and how, lives in socket_bench.py (shared with the midisock package's
bench); this file says how mido's ports connect, and works around two of mido 1.3.3's bugs:
PortServer iteration/receive hangs once a client connects (accept() is used), and
SocketPort.close() leaves the socket open (it is shut down first).

usage: bench_mido.py --out DIR [--rtt N] [--stream-seconds S] [--throughput N]
"""

import importlib.metadata
import socket

from mido.sockets import PortServer, connect

import socket_bench


class Mido(socket_bench.Contender):
    name = 'mido'

    def listen(self):
        server = PortServer('127.0.0.1', 0)
        return server, server._socket.getsockname()[1]

    def accept(self, server):
        return server.accept()

    def connect(self, port):
        return connect('127.0.0.1', port)

    def close(self, *things):
        for thing in things:
            try:
                thing._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            thing.close()


if __name__ == '__main__':
    version = importlib.metadata.version('mido')
    assert version == '1.3.3', f'mido {version}, expected 1.3.3'
    socket_bench.main(Mido(), __file__)
