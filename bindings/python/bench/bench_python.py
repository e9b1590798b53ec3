"""The bench report's workloads run with the midisock Python package, for `cargo xtask bench-report`.

What is measured, and how, lives in benches/mido/socket_bench.py, shared with mido 1.3.3's bench:
the same round trip (echo in a second Python process), 1 kHz one-way latency and stream
throughput, with mido.Message objects on both ends. The one difference is the package's own
fast path for a stream: sent with send_many() in batches of 4096 (as the Rust side sends) and
drained with receive_batch().

usage: bench_python.py --out DIR [--rtt N] [--stream-seconds S] [--throughput N]
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'benches', 'mido'))

import socket_bench  # noqa: E402
from midisock.sockets import PortServer, connect  # noqa: E402

BATCH = 4096


class Package(socket_bench.Contender):
    name = 'python'

    def listen(self):
        server = PortServer('127.0.0.1', 0)
        return server, server.address[1]

    def accept(self, server):
        client = server.accept(timeout=60)
        assert client is not None, 'no client connected'
        return client

    def connect(self, port):
        return connect('127.0.0.1', port)

    def send_stream(self, port, messages):
        for i in range(0, len(messages), BATCH):
            port.send_many(messages[i:i + BATCH])

    def receive_some(self, port):
        return len(port.receive_batch())


if __name__ == '__main__':
    socket_bench.main(Package(), __file__)
