"""Real servers on free loopback ports for the tests: a scripted HTTP fault
server, optionally forwarding what it does not fault to an upstream (moto's
S3 server), and moto's S3 server itself."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
import http.server
import socket
import threading
from typing import Callable, List, Optional, Tuple

Reply = Tuple[int, dict, bytes]  # status, headers, body; status 0: reset the connection


def s3_error(status: int, code: str, headers: Optional[dict] = None) -> Reply:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>injected {code}</Message><RequestId>test</RequestId></Error>"
    ).encode()
    return status, {"Content-Type": "application/xml", **(headers or {})}, body


RESET: Reply = (0, {}, b"")

#: A reply header (never sent) asking the server to cut the body off halfway.
TRUNCATE = "X-Test-Truncate"


def truncated(body: bytes) -> Reply:
    """A 200 whose body stops halfway: the connection closes mid-body."""
    return 200, {TRUNCATE: "1"}, body


class FaultServer:
    """Answers each request with the first scripted fault whose predicate
    matches it (each fault used `times` times), else forwards it to
    `upstream` (host, port), else answers 200 with `body`."""

    def __init__(self, upstream: Optional[Tuple[str, int]] = None, body: bytes = b"{}") -> None:
        self.upstream, self.body = upstream, body
        self.faults: List[list] = []
        self.requests: List[Tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b""
                with server.lock:
                    server.requests.append((self.command, self.path, dict(self.headers)))
                    reply = server._take(self.command, self.path)
                if reply is None and server.upstream:
                    reply = server._forward(self.command, self.path, dict(self.headers), payload)
                if reply is None:
                    reply = (200, {"Content-Type": "application/json"}, server.body)
                status, headers, body = reply
                if headers.get(TRUNCATE):
                    # Promise the whole body, send a part, hang up.
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if status == 0:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def fail(self, times: int, reply: Reply, matches: Callable[[str, str], bool] = lambda m, p: True) -> None:
        with self.lock:
            self.faults.append([times, matches, reply])

    def _take(self, method: str, path: str) -> Optional[Reply]:
        for fault in self.faults:
            if fault[0] > 0 and fault[1](method, path):
                fault[0] -= 1
                return fault[2]
        return None

    def _forward(self, method: str, path: str, headers: dict, payload: bytes) -> Reply:
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, dict(response.getheaders()), body

    def hits(self, method: Optional[str] = None) -> int:
        with self.lock:
            return sum(1 for m, _, _ in self.requests if method is None or m == method)

    def hits_where(self, matches: Callable[[str, str], bool]) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests if matches(m, p))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RedisServer:
    """A real ``redis-server`` (``$REDIS_SERVER``, else the one on ``PATH``)
    on a free loopback port, persisting nothing, its files in ``directory``."""

    def __init__(self, directory) -> None:
        binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory)],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.005)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
