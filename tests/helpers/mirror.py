"""A mirror of the fixture files on the loopback address, in GitHub raw's layout
(``/<owner>/<repo>/<commit>/<path>``), serving the bytes of a local fixtures folder, with faults to order.

    with Mirror(folder, faults={"tiny-vgg/model.json": NOT_FOUND}) as mirror:
        fetch.main(["--into", dest, "--mirror", mirror.url])
"""
from __future__ import annotations

import collections
import http.server
import threading
import time
from pathlib import Path

from cnn_core import fixtures

NOT_FOUND = "404"
WRONG_BYTES = "wrong bytes"  # the right length, one byte changed
HALF_THEN_CLOSE = "half then close"  # every time: the headers promise the whole file, half comes, the connection closes
HALF_ONCE = "half once"  # the first request only, then the whole file


class Mirror:
    def __init__(self, folder: Path, faults: dict[str, str] | None = None, delay_s: float = 0.0):
        self.folder = folder
        self.faults = dict(faults or {})
        self.delay_s = delay_s  # before each response: slow enough to interrupt a fetch midway
        self.requests: collections.Counter[str] = collections.Counter()  # GETs per manifest path
        self._by_source = {entry.source: entry for entry in fixtures.manifest().values()}
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Mirror:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _body(self, entry: fixtures.FixtureFile) -> tuple[bytes, int]:
        """The bytes to send and the length to announce, after the path's fault."""
        data = (self.folder / entry.path).read_bytes()
        fault = self.faults.get(entry.path)
        with self._lock:
            self.requests[entry.path] += 1
            first = self.requests[entry.path] == 1
        if fault == WRONG_BYTES:
            return data[:-1] + bytes([data[-1] ^ 0xFF]), len(data)
        if fault == HALF_THEN_CLOSE or (fault == HALF_ONCE and first):
            return data[: len(data) // 2], len(data)
        return data, len(data)

    def _handler(self):
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(mirror.delay_s)
                entry = mirror._by_source.get(self.path.lstrip("/"))
                if entry is None or mirror.faults.get(entry.path) == NOT_FOUND:
                    if entry is not None:
                        with mirror._lock:
                            mirror.requests[entry.path] += 1
                    self.send_error(404)
                    return
                body, length = mirror._body(entry)
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)  # fewer bytes than announced: the client sees the connection break

            def log_message(self, *args) -> None:
                """Quiet: the tests read ``requests``."""

        return Handler
