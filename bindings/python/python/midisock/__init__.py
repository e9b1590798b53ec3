"""midisock: MIDI over TCP for mido, on a Rust core.

- ``midisock.sockets`` — ``mido.sockets``'s API (PortServer, SocketPort, connect, parse_address,
  format_address) without its hangs, faster, with timeouts, callbacks, timestamps and protections.
- ``midisock.backend`` — a mido backend whose port names are addresses:
  ``mido.set_backend('midisock.backend')``, then ``mido.open_output('host:port')``.
"""

from . import sockets
from ._core import PortClosedError, monotonic
from .sockets import PortServer, SocketPort, connect, format_address, parse_address

__all__ = ['sockets', 'PortServer', 'SocketPort', 'connect', 'parse_address', 'format_address',
           'PortClosedError', 'monotonic']
