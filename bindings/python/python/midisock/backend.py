"""A mido backend whose port names are network addresses.

Select it with ``MIDO_BACKEND=midisock.backend`` or ``mido.set_backend('midisock.backend')``
(or ``mido.Backend('midisock.backend')``); then an unmodified mido program talks over TCP::

    port = mido.open_output('localhost:8080')     # connects to a server there
    port = mido.open_input('localhost:8080')      # receives what that server sends
    port = mido.open_ioport('localhost:8080')     # both
    port = mido.open_input(':8080', virtual=True) # is the server: others connect to it

Names are ``host:port`` or ``[ipv6]:port``. The usual keywords work (``callback=``,
``autoreset=``); midisock's extra ones (``timestamps=``, ``timeout=``, ``token=``, ``tls_ca=``,
and a virtual port's protections) pass through. There is no port discovery: the name lists are
empty.
"""

from mido.ports import BaseInput, BaseOutput

from .sockets import PortServer, SocketPort, parse_address

__all__ = ['get_devices', 'Input', 'Output', 'IOPort']


def get_devices(**kwargs):
    """Network ports are not discovered: there is nothing to list."""
    return []


def _address(name, listening=False):
    if name is None:
        raise ValueError('midisock.backend needs a port name "host:port" '
                         '(or set MIDO_DEFAULT_INPUT / MIDO_DEFAULT_OUTPUT / MIDO_DEFAULT_IOPORT)')
    if listening and isinstance(name, str) and name.endswith(':0'):
        # A virtual port may ask for any free port; its .address tells which.
        return parse_address(name[:-1] + '1')[0], 0
    return parse_address(name)


def _open(name, virtual, input, output, kwargs):
    kwargs.pop('api', None)
    callback = kwargs.pop('callback', None)
    autoreset = kwargs.pop('autoreset', False)
    if virtual:
        host, port = _address(name, listening=True)
        kwargs.pop('timeout', None)
        server = _VirtualPort(host, port, callback=callback, **kwargs)
        server.is_input, server.is_output = input, output
        return server
    host, port = _address(name)
    port = _NetworkPort(host, port, autoreset=autoreset, **kwargs)
    port.is_input, port.is_output = input, output
    if callback is not None:
        port.callback = callback
    return port


class _NetworkPort(SocketPort):
    """A connection to the server named by the port's name."""


class _VirtualPort(PortServer):
    """A server at the port's name: ``virtual=True`` ports are the ones others connect to."""

    def send(self, msg):
        if not self.is_output:
            raise ValueError('Not an output port')
        super().send(msg)

    def receive(self, block=True, timeout=None):
        if not self.is_input:
            raise ValueError('Not an input port')
        return super().receive(block, timeout)


def Input(name=None, virtual=False, **kwargs):
    """An input port: ``name`` is the server's ``host:port``."""
    return _open(name, virtual, True, False, kwargs)


def Output(name=None, virtual=False, **kwargs):
    """An output port: ``name`` is the server's ``host:port``."""
    return _open(name, virtual, False, True, kwargs)


def IOPort(name=None, virtual=False, **kwargs):
    """An input and output port over one connection: ``name`` is the server's ``host:port``."""
    return _open(name, virtual, True, True, kwargs)


# mido checks ports with isinstance against its base classes.
assert issubclass(_NetworkPort, BaseInput) and issubclass(_NetworkPort, BaseOutput)
