"""Removing a callback (`port.callback = None`, as in mido) and the threads callbacks run on:
joined by close() and at interpreter exit."""

import os

import mido
import pytest

from conftest import WAIT, receive_all, run_python, wait_until
from midisock.sockets import PortServer, connect


def notes(count, start=0):
    return [mido.Message('note_on', note=n % 128, velocity=1 + n // 128 % 127) for n in range(start, start + count)]


def threads_named(prefix):
    """Threads of this process whose kernel name starts with `prefix` (Rust threads are not in
    threading.enumerate())."""
    names = []
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/comm') as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass  # the thread ended while we looked
    return sum(1 for name in names if name.startswith(prefix))


# The core's port and server callback threads.
PORT_THREAD = 'midisock-cb'
SERVER_THREAD = 'midisock-srv-cb'


def remove_while_receiving(receiver, sender):
    """Sets a callback on `receiver`, removes it while `sender`'s messages may still be arriving,
    and checks that each message went to exactly one of the callback and receive(), in order."""
    sent = notes(2000)
    got = []
    receiver.callback = got.append
    sender.send_many(sent[:1000])
    wait_until(lambda: len(got) >= 10, what='the first callbacks')
    receiver.callback = None
    assert receiver.callback is None
    delivered = len(got)
    sender.send_many(sent[1000:])
    rest = receive_all(receiver, len(sent) - delivered)
    assert got + rest == sent
    assert len(got) == delivered, 'the removed callback was called'
    assert receiver.poll() is None
    # And a callback can be set again.
    again = []
    receiver.callback = again.append
    sender.send(sent[0])
    wait_until(lambda: again == [sent[0]], what='the new callback')


def test_removing_a_port_callback_hands_messages_back_to_receive_without_losing_one(server):
    with connect('127.0.0.1', server.address[1]) as client:
        wait_until(lambda: len(server.ports) == 1, what='the client served')
        remove_while_receiving(client, server)


def test_removing_a_server_callback_hands_messages_back_to_receive_without_losing_one(server):
    with connect('127.0.0.1', server.address[1]) as client:
        remove_while_receiving(server, client)


def test_removing_a_callback_that_was_never_set_is_harmless(server):
    with connect('127.0.0.1', server.address[1]) as client:
        client.callback = None
        wait_until(lambda: len(server.ports) == 1, what='the client served')
        server.send(notes(1)[0])
        assert client.receive(timeout=WAIT) == notes(1)[0]


def test_a_callback_may_remove_itself(server):
    got = []
    with connect('127.0.0.1', server.address[1]) as client:
        def once(message):
            got.append(message)
            client.callback = None
        client.callback = once
        wait_until(lambda: len(server.ports) == 1, what='the client served')
        sent = notes(3)
        server.send_many(sent)
        wait_until(lambda: client.callback is None, what='the callback removed')
        assert got + receive_all(client, 2) == sent


@pytest.mark.parametrize('side', ['port', 'server'])
def test_close_joins_the_callback_thread(side):
    name = PORT_THREAD if side == 'port' else SERVER_THREAD
    before = threads_named(name)
    with PortServer('127.0.0.1', 0) as server:
        client = connect('127.0.0.1', server.address[1])
        owner = client if side == 'port' else server
        owner.callback = lambda message: None
        # A new thread names itself once it runs.
        wait_until(lambda: threads_named(name) == before + 1, what='the callback thread')
        owner.close()
        # Joined by close(): gone as close() returns, not some time later.
        assert threads_named(name) == before
        client.close()


def test_interpreter_exits_with_callbacks_running():
    # Ports and a server left open, callbacks busy when the program ends: the interpreter exits at
    # once (atexit closes them and joins their threads), with nothing on stderr.
    result = run_python('''
import threading, time, mido
from midisock.sockets import PortServer, connect
server = PortServer('127.0.0.1', 0)
busy = threading.Event()
def slow(message):
    busy.set()
    time.sleep(0.01)
server.callback = slow
client = connect('127.0.0.1', server.address[1], callback=slow)
client.send_many([mido.Message('clock')] * 1000)
busy.wait(30)
while len(server.ports) < 1:
    time.sleep(0.005)
server.send_many([mido.Message('clock')] * 1000)
print('exiting', flush=True)
''', timeout=WAIT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'exiting\n'
    assert result.stderr == ''
