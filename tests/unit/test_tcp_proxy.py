"""tests/tcp_proxy.py, the relay the SDK tests cut: against an echo server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.tcp_proxy import TcpProxy


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(99):
            conn.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(99) == b""
    except ConnectionResetError:
        return True


def ask(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(99)


def test_it_relays_refuses_while_cut_and_relays_again_once_restored(echo: int) -> None:
    proxy = TcpProxy(("127.0.0.1", echo)).start()
    try:
        assert ask(proxy.port, b"one") == b"one"
        open_one = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with open_one, proxy.down():
            assert closed(open_one)
            with pytest.raises(ConnectionRefusedError):
                ask(proxy.port, b"two")
        assert ask(proxy.port, b"three") == b"three"
    finally:
        proxy.stop()


def test_a_lost_reply_closes_its_connection_and_the_next_one_arrives(echo: int) -> None:
    proxy = TcpProxy(("127.0.0.1", echo)).start()
    try:
        proxy.lose_replies(1)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as lost:
            lost.sendall(b"lost")
            assert closed(lost)
        assert ask(proxy.port, b"kept") == b"kept"
        assert proxy.replies_lost == 1
    finally:
        proxy.stop()
