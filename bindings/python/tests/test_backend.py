"""The mido backend: unmodified mido programs open network ports by address."""

import textwrap

import mido
import pytest

from conftest import WAIT, run_python
from midisock.sockets import PortServer, connect

CC = mido.Message('control_change', control=1, value=2)

# A plain mido program: nothing in it knows about midisock.
UNMODIFIED = textwrap.dedent('''
    import sys
    import mido

    address = sys.argv[1] if len(sys.argv) > 1 else None
    with mido.open_output(address) as out:
        out.send(mido.Message('note_on', note=64, velocity=1))
    with mido.open_input(address) as port:
        print(port.receive())
    with mido.open_ioport(address) as port:
        port.send(mido.Message('program_change', program=9))
        print(port.receive())
''')


def test_unmodified_mido_program_over_the_network(server):
    address = f'127.0.0.1:{server.address[1]}'
    code = UNMODIFIED.replace('address = sys.argv[1] if len(sys.argv) > 1 else None',
                              f'address = {address!r}')
    import threading
    replies = threading.Thread(target=lambda: _answer(server), daemon=True)
    replies.start()
    result = run_python(code, env={'MIDO_BACKEND': 'midisock.backend'})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['stop time=0', 'stop time=0']


def _answer(server):
    """Sends `stop` to whoever is connected whenever an input port connects and waits."""
    import time
    deadline = time.monotonic() + WAIT * 2
    seen = set()
    while time.monotonic() < deadline:
        for client in server.ports:
            if client not in seen:
                seen.add(client)
                server.send(mido.Message('stop'))
        if len(seen) >= 3:
            return
        time.sleep(0.01)


def test_default_port_from_environment(server):
    code = 'import mido\nout = mido.open_output()\nout.send(mido.Message("start"))\nout.close()\nprint(out.name)'
    address = f'127.0.0.1:{server.address[1]}'
    result = run_python(code, env={'MIDO_BACKEND': 'midisock.backend', 'MIDO_DEFAULT_OUTPUT': address})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == address
    assert server.receive(timeout=WAIT) == mido.Message('start')


def test_backend_object_and_virtual_port():
    backend = mido.Backend('midisock.backend')
    assert backend.get_input_names() == [] and backend.get_output_names() == []
    with backend.open_input('127.0.0.1:0', virtual=True) as listening:
        port = listening.address[1]
        with backend.open_output(f'127.0.0.1:{port}') as out:
            assert out.is_output and not out.is_input
            with pytest.raises(ValueError):
                out.receive()
            out.send(CC)
            assert listening.receive(timeout=WAIT) == CC
        with pytest.raises(ValueError):
            listening.send(CC)


def test_backend_callback_and_errors(server):
    backend = mido.Backend('midisock.backend')
    got = []
    with backend.open_input(f'127.0.0.1:{server.address[1]}', callback=got.append) as port:
        from conftest import wait_until
        wait_until(lambda: len(server.ports) == 1, what='the input connected')
        server.send(CC)
        wait_until(lambda: got == [CC], what='the callback')
        assert port.callback is not None
    with pytest.raises(ValueError):
        backend.open_output(None)
    with pytest.raises(ValueError):
        backend.open_output('no port here')
    closed = PortServer('127.0.0.1', 0)
    port = closed.address[1]
    closed.close()
    with pytest.raises(OSError):
        backend.open_output(f'127.0.0.1:{port}')
