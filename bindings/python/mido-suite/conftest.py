"""Runs mido 1.3.3's own tests/test_sockets.py and tests/test_ports.py (fetched from the PyPI
sdist at test time by `cargo xtask test`, never stored in this repository) with `mido.sockets`
replaced by `midisock.sockets`. test_ports.py exercises mido's port base classes, which
midisock's ports are built on."""

import sys

import mido
import midisock.sockets

sys.modules['mido.sockets'] = midisock.sockets
mido.sockets = midisock.sockets


def pytest_sessionstart(session):
    import mido.sockets as replaced
    assert replaced is midisock.sockets, 'mido.sockets was not replaced'
