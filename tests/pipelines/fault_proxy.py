"""A loopback HTTP proxy in front of the moto S3 server that fails a seeded fraction of requests.

Faults, chosen per request by a seeded RNG (``failure_rate`` of requests fail, at most ``max_in_row``
failures in a row on one object):

* ``slowdown``: ``503 SlowDown`` with an S3 XML error body, the request never reaches the server;
* ``reset_before``: the connection is reset before the request is forwarded;
* ``reset_after``: the request is forwarded (a PUT takes effect) but the connection is reset
  instead of answering;
* ``reset_mid``: the status line, headers and half of the body are sent, then the connection is reset.

Set ``failure_rate = 0`` to end the outage. ``injected`` counts the faults by kind.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

FAULTS = ("slowdown", "reset_before", "reset_after", "reset_mid")
_SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


class FaultProxy:
    """``FaultProxy(upstream).start()``; ``endpoint`` is the URL to point S3 clients at."""

    def __init__(self, upstream: str, failure_rate: float = 0.0, max_in_row: int = 8, seed: int = 0) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.failure_rate = failure_rate
        self.max_in_row = max_in_row
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._in_row: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def choose(self, path: str) -> str | None:
        """The fault for one request to ``path`` (None = pass through), by the seeded RNG."""
        with self._lock:
            self.requests += 1
            if self.failure_rate <= 0 or self._in_row[path] >= self.max_in_row:
                self._in_row[path] = 0
                return None
            if self.rng.random() >= self.failure_rate:
                self._in_row[path] = 0
                return None
            fault = self.rng.choice(FAULTS)
            self._in_row[path] += 1
            self.injected[fault] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reset(self) -> None:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    if body or self.command in ("PUT", "POST"):
                        headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP], data
                finally:
                    conn.close()

            def _handle(self) -> None:
                body = self._body()
                fault = proxy.choose(urlparse(self.path).path)
                if fault == "reset_before":
                    return self._reset()
                if fault == "slowdown":
                    self.send_response(503, "Slow Down")
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_SLOWDOWN)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(_SLOWDOWN)
                    return None
                status, headers, data = self._forward(body)
                if fault == "reset_after":
                    return self._reset()
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                length = next((v for k, v in headers if k.lower() == "content-length"), None)
                self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return None
                if fault == "reset_mid" and len(data) > 1:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    return self._reset()
                self.wfile.write(data)
                return None

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler
