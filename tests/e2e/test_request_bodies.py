"""Request bodies through real servers: slow ones end in 408 within BODY_TIMEOUT, oversized ones in a 413 every
client reads (urllib, requests, httpx, curl), chunked or not, under gunicorn's gevent worker and the dev server."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import httpx
import pytest
import requests
from support import LiveServer

SERVERS = {"gunicorn": {}, "dev": {"dev": True}}
TEN_MB = b'{"prompt": "' + b"x" * (10 * 1024 * 1024) + b'"}'


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request):
    """One server per kind: a 1-second body deadline and the default 1 MiB body limit."""
    with LiveServer(BODY_TIMEOUT="1", **SERVERS[request.param]) as live:
        yield live


class SlowClient:
    """Sends a request head, then its body one piece every ``interval`` seconds, while reading the answer."""

    def __init__(self, port: int, head: bytes, pieces: list[bytes], interval: float):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(head)
        self.pieces, self.interval = pieces, interval
        self.sent = 0
        self.sent_when_answered: int | None = None
        self.answer = b""
        self._stop = threading.Event()

    def _send(self) -> None:
        for piece in self.pieces:
            if self._stop.wait(self.interval):
                return
            try:
                self.sock.sendall(piece)
            except OSError:
                return  # the server closed on us: what we want
            self.sent += 1

    def run(self) -> bytes:
        """Everything the server sent until it closed the connection."""
        sender = threading.Thread(target=self._send, daemon=True)
        sender.start()
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                if self.sent_when_answered is None:
                    self.sent_when_answered = self.sent
                self.answer += data
        finally:
            self._stop.set()
            sender.join(10)
            self.sock.close()
        return self.answer


def head(port: int, extra: str) -> bytes:
    return (f"POST /chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}\r\n"
            .encode("ascii"))


def assert_timed_out(client: SlowClient, pieces: int) -> None:
    status_line, _, rest = client.answer.partition(b"\r\n")
    assert b" 408 " in status_line, client.answer[:300]
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1].split(b"\r\n0\r\n")[0].strip() or b"{}")
    assert body["error"]["code"] == "request_timeout" and body["error"]["type"] == "invalid_request_error"
    # Answered (and the connection closed) while the client was still sending: nothing waited for the body.
    assert client.sent_when_answered is not None and client.sent_when_answered < pieces


def test_a_body_trickled_byte_by_byte_gets_408_and_the_connection_closes(server):
    body = b'{"prompt": "hello there you!"}'
    client = SlowClient(server.port, head(server.port, f"Content-Length: {len(body)}\r\n"),
                        [body[i:i + 1] for i in range(len(body))], 0.3)
    client.run()
    assert_timed_out(client, len(body))
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def test_a_slow_chunked_body_gets_408_too(server):
    pieces = [b"1\r\n" + bytes([c]) + b"\r\n" for c in b'{"prompt": "slow chunks"}'] + [b"0\r\n\r\n"]
    client = SlowClient(server.port, head(server.port, "Transfer-Encoding: chunked\r\n"), pieces, 0.3)
    client.run()
    assert_timed_out(client, len(pieces))


def test_a_body_sent_in_time_is_served(server):
    body = b'{"prompt": "hello"}'
    client = SlowClient(server.port, head(server.port, f"Content-Length: {len(body)}\r\nConnection: close\r\n"),
                        [body[:9], body[9:]], 0.2)
    answer = client.run()
    assert b" 200 " in answer.split(b"\r\n", 1)[0]


def assert_413(status: int, body: bytes) -> None:
    assert status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"


JSON = {"Content-Type": "application/json"}


def test_urllib_reads_the_413_of_a_body_it_writes_whole(server):
    req = urllib.request.Request(server.url + "/chat", data=TEN_MB, headers=JSON, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert_413(err.value.code, err.value.read())


def test_requests_httpx_and_curl_read_the_413(server, tmp_path):
    resp = requests.post(server.url + "/chat", data=TEN_MB, headers=JSON, timeout=30)
    assert_413(resp.status_code, resp.content)
    resp2 = httpx.post(server.url + "/chat", content=TEN_MB, headers=JSON, timeout=30)
    assert_413(resp2.status_code, resp2.content)
    path = tmp_path / "big.json"
    path.write_bytes(TEN_MB)
    curl = shutil.which("curl")
    assert curl, "make test installs curl"
    out = subprocess.run([curl, "-sS", "-H", "Content-Type: application/json", "--data-binary", f"@{path}",
                          "-w", "\n%{http_code}", server.url + "/chat"], capture_output=True, timeout=60)
    body, _, code = out.stdout.rpartition(b"\n")
    assert_413(int(code), body)


def test_a_chunked_body_over_the_limit_is_a_413_the_client_reads(server):
    def chunks():
        yield b'{"prompt": "'
        for _ in range(160):
            yield b"x" * 65536
        yield b'"}'

    resp = requests.post(server.url + "/chat", data=chunks(), headers=JSON, timeout=30)
    assert_413(resp.status_code, resp.content)


def test_an_oversized_declared_body_is_refused_before_the_key_or_the_limit():
    # No key, in keys mode: still 413, so nothing looked for a key first; and nothing counted it against
    # the address's one request either. An unread small body is drained, so the connection is reused.
    with LiveServer(AUTH_MODE="keys", RATE_LIMIT="1 per 30 days", AUTH_FAILURE_LIMIT="1 per 30 days") as live:
        with requests.Session() as session:
            resp = session.post(live.url + "/chat", data=TEN_MB, headers=JSON, timeout=30)
            assert_413(resp.status_code, resp.content)
            assert "X-Request-ID" in resp.headers and "RateLimit-Remaining" not in resp.headers
            refused = session.post(live.url + "/chat", json={"prompt": "hi"}, timeout=30)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"
