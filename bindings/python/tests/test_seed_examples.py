"""The examples of the socket-ports document mido ships, run as written with `midisock.sockets`
in place of `mido.sockets` (the document's typos — stray colons, a missing one, and
`reversed(enumerate(...))`, which Python cannot reverse — fixed; port 8080 replaced by a free one)."""

import textwrap

import mido

from conftest import Background, free_port, wait_until
from midisock.sockets import PortServer, connect

NOTE = mido.Message('note_on', note=60, velocity=99)


def script(body, port):
    return 'from midisock.sockets import PortServer, connect\nimport mido\n' + \
        textwrap.dedent(body).replace('8080', str(port))


def test_simple_server_two_lines():
    port = free_port()
    server = script('''
        for message in PortServer('localhost', 8080):
            print(message)
    ''', port)
    with Background(server) as background:
        # Connect as the document does; the server may still be starting.
        output = _connect_when_listening(port)
        output.send(NOTE)
        output.send(mido.Message('control_change', control=7, value=5))
        assert background.wait_for_lines(2) == [str(NOTE), 'control_change channel=0 control=7 value=5 time=0']
        output.close()


def test_server_sends_to_every_client():
    port = free_port()
    # "Turning things on their head": the server sends, each client prints.
    server = script('''
        import time
        server = PortServer('localhost', 8080)
        while True:
            server.send(mido.Message('note_on', note=60, velocity=99))
            time.sleep(0.01)
    ''', port)
    client = script('''
        for message in connect('localhost', 8080):
            print(message)
    ''', port)
    with Background(server):
        wait_until(lambda: _listening(port), what='the server to listen')
        with Background(client) as first, Background(client) as second:
            assert first.wait_for_lines(3) == [str(NOTE)] * 3
            assert second.wait_for_lines(3) == [str(NOTE)] * 3


def test_accept_one_client_at_a_time():
    port = free_port()
    server = script('''
        with PortServer('localhost', 8080) as server:
            while True:
                client = server.accept()
                for message in client:
                    print(message)
    ''', port)
    with Background(server) as background:
        first = _connect_when_listening(port)
        first.send(NOTE)
        background.wait_for_lines(1)
        first.close()
        # The loop goes back to accept() once the first client has gone.
        with connect('localhost', port) as second:
            second.send(mido.Message('stop'))
            assert background.wait_for_lines(2) == [str(NOTE), 'stop time=0']


def test_accept_without_blocking_many_clients():
    port = free_port()
    server = script('''
        with PortServer('localhost', 8080) as server:
            clients = []
            while True:
                # Handle connections.
                client = server.accept(block=False)
                if client:
                    print('Connection from {}'.format(client.name))
                    clients.append(client)

                for i, client in reversed(list(enumerate(clients))):
                    if client.closed:
                        print('{} disconnected'.format(client.name))
                        del clients[i]

                # Receive messages.
                for client in clients:
                    for message in client.iter_pending():
                        print('Received {} from {}'.format(message, client))

                # Do other things
                import time; time.sleep(0.001)
    ''', port)
    with Background(server) as background:
        first = _connect_when_listening(port)
        wait_until(lambda: len(background.lines) >= 1, what='the first connection')
        with connect('localhost', port) as second:
            wait_until(lambda: len(background.lines) >= 2, what='the second connection')
            first.send(NOTE)
            wait_until(lambda: len(background.lines) >= 3, what='a message')
            second.send(mido.Message('clock'))
            wait_until(lambda: len(background.lines) >= 4, what='a second message')
        wait_until(lambda: len(background.lines) >= 5, what='the disconnect')
        first.close()
        wait_until(lambda: len(background.lines) >= 6, what='the second disconnect')
        lines = background.lines
        assert lines[0].startswith('Connection from ') and ':' in lines[0]
        assert lines[1].startswith('Connection from ')
        assert lines[2].startswith(f'Received {NOTE} from ')
        assert lines[3].startswith('Received clock time=0 from ')
        assert lines[4].endswith(' disconnected') and lines[5].endswith(' disconnected')


def test_each_end_is_a_normal_io_port(server):
    with connect('localhost', server.address[1]) as output:
        assert isinstance(output, mido.ports.BaseIOPort)
        accepted = server.accept(timeout=20)
        assert isinstance(accepted, mido.ports.BaseIOPort)
        output.send(NOTE)
        assert accepted.receive() == NOTE
        accepted.send(NOTE)
        assert output.receive() == NOTE
        accepted.close()


def _listening(port):
    import socket
    for family, address in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
        with socket.socket(family) as s:
            s.settimeout(1)
            if s.connect_ex((address, port)) == 0:
                return True
    return False


def _connect_when_listening(port):
    result = []

    def attempt():
        try:
            result.append(connect('localhost', port))
            return True
        except OSError:
            return False
    wait_until(attempt, what='the example server to listen')
    return result[0]


def test_empty_host_means_every_address():
    with PortServer('', 0) as server:
        port = server.address[1]
        for host in ('127.0.0.1', '::1'):
            with connect(host, port) as client:
                client.send(mido.Message('program_change', program=3))
                assert server.receive(timeout=20) == mido.Message('program_change', program=3)
