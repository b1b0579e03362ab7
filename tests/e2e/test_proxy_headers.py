"""Forwarded headers through a real gunicorn: only trusted direct peers may set the client address or scheme.

A direct client connects from 127.0.0.2, which the default ``TRUSTED_PROXIES``
(127.0.0.1, ::1) does not include; a "proxy" connects from 127.0.0.1.
"""
from __future__ import annotations

import http.client
import json

import pytest
from support import LiveServer

DIRECT, PROXY = "127.0.0.2", "127.0.0.1"


def post_chat(server: LiveServer, source: str, headers: dict) -> tuple[int, dict]:
    """POST /chat from ``source``; the status and the response headers."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", "/chat", body=json.dumps({"prompt": "hi"}),
                     headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def one_hop():
    """gunicorn trusting one proxy hop, with a per-address limit of 3 (a window no test can straddle)."""
    with LiveServer(TRUSTED_PROXY_HOPS=1, RATE_LIMIT="3 per 30 days") as server:
        yield server


def test_a_direct_client_cannot_escape_the_per_address_limit_with_forwarded_for(one_hop):
    statuses = [post_chat(one_hop, DIRECT, {"X-Forwarded-For": f"198.51.100.{n}"})[0] for n in range(10)]
    assert statuses == [200] * 3 + [429] * 7


def test_a_trusted_proxy_sets_the_client_address(one_hop):
    statuses = [post_chat(one_hop, PROXY, {"X-Forwarded-For": f"192.0.2.{n}"})[0] for n in range(5)]
    assert statuses == [200] * 5  # five clients behind the proxy, one request each
    again = [post_chat(one_hop, PROXY, {"X-Forwarded-For": "192.0.2.77"})[0] for _ in range(4)]
    assert again == [200, 200, 200, 429]


def test_forwarded_proto_from_a_direct_client_gets_no_hsts(one_hop):
    status, headers = post_chat(one_hop, DIRECT, {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.1"})
    assert "Strict-Transport-Security" not in headers
    status, headers = post_chat(one_hop, PROXY, {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.2"})
    assert status == 200 and "Strict-Transport-Security" in headers


def test_without_trusted_hops_not_even_loopback_sets_the_scheme():
    with LiveServer() as server:
        status, headers = post_chat(server, PROXY, {"X-Forwarded-Proto": "https"})
    assert status == 200 and "Strict-Transport-Security" not in headers
