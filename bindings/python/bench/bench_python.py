"""The bench report's workloads run with the midisock Python package, for `cargo xtask bench-report`.

The same workloads, shaped the same way, as benches/mido/bench_mido.py (mido 1.3.3) and
benches/side_by_side.rs (the Rust API): round trip of one note_on echoed by
a peer (caller pinned to CPU 0; the echo, this script in a second process, to CPU 1), one-way
latency of a 1 kHz stream (send time to the moment `receive()` returns, both
time.monotonic_ns()), and stream throughput (one thread sends the message mix, another receives
every message as a mido.Message). Both ends are this package, on loopback, port 0; the stream's
two ends share one process (and its GIL), like mido's. Messages are mido.Message objects on both
sides.

usage: bench_python.py --out DIR [--rtt N] [--stream-seconds S] [--throughput N]
"""

import argparse
import os
import subprocess
import sys
import threading
import time

import mido
from midisock.sockets import PortServer, connect

STOP = mido.Message('stop')


def pair():
    """(server, connected client port, accepted port)."""
    server = PortServer('127.0.0.1', 0)
    client = connect('127.0.0.1', server.address[1])
    accepted = server.accept()
    return server, client, accepted


def pin_thread(cpu):
    """Pins the calling thread to `cpu` if the machine has it; returns the previous mask."""
    previous = os.sched_getaffinity(0)
    if cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})
    return previous


def round_trip(count, warmup):
    """The echo peer is this script in a second process (`--echo PORT`), pinned to CPU 1: two
    Python programs talking, each with its own GIL, as two applications on a network would."""
    server = PortServer('127.0.0.1', 0)
    echo = subprocess.Popen([sys.executable, __file__, '--echo', str(server.address[1])])
    try:
        client = server.accept(timeout=60)
        assert client is not None, 'the echo process did not connect'
        previous = pin_thread(0)
        note = mido.Message('note_on', channel=0, note=60, velocity=100)
        samples = []
        send, receive, clock = client.send, client.receive, time.monotonic_ns
        for i in range(warmup + count):
            start = clock()
            send(note)
            receive()
            end = clock()
            if i >= warmup:
                samples.append(end - start)
        client.send(STOP)
        os.sched_setaffinity(0, previous)
        assert echo.wait(60) == 0, 'the echo process failed'
        client.close()
    finally:
        if echo.poll() is None:
            echo.kill()
            echo.wait()
        server.close()
    return samples


def echo(port):
    pin_thread(1)
    with connect('127.0.0.1', port) as peer:
        for message in peer:
            if message.type == 'stop':
                return
            peer.send(message)


def one_way(rate_hz, seconds):
    server, client, accepted = pair()
    stamps = []

    def receive():
        for message in accepted:
            now = time.monotonic_ns()
            if message.type == 'stop':
                return
            stamps.append(now)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    note = mido.Message('note_on', channel=0, note=60, velocity=100)
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
    client.close()
    accepted.close()
    server.close()
    assert len(sent) == len(stamps), (len(sent), len(stamps))
    return [r - s for s, r in zip(sent, stamps)]


def message_mix(count):
    """The same mix as benches/common/mod.rs message_mix() and bench_mido.py."""
    out = []
    for i in range(count):
        channel, v = i % 16, i % 128
        kind = i % 8
        if kind in (0, 1):
            out.append(mido.Message('note_on', channel=channel, note=v, velocity=100))
        elif kind in (2, 3):
            out.append(mido.Message('note_off', channel=channel, note=v, velocity=0))
        elif kind == 4:
            out.append(mido.Message('control_change', channel=channel, control=1, value=v))
        elif kind == 5:
            out.append(mido.Message('pitchwheel', channel=channel, pitch=(i % 8192) - 4096))
        elif kind == 6:
            out.append(mido.Message('program_change', channel=channel, program=v))
        else:
            out.append(mido.Message('clock'))
    return out


def throughput(count, batch=4096):
    """Messages/s received as mido.Message objects; sent in batches of 4096 (send_many), as the
    Rust side sends them."""
    server, client, accepted = pair()
    messages = message_mix(count)

    def send():
        for i in range(0, count, batch):
            client.send_many(messages[i:i + batch])

    thread = threading.Thread(target=send, daemon=True)
    received = 0
    start = time.monotonic_ns()
    thread.start()
    while received < count:
        received += len(accepted.receive_batch())
    elapsed = time.monotonic_ns() - start
    thread.join()
    assert received == count, (received, count)
    client.close()
    accepted.close()
    server.close()
    return count / (elapsed / 1e9)


def write_samples(path, samples):
    with open(path, 'w') as f:
        f.write(''.join(f'{s}\n' for s in samples))


def main():
    args = argparse.ArgumentParser()
    args.add_argument('--out')
    args.add_argument('--rtt', type=int, default=20000)
    args.add_argument('--stream-seconds', type=float, default=10.0)
    args.add_argument('--throughput', type=int, default=200000)
    args.add_argument('--echo', type=int, help='internal: be the round trip echo peer of this port')
    args = args.parse_args()
    if args.echo is not None:
        echo(args.echo)
        return
    if args.out is None:
        raise SystemExit('bench_python.py: --out DIR is required')
    os.makedirs(args.out, exist_ok=True)

    print(f'bench_python: round trip x{args.rtt}', flush=True)
    write_samples(os.path.join(args.out, 'rtt_python.samples'), round_trip(args.rtt, min(1000, args.rtt // 10)))
    print(f'bench_python: 1 kHz stream, {args.stream_seconds} s', flush=True)
    write_samples(os.path.join(args.out, 'oneway_python.samples'), one_way(1000, args.stream_seconds))
    print(f'bench_python: stream throughput, {args.throughput} messages', flush=True)
    # The median of 5 runs, as the Rust side takes the median of its runs: one run is at the
    # mercy of whatever else the machine does meanwhile.
    rates = sorted(throughput(args.throughput // 5) for _ in range(5))
    rate = rates[len(rates) // 2]
    with open(os.path.join(args.out, 'scalars_python.txt'), 'w') as f:
        f.write(f'stream_msgs_per_s.python {rate}\n')


if __name__ == '__main__':
    main()
