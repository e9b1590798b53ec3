"""The server's protections and the client's matching options, from Python."""

import subprocess

import mido
import pytest

from conftest import WAIT, wait_until
from midisock.sockets import PortServer, connect

CC = mido.Message('control_change', control=1, value=2)


def test_allowlist_refuses_other_peers():
    with PortServer('127.0.0.1', 0, allow=['10.0.0.0/8']) as server:
        client = connect('127.0.0.1', server.address[1])
        # The server says why before it closes: the refusal is an error, not a quiet close.
        with pytest.raises(ConnectionRefusedError, match='address not allowed'):
            client.receive(timeout=WAIT)
        assert client.closed
        client.close()
        wait_until(lambda: server.stats()['connections_refused'] >= 1, what='a refusal counted')
    with PortServer('127.0.0.1', 0, allow=['127.0.0.1']) as server:
        with connect('127.0.0.1', server.address[1]) as client:
            client.send(CC)
            assert server.receive(timeout=WAIT) == CC


def test_sysex_denied():
    with PortServer('127.0.0.1', 0, sysex=False) as server:
        with connect('127.0.0.1', server.address[1]) as client:
            client.send(mido.Message('sysex', data=[1, 2, 3]))
            client.send(CC)
            assert server.receive(timeout=WAIT) == CC
            assert server.stats()['sysex_denied'] == 1


def test_sysex_length_limit():
    with PortServer('127.0.0.1', 0, max_sysex_len=16) as server:
        with connect('127.0.0.1', server.address[1]) as client:
            client.send(mido.Message('sysex', data=[1] * 100))
            client.send(mido.Message('sysex', data=[2] * 8))
            assert server.receive(timeout=WAIT) == mido.Message('sysex', data=[2] * 8)


def test_token():
    with PortServer('127.0.0.1', 0, token='s3cret') as server:
        with connect('127.0.0.1', server.address[1], token='s3cret') as client:
            client.send(CC)
            assert server.receive(timeout=WAIT) == CC
        with pytest.raises(OSError):
            with connect('127.0.0.1', server.address[1], token='wrong') as client:
                # A wrong token is refused; the client learns it at connect or on its next read.
                client.send(CC)
                client.receive(timeout=WAIT)
                raise AssertionError('a wrong token must not be served')
        wait_until(lambda: server.stats()['auth_failures'] >= 1, what='the failure counted')
    with pytest.raises(ValueError):
        connect('127.0.0.1', 1, token='not printable \n')


def openssl(*args):
    subprocess.run(['openssl', *args], check=True, capture_output=True, timeout=WAIT)


def test_tls(tmp_path):
    # A CA, and a certificate for localhost that it signs (TLS wants the two apart).
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ('ca.key', 'ca.pem', 'key.pem', 'req.csr', 'cert.pem'))
    curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    openssl('req', '-x509', *curve, '-days', '1', '-subj', '/CN=test CA', '-keyout', ca_key, '-out', ca)
    openssl('req', *curve, '-subj', '/CN=localhost', '-keyout', key, '-out', csr)
    ext = tmp_path / 'ext.cnf'
    ext.write_text('subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n')
    openssl('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca_key, '-CAcreateserial', '-days', '1',
            '-extfile', ext, '-out', cert)
    key, cert, ca = str(key), str(cert), str(ca)
    with PortServer('127.0.0.1', 0, tls_cert=cert, tls_key=key) as server:
        with connect('127.0.0.1', server.address[1], tls_ca=ca, tls_server_name='localhost') as client:
            client.send(CC)
            assert server.receive(timeout=WAIT) == CC
            wait_until(lambda: len(server.ports) == 1, what='the client served')
            server.send(CC)
            assert client.receive(timeout=WAIT) == CC
    with pytest.raises(OSError):
        connect('127.0.0.1', 1, tls_ca=str(tmp_path / 'missing.pem'))
    with pytest.raises(ValueError):
        PortServer('127.0.0.1', 0, tls_cert=cert)


def test_relay_passes_messages_between_clients():
    with PortServer('127.0.0.1', 0, relay=True) as server:
        with connect('127.0.0.1', server.address[1]) as a, connect('127.0.0.1', server.address[1]) as b:
            wait_until(lambda: len(server.ports) == 2, what='two clients')
            a.send(CC)
            assert b.receive(timeout=WAIT) == CC
            assert server.receive(timeout=WAIT) == CC


def test_max_clients():
    with PortServer('127.0.0.1', 0, max_clients=1) as server:
        with connect('127.0.0.1', server.address[1]) as first:
            wait_until(lambda: len(server.ports) == 1, what='the first client')
            second = connect('127.0.0.1', server.address[1])
            with pytest.raises(ConnectionRefusedError, match='too many clients'):
                second.receive(timeout=WAIT)
            assert second.closed
            second.close()
            first.send(CC)
            assert server.receive(timeout=WAIT) == CC
