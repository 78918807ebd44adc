"""A TCP relay a test puts between a process and a server, to fail the network, not the server.

The shared RabbitMQ (or any server) keeps running for everyone else; only the connections
through the relay break. `cut()` closes every relayed connection and refuses new ones (the
port stops listening), `restore()` listens again on the same port. `lose_replies(n)` lets the
next n requests reach the server and drops the server's answers, closing those connections: a
client then knows nothing of a request that was in fact served — the case an at-least-once
client retries into a duplicate.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from attrs import define, field

CHUNK = 65536


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


@define
class TcpProxy:
    """Relays 127.0.0.1:`port` to `upstream`; start() before use, stop() when done."""

    upstream: tuple[str, int]
    port: int = 0
    accepted: int = 0
    replies_lost: int = 0
    _to_lose: int = 0
    _listener: socket.socket | None = None
    _sockets: set[socket.socket] = field(factory=set)
    _lock: threading.Lock = field(factory=threading.Lock)

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and break every open one (both ends see it closed)."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            _close(listener)
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Listen again on the same port."""
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.cut()

    @contextmanager
    def down(self) -> Iterator[None]:
        """Cut for the duration of the block, then restore, even if the block fails."""
        self.cut()
        try:
            yield
        finally:
            self.restore()

    def lose_replies(self, count: int) -> None:
        """Drop the next `count` answers from upstream, closing each one's connection."""
        with self._lock:
            self._to_lose += count

    # --- relaying --------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut() closed the listener
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _close(client)
                    _close(server)
                    return
                self.accepted += 1
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(CHUNK):
                if replies and self._take_loss():
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.difference_update((source, sink))
            _close(source)
            _close(sink)

    def _take_loss(self) -> bool:
        with self._lock:
            if self._to_lose <= 0:
                return False
            self._to_lose -= 1
            self.replies_lost += 1
            return True
