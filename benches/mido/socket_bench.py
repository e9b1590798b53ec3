"""The bench report's three socket workloads, measured one way for every Python contender.

benches/mido/bench_mido.py (mido 1.3.3's socket ports) and bindings/python/bench/bench_python.py
(the midisock package) each describe how their ports connect, send and receive; this module owns
what is measured and how, so the two cannot drift apart:

- round trip: one note_on sent and echoed back, timed around send() + receive() with
  time.monotonic_ns(); the caller pinned to CPU 0, the echo to CPU 1 (workload `rtt`) and then
  to CPU 0 beside it (`rtt1cpu`), as benches/side_by_side.rs places the Rust API's. The echo is
  the same script in a second process (`--echo PORT`): two Python programs talking, each with
  its own interpreter lock, as two applications would;
- one-way latency of a 1 kHz stream: send time to the moment receive() returns the message, both
  time.monotonic_ns(), sender and receiver threads in one process;
- stream throughput: a sender thread sends the message mix of benches/common/mod.rs while the
  measuring thread receives every message as a mido.Message; the median of 5 runs.

usage: <script> --out DIR [--rtt N] [--stream-seconds S] [--throughput N]  (or --echo PORT)
"""

import argparse
import os
import subprocess
import sys
import threading
import time

import mido

STOP = mido.Message('stop')
NOTE = mido.Message('note_on', channel=0, note=60, velocity=100)
CALLER_CPU, ECHO_CPU = 0, 1


def pin_thread(cpu):
    """Pins the calling thread (pid 0 on Linux) to `cpu` if the machine has it; returns the
    previous mask."""
    previous = os.sched_getaffinity(0)
    if cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})
    return previous


def message_mix(count):
    """The same mix as benches/common/mod.rs message_mix()."""
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


class Contender:
    """What a bench script supplies. `listen()` returns (server, port number); `accept(server)`
    the connected port; `connect(port)` a client port; `close(*ports_or_servers)` closes them.
    `send_stream(port, messages)` and `receive_some(port)` (returns how many messages it took)
    are the throughput's two ends."""

    name = None

    def listen(self):
        raise NotImplementedError

    def accept(self, server):
        raise NotImplementedError

    def connect(self, port):
        raise NotImplementedError

    def close(self, *things):
        for thing in things:
            thing.close()

    def send_stream(self, port, messages):
        for message in messages:
            port.send(message)

    def receive_some(self, port):
        port.receive()
        return 1

    def pair(self):
        """(server, client port, accepted port)."""
        server, number = self.listen()
        client = self.connect(number)
        return server, client, self.accept(server)


def round_trip(contender, script, count, warmup, echo_cpu):
    server, number = contender.listen()
    echo = subprocess.Popen([sys.executable, script, '--echo', str(number), '--echo-cpu', str(echo_cpu)])
    try:
        client = contender.accept(server)
        previous = pin_thread(CALLER_CPU)
        samples = []
        send, receive, clock = client.send, client.receive, time.monotonic_ns
        for i in range(warmup + count):
            start = clock()
            send(NOTE)
            receive()
            end = clock()
            if i >= warmup:
                samples.append(end - start)
        client.send(STOP)
        os.sched_setaffinity(0, previous)
        assert echo.wait(60) == 0, 'the echo process failed'
        contender.close(client)
    finally:
        if echo.poll() is None:
            echo.kill()
            echo.wait()
        contender.close(server)
    return samples


def echo(contender, number, cpu):
    pin_thread(cpu)
    peer = contender.connect(number)
    while True:
        message = peer.receive()
        if message.type == 'stop':
            break
        peer.send(message)
    contender.close(peer)


def one_way(contender, rate_hz, seconds):
    server, client, accepted = contender.pair()
    stamps = []

    def receive():
        while True:
            message = accepted.receive()
            now = time.monotonic_ns()
            if message.type == 'stop':
                return
            stamps.append(now)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    period_ns = 1_000_000_000 // rate_hz
    count = int(seconds * rate_hz)
    sent = []
    start = time.monotonic_ns()
    for i in range(count):
        delay = start + i * period_ns - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        sent.append(time.monotonic_ns())
        client.send(NOTE)
    client.send(STOP)
    thread.join()
    contender.close(client, accepted, server)
    assert len(sent) == len(stamps), (len(sent), len(stamps))
    return [r - s for s, r in zip(sent, stamps)]


def throughput(contender, count):
    """Messages/s received as mido.Message objects."""
    server, client, accepted = contender.pair()
    messages = message_mix(count)
    thread = threading.Thread(target=contender.send_stream, args=(client, messages), daemon=True)
    received = 0
    start = time.monotonic_ns()
    thread.start()
    while received < count:
        received += contender.receive_some(accepted)
    elapsed = time.monotonic_ns() - start
    thread.join()
    assert received == count, (received, count)
    contender.close(client, accepted, server)
    return count / (elapsed / 1e9)


def write_samples(path, samples):
    with open(path, 'w') as f:
        f.write(''.join(f'{s}\n' for s in samples))


def main(contender, script):
    """Runs the three workloads (or the echo peer) for `contender`; `script` is the caller's
    __file__, started again as the echo process."""
    name = contender.name
    args = argparse.ArgumentParser()
    args.add_argument('--out')
    args.add_argument('--rtt', type=int, default=20000)
    args.add_argument('--stream-seconds', type=float, default=10.0)
    args.add_argument('--throughput', type=int, default=200000, help='messages over all 5 runs')
    args.add_argument('--echo', type=int, help='internal: be the round trip echo peer of this port')
    args.add_argument('--echo-cpu', type=int, default=ECHO_CPU, help='internal: the CPU the echo runs on')
    args = args.parse_args()
    if args.echo is not None:
        echo(contender, args.echo, args.echo_cpu)
        return
    if args.out is None:
        raise SystemExit(f'{os.path.basename(script)}: --out DIR is required')
    os.makedirs(args.out, exist_ok=True)

    for workload, echo_cpu in (('rtt', ECHO_CPU), ('rtt1cpu', CALLER_CPU)):
        print(f'bench_{name}: round trip x{args.rtt}, echo on CPU {echo_cpu}', flush=True)
        samples = round_trip(contender, script, args.rtt, min(1000, args.rtt // 10), echo_cpu)
        write_samples(os.path.join(args.out, f'{workload}_{name}.samples'), samples)
    print(f'bench_{name}: 1 kHz stream, {args.stream_seconds} s', flush=True)
    write_samples(os.path.join(args.out, f'oneway_{name}.samples'), one_way(contender, 1000, args.stream_seconds))
    print(f'bench_{name}: stream throughput, {args.throughput} messages', flush=True)
    # The median of 5 runs, as the Rust side takes the median of its runs: one run is at the
    # mercy of whatever else the machine does meanwhile.
    rates = sorted(throughput(contender, args.throughput // 5) for _ in range(5))
    with open(os.path.join(args.out, f'scalars_{name}.txt'), 'w') as f:
        f.write(f'stream_msgs_per_s.{name} {rates[len(rates) // 2]}\n')
