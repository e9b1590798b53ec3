"""Where a Python round trip's time goes: the package's round trip next to the floors it sits on.

Runs, interleaved, the same ping-pong of one 3-byte note_on (caller pinned to CPU 0, echo to
CPU 1) four ways, and prints p50/p90 of each with the load average:

- raw: plain Python sockets (TCP_NODELAY) with the echo in a second process: the floor for two
  Python programs, with no MIDI and no mido.Message at all;
- package: midisock.sockets with mido.Message objects, echo in a second process (what
  `cargo xtask bench-report` measures);
- package, worker threads: the same with both loops on non-main threads (a receive() is one
  blocking read on every thread; the main thread's is also what Ctrl-C interrupts);
- package, echo thread: the echo a thread of the caller's process (the Rust bench's shape), both
  sharing one interpreter lock.

usage: rtt_floor.py [--count N] [--rounds R]
"""

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import mido
from midisock.sockets import PortServer, connect

NOTE = mido.Message('note_on', note=60, velocity=100)
STOP_BYTE = 0xFC


def pin(cpu):
    if cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def in_thread(function, worker):
    if not worker:
        return function()
    result = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join()
    return result[0]


def package_echo(peer):
    pin(1)
    while True:
        message = peer.receive()
        if message.type == 'stop':
            return
        peer.send(message)


def timed(send, receive, count):
    pin(0)
    samples = []
    clock = time.monotonic_ns
    for i in range(count + count // 10):
        start = clock()
        send()
        receive()
        samples.append(clock() - start)
    return sorted(samples[count // 10:])


def run_package(count, echo_in, worker):
    server = PortServer('127.0.0.1', 0)
    if echo_in == 'process':
        args = [sys.executable, __file__, '--echo', str(server.address[1])] + (['--worker'] if worker else [])
        echo = subprocess.Popen(args)
    else:
        peer = connect('127.0.0.1', server.address[1])
        echo = threading.Thread(target=package_echo, args=(peer,))
        echo.start()
    client = server.accept(timeout=60)
    samples = in_thread(lambda: timed(lambda: client.send(NOTE), client.receive, count), worker)
    client.send(mido.Message('stop'))
    echo.join() if echo_in == 'thread' else echo.wait(60)
    client.close()
    server.close()
    return samples


def run_raw(count):
    listener = socket.create_server(('127.0.0.1', 0))
    echo = subprocess.Popen([sys.executable, __file__, '--raw-echo', str(listener.getsockname()[1])])
    sock, _ = listener.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = timed(lambda: sock.sendall(b'\x90\x3c\x64'), lambda: sock.recv(3), count)
    sock.sendall(bytes([STOP_BYTE]))
    echo.wait(60)
    sock.close()
    return samples


def raw_echo(port):
    pin(1)
    sock = socket.create_connection(('127.0.0.1', port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = sock.recv(3)
        if not data or data[0] == STOP_BYTE:
            return
        sock.sendall(data)


def main():
    args = argparse.ArgumentParser()
    args.add_argument('--count', type=int, default=5000)
    args.add_argument('--rounds', type=int, default=2)
    args.add_argument('--echo', type=int)
    args.add_argument('--worker', action='store_true')
    args.add_argument('--raw-echo', type=int)
    args = args.parse_args()
    if args.raw_echo is not None:
        return raw_echo(args.raw_echo)
    if args.echo is not None:
        with connect('127.0.0.1', args.echo) as peer:
            in_thread(lambda: package_echo(peer), args.worker)
        return
    ways = {
        'raw Python sockets, echo process': lambda: run_raw(args.count),
        'package, echo process': lambda: run_package(args.count, 'process', False),
        'package, worker threads, echo process': lambda: run_package(args.count, 'process', True),
        'package, echo thread': lambda: run_package(args.count, 'thread', False),
    }
    for _ in range(args.rounds):
        for name, run in ways.items():
            samples = run()
            p50, p90 = samples[len(samples) // 2], samples[len(samples) * 9 // 10]
            print(f'{name:40} p50 {p50 / 1000:7.1f} us  p90 {p90 / 1000:7.1f} us  '
                  f'(load {os.getloadavg()[0]:.1f})', flush=True)


if __name__ == '__main__':
    main()
