"""A web site of a test's own, on a port (an origin) of its own: one page and a folder of files.

The browser tests load their page from here, so that what the page sends dedup is a
cross-origin request, as from a product's real site.
"""

from __future__ import annotations

import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from attrs import define


@define
class StaticSite:
    """Serves `page` at / and the files of `folder` under `mount`; start(), then stop()."""

    page: str
    folder: Path
    mount: str
    server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self.server is not None, "start() first"
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> StaticSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = site.find(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                kind, body = found
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reports what matters

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def find(self, path: str) -> tuple[str, bytes] | None:
        if path == "/":
            return "text/html; charset=utf-8", self.page.encode()
        if not path.startswith(self.mount + "/"):
            return None
        file = (self.folder / path.removeprefix(self.mount + "/")).resolve()
        if self.folder.resolve() not in file.parents or not file.is_file():
            return None
        return mimetypes.guess_type(file.name)[0] or "application/octet-stream", file.read_bytes()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
