"""Shared helpers for the midisock Python tests: loopback only, ephemeral ports, bounded waits."""

import os
import platform
import socket
import subprocess
import sys
import threading
import time

import mido
import pytest

from midisock.sockets import PortServer

# Generous: the machine may be busy with other builds. Waits end as soon as their condition holds.
WAIT = 20.0


def wait_until(condition, timeout=WAIT, what='condition'):
    """Polls `condition` until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.005)


def free_port(host='127.0.0.1'):
    """A port nobody listens on right now (for examples that need a fixed port number)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def every_message_type():
    """One message of every type mido knows, with values away from the defaults and the edges."""
    return [
        mido.Message('note_off', channel=15, note=127, velocity=0),
        mido.Message('note_on', channel=3, note=60, velocity=100),
        mido.Message('polytouch', channel=1, note=64, value=33),
        mido.Message('control_change', channel=9, control=7, value=127),
        mido.Message('program_change', channel=2, program=42),
        mido.Message('aftertouch', channel=4, value=99),
        mido.Message('pitchwheel', channel=5, pitch=-8192),
        mido.Message('pitchwheel', channel=6, pitch=8191),
        mido.Message('sysex', data=[0x7e, 0x7f, 0x09, 0x01]),
        mido.Message('sysex', data=[i % 128 for i in range(3000)]),
        mido.Message('sysex', data=[]),
        mido.Message('quarter_frame', frame_type=7, frame_value=15),
        mido.Message('songpos', pos=16383),
        mido.Message('song_select', song=127),
        mido.Message('tune_request'),
        mido.Message('clock'),
        mido.Message('start'),
        mido.Message('continue'),
        mido.Message('stop'),
        mido.Message('active_sensing'),
        mido.Message('reset'),
    ]


@pytest.fixture
def server():
    """A midisock server on 127.0.0.1, any free port; closed after the test."""
    with PortServer('127.0.0.1', 0) as s:
        yield s


def receive_all(port, count, timeout=WAIT):
    """`count` messages from a midisock port or server, each within `timeout`."""
    out = []
    for _ in range(count):
        message = port.receive(timeout=timeout)
        assert message is not None, f'only {len(out)} of {count} messages arrived'
        out.append(message)
    return out


def mido_receive_all(port, count, timeout=WAIT):
    """`count` messages from a mido 1.3.3 port (its receive() cannot time out: poll instead)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        message = port.poll()
        if message is None:
            if time.monotonic() > deadline:
                raise AssertionError(f'only {len(out)} of {count} messages arrived')
            time.sleep(0.001)
        else:
            out.append(message)
    return out


def run_python(code, env=None, timeout=WAIT * 3):
    """Runs `code` in a fresh interpreter (the venv's); returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, '-u', '-c', code], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


# System calls a wait blocks in (read, poll, recvfrom, futex, ppoll), by machine.
_BLOCKING_SYSCALLS = {'x86_64': {0, 7, 45, 202, 271}, 'aarch64': {63, 73, 98, 207}}


def wait_until_blocked(pid, tid=None, timeout=WAIT):
    """Waits until thread `tid` (default: the main thread) of process `pid` sleeps in a blocking
    system call, seen so twice in a row with a pause between (so not a moment's wait for the GIL),
    so that a signal sent now interrupts that call rather than Python code before it."""
    task = f'/proc/{pid}/task/{tid or pid}'
    blocking = _BLOCKING_SYSCALLS.get(platform.machine())
    seen = [0]

    def blocked():
        with open(f'{task}/stat') as stat:
            # The state follows the parenthesised name, which may itself contain spaces.
            sleeping = stat.read().rsplit(') ', 1)[1].startswith('S')
        if sleeping and blocking is not None:
            with open(f'{task}/syscall') as syscall:
                number = syscall.read().split()[0]
            sleeping = number.isdigit() and int(number) in blocking
        seen[0] = seen[0] + 1 if sleeping else 0
        return seen[0] >= 2
    wait_until(blocked, timeout, f'thread {tid or pid} of process {pid} to block')


class Background:
    """Runs `code` in a fresh interpreter, collecting its output lines; killed on exit."""

    def __init__(self, code, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.process = subprocess.Popen([sys.executable, '-u', '-c', code], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip('\n'))

    def wait_for_lines(self, count, timeout=WAIT):
        def enough():
            if self.process.poll() is not None and len(self.lines) < count:
                self._reader.join(1)
                raise AssertionError(f'process ended ({self.process.returncode}) after {self.lines}: '
                                     f'{self.process.stderr.read()}')
            return len(self.lines) >= count
        wait_until(enough, timeout, f'{count} lines of output')
        return self.lines[:count]

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT)
        self._reader.join(WAIT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
