"""A real S3 HTTP endpoint on loopback for the S3 tests: moto's standalone server and a fault-injecting proxy.

The server is moto's ThreadedMotoServer on 127.0.0.1 and a free port, reset through its HTTP API before every
test, with buckets made through the S3 API: the way s3fs tests itself. Nothing in boto or s3fs is mocked or
patched; the code under test talks HTTP to a server.

Used by tests/test_s3.py through ``pytest_plugins``.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BUCKET = "stedi-lake"
# Recognisable, so a test can prove it never reaches output; shaped like neither a real key nor a secret.
FAKE_KEY_ID = "FAKEKEYIDFORMOTOTESTS"
FAKE_SECRET = "fake-secret-Zq8pXw3vTn6Lr1Ks"

# Variables of the AWS chain a developer's shell may hold; each test starts without them.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "STEDI_ETL_S3_ENDPOINT_URL",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3:
    """The moto endpoint of one test, with its bucket made and fake credentials in the environment."""

    endpoint: str
    bucket: str = BUCKET
    key_id: str = FAKE_KEY_ID
    secret: str = FAKE_SECRET

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def client(self, endpoint: str | None = None):
        import boto3

        return boto3.client("s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1")

    def keys(self, prefix: str = "") -> dict[str, int]:
        """Every key under ``prefix`` with its size, listed straight from the server."""
        found: dict[str, int] = {}
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        ):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 and a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> S3:
    """An empty server with one bucket, fake credentials and nothing else of the AWS chain set.

    The endpoint is not in the environment: each test passes it (--s3-endpoint-url) or sets
    AWS_ENDPOINT_URL itself.
    """
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    nowhere = tmp_path_factory.mktemp("no-aws-config") / "absent"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    store = S3(moto_endpoint)
    store.client().create_bucket(Bucket=store.bucket)
    return store


# --- an endpoint that accepts connections and never answers ----------------------------------------------


@dataclass
class SilentEndpoint:
    """A TCP server on loopback that accepts every connection and never sends a byte."""

    port: int = 0
    held: list[socket.socket] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])

        def accept() -> None:
            while True:
                try:
                    connection, _ = self._server.accept()
                except OSError:
                    return  # closed
                self.held.append(connection)

        threading.Thread(target=accept, daemon=True).start()

    def stop(self) -> None:
        self._server.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


# --- the fault-injecting proxy ------------------------------------------------------------------------------

_FAULTS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
}


@dataclass
class FaultProxy:
    """An HTTP proxy on loopback that forwards to the S3 server, or answers with an S3 error instead.

    ``fail(n)`` answers the next ``n`` matching requests with the error; ``fail(None)`` every one from now
    on. ``matches`` picks the requests that may fail (method, path and query); the rest always pass.
    """

    target: str
    port: int = 0
    code: str = "SlowDown"
    remaining: int | None = 0
    matches: Callable[[str, str], bool] = lambda _method, _path: True
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    # Requests this matches are read and never answered (an endpoint that stalls), until the proxy stops.
    stalls: Callable[[str, str], bool] = lambda _method, _path: False
    stalled: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def failed(self) -> list[tuple[str, str, int]]:
        return [r for r in self.seen if r[2] >= 500]

    def fail(
        self, count: int | None, code: str = "SlowDown", matches: Callable[[str, str], bool] | None = None
    ) -> None:
        with self._lock:
            self.remaining, self.code = count, code
            self.matches = matches or (lambda _method, _path: True)

    def _should_fail(self, method: str, path: str) -> bool:
        with self._lock:
            if not self.matches(method, path) or self.remaining == 0:
                return False
            if self.remaining is not None:
                self.remaining -= 1
            return True

    def start(self) -> None:
        proxy = self
        host, port = self.target.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of S3

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()  # read even when failing, so the connection stays usable
                if proxy.stalls(self.command, self.path):
                    proxy.stalled.append((self.command, self.path))
                    proxy._stopping.wait()
                    self.close_connection = True
                    return
                if proxy._should_fail(self.command, self.path):
                    status, message = _FAULTS[proxy.code]
                    proxy.seen.append((self.command, self.path, status))
                    xml = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Error><Code>{proxy.code}</Code><Message>{message}</Message>"
                        "<RequestId>fault-proxy</RequestId></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(xml)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(xml)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers.pop("Content-Length", None)
                connection = http.client.HTTPConnection(host, int(port), timeout=30)
                try:
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                finally:
                    connection.close()
                proxy.seen.append((self.command, self.path, response.status))
                self.send_response(response.status)
                # A HEAD answer's Content-Length is the object's size, not the (empty) body's.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fault_proxy(s3: S3) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of this test's server; it forwards everything until told to fail."""
    proxy = FaultProxy(s3.endpoint)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
