"""The bench report's workloads run with mido 1.3.3's socket ports, for `cargo xtask bench-report`.

Same workloads as benches/side_by_side.rs: round trip of one note_on echoed by a peer, one-way
latency of a 1 kHz stream (send time to the moment `receive()` returns it, both
time.monotonic_ns(), i.e. CLOCK_MONOTONIC like midisock's timestamps), and stream throughput
(one thread sends, another receives every message). Both ends are mido, on loopback, port 0.

Known mido 1.3.3 behaviour worked around here: PortServer iteration/receive hangs once a client
connects (we use accept()), and SocketPort.close() leaves the socket open (we shut it down).

usage: bench_mido.py --out DIR [--rtt N] [--stream-seconds S] [--throughput N]
"""

import argparse
import importlib.metadata
import os
import socket
import threading
import time

import mido
from mido.sockets import PortServer, connect

STOP = mido.Message("stop")


def pair():
    """(server, connected client port, accepted port)."""
    server = PortServer("127.0.0.1", 0)
    port = server._socket.getsockname()[1]
    client = connect("127.0.0.1", port)
    accepted = server.accept()
    return server, client, accepted


def close(*ports):
    for port in ports:
        sock = port._socket
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        port.close()


def pin_thread(cpu):
    """Pins the calling thread (pid 0 on Linux) to `cpu` if the machine has it, as the Rust side
    does for round trips: caller on CPU 0, echo on CPU 1. Returns the previous mask."""
    previous = os.sched_getaffinity(0)
    if cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})
    return previous


def round_trip(count, warmup):
    server, client, accepted = pair()

    def echo():
        pin_thread(1)
        while True:
            message = accepted.receive()
            if message.type == "stop":
                return
            accepted.send(message)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    previous = pin_thread(0)
    note = mido.Message("note_on", channel=0, note=60, velocity=100)
    samples = []
    for i in range(warmup + count):
        start = time.monotonic_ns()
        client.send(note)
        client.receive()
        end = time.monotonic_ns()
        if i >= warmup:
            samples.append(end - start)
    client.send(STOP)
    thread.join()
    os.sched_setaffinity(0, previous)
    close(client, accepted)
    server.close()
    return samples


def one_way(rate_hz, seconds):
    server, client, accepted = pair()
    stamps = []

    def receive():
        while True:
            message = accepted.receive()
            now = time.monotonic_ns()
            if message.type == "stop":
                return
            stamps.append(now)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    note = mido.Message("note_on", channel=0, note=60, velocity=100)
    period_ns = 1_000_000_000 // rate_hz
    count = int(seconds * rate_hz)
    sent = []
    start = time.monotonic_ns()
    for i in range(count):
        delay = start + i * period_ns - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        sent.append(time.monotonic_ns())
        client.send(note)
    client.send(STOP)
    thread.join()
    close(client, accepted)
    server.close()
    assert len(sent) == len(stamps), (len(sent), len(stamps))
    return [r - s for s, r in zip(sent, stamps)]


def message_mix(count):
    """The same mix as benches/common/mod.rs message_mix()."""
    out = []
    for i in range(count):
        channel, v = i % 16, i % 128
        kind = i % 8
        if kind in (0, 1):
            out.append(mido.Message("note_on", channel=channel, note=v, velocity=100))
        elif kind in (2, 3):
            out.append(mido.Message("note_off", channel=channel, note=v, velocity=0))
        elif kind == 4:
            out.append(mido.Message("control_change", channel=channel, control=1, value=v))
        elif kind == 5:
            out.append(mido.Message("pitchwheel", channel=channel, pitch=(i % 8192) - 4096))
        elif kind == 6:
            out.append(mido.Message("program_change", channel=channel, program=v))
        else:
            out.append(mido.Message("clock"))
    return out


def throughput(count):
    server, client, accepted = pair()
    messages = message_mix(count)

    def send():
        for message in messages:
            client.send(message)

    thread = threading.Thread(target=send, daemon=True)
    start = time.monotonic_ns()
    thread.start()
    for _ in range(count):
        accepted.receive()
    elapsed = time.monotonic_ns() - start
    thread.join()
    close(client, accepted)
    server.close()
    return count / (elapsed / 1e9)


def write_samples(path, samples):
    with open(path, "w") as f:
        f.write("".join(f"{s}\n" for s in samples))


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--out", required=True)
    args.add_argument("--rtt", type=int, default=20000)
    args.add_argument("--stream-seconds", type=float, default=10.0)
    args.add_argument("--throughput", type=int, default=200000)
    args = args.parse_args()
    os.makedirs(args.out, exist_ok=True)
    version = importlib.metadata.version("mido")
    assert version == "1.3.3", f"mido {version}, expected 1.3.3"

    print(f"bench_mido: round trip x{args.rtt}", flush=True)
    write_samples(os.path.join(args.out, "rtt_mido.samples"), round_trip(args.rtt, min(1000, args.rtt // 10)))
    print(f"bench_mido: 1 kHz stream, {args.stream_seconds} s", flush=True)
    write_samples(os.path.join(args.out, "oneway_mido.samples"), one_way(1000, args.stream_seconds))
    print(f"bench_mido: stream throughput, {args.throughput} messages", flush=True)
    rate = throughput(args.throughput)
    with open(os.path.join(args.out, "scalars_mido.txt"), "w") as f:
        f.write(f"stream_msgs_per_s.mido {rate}\n")


if __name__ == "__main__":
    main()
