"""Ctrl-C and other signals during a blocking wait.

A blocking receive or accept is one blocking call of the core with the GIL released. CPython's
SIGINT handler is installed without SA_RESTART, so the signal makes that call return on the main
thread; the handlers run and KeyboardInterrupt ends the wait. On any other thread a signal only
makes the wait start again. Every signal here is sent once its target sleeps in that call, and
nothing is ever sent to the waiting port: a wait that a signal cannot end fails the test (after
WAIT) instead of passing late.
"""

import os
import signal
import threading
import time

import mido
import pytest

from conftest import WAIT, Background, wait_until, wait_until_blocked
from midisock.sockets import connect

CC = mido.Message('control_change', control=1, value=2)

# What the child process opens (`{port}`: the test server's port), then how it waits.
OPEN = {
    'port': "from midisock.sockets import connect\nsource = connect('127.0.0.1', {port})",
    'jitter-buffered port': "from midisock.sockets import connect\n"
                            "source = connect('127.0.0.1', {port}, jitter_buffer=50)",
    'server': "from midisock.sockets import PortServer\nsource = PortServer('127.0.0.1', 0)",
}
WAITS = [
    ('port', 'source.receive()'),
    ('port', 'source.receive(timeout=600)'),
    ('port', 'source.receive_batch()'),
    ('port', 'for message in source: pass'),
    ('jitter-buffered port', 'source.receive()'),
    ('jitter-buffered port', 'source.receive(timeout=600)'),
    ('server', 'source.receive()'),
    ('server', 'source.receive(timeout=600)'),
    ('server', 'for message in source: pass'),
    ('server', 'source.accept()'),
    ('server', 'source.accept(timeout=600)'),
]


@pytest.mark.parametrize('opened, wait', WAITS, ids=[f'{o}: {w}' for o, w in WAITS])
def test_ctrl_c_interrupts_a_blocking_wait_at_once(server, opened, wait):
    code = OPEN[opened].format(port=server.address[1]) + f'''
print('waiting', flush=True)
try:
    {wait}
except KeyboardInterrupt:
    print('interrupted', flush=True)
'''
    with Background(code) as background:
        background.wait_for_lines(1)
        wait_until_blocked(background.process.pid)
        sent = time.monotonic()
        background.process.send_signal(signal.SIGINT)
        assert background.wait_for_lines(2) == ['waiting', 'interrupted']
        # Well within WAIT even on a loaded machine; the old 50 ms slices were the bound before.
        assert time.monotonic() - sent < WAIT / 2
        assert background.process.wait(WAIT) == 0


@pytest.fixture
def sigusr1():
    """A Python handler for SIGUSR1 (installed, as all of CPython's, without SA_RESTART): the
    list of signals it has seen."""
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    yield seen
    signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize('wait', ['port receive', 'port receive timeout', 'server receive', 'server accept'])
def test_a_signal_to_a_worker_thread_does_not_end_its_wait(server, sigusr1, wait):
    """The signal interrupts the worker's blocking call (pthread_kill sends it to that thread
    alone); the wait must go on and get what comes afterwards."""
    client = connect('127.0.0.1', server.address[1])
    try:
        if wait == 'server accept':
            accepted = server.accept(timeout=WAIT)
            waiting, deliver = (lambda: server.accept()), (lambda: connect('127.0.0.1', server.address[1]))
        elif wait.startswith('server'):
            waiting, deliver = (lambda: server.receive()), (lambda: client.send(CC))
        else:
            accepted = server.accept(timeout=WAIT)
            timeout = WAIT if wait.endswith('timeout') else None
            waiting, deliver = (lambda: client.receive(timeout=timeout)), (lambda: accepted.send(CC))
        got = []
        worker = threading.Thread(target=lambda: got.append(waiting()))
        worker.start()
        wait_until_blocked(os.getpid(), worker.native_id)
        signal.pthread_kill(worker.ident, signal.SIGUSR1)
        # The Python handler runs on the main thread, once the worker's C handler has noted it.
        wait_until(lambda: sigusr1, what='the SIGUSR1 handler')
        assert worker.is_alive(), 'the signal ended the wait'
        delivered = deliver()
        worker.join(WAIT)
        assert not worker.is_alive()
        if wait == 'server accept':
            assert got[0].peer_address == delivered.local_address
            got[0].close()
            delivered.close()
        else:
            assert got == [CC]
    finally:
        client.close()
