"""Forwarded headers count only from trusted direct peers, and only as deep as the trusted chain goes."""
from __future__ import annotations

import ipaddress

import pytest

from app.access.proxy import TrustedProxies

LOOPBACK = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")]


def seen(app, peer: str, **headers):
    """The address, scheme and HSTS the app sees for a request from ``peer`` with these headers."""
    if "whoami" not in app.view_functions:
        @app.get("/whoami")
        def whoami():
            from flask import jsonify, request

            return jsonify(addr=request.remote_addr, scheme=request.scheme)

    resp = app.test_client().get("/whoami", headers={k.replace("_", "-"): v for k, v in headers.items()},
                                 environ_base={"REMOTE_ADDR": peer})
    return resp.get_json()["addr"], resp.get_json()["scheme"], "Strict-Transport-Security" in resp.headers


def test_an_untrusted_peer_cannot_set_its_address_or_scheme(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1)
    assert seen(app, "203.0.113.9", X_Forwarded_For="1.2.3.4", X_Forwarded_Proto="https") == (
        "203.0.113.9", "http", False)


def test_a_trusted_peer_vouches_one_hop(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1)
    assert seen(app, "127.0.0.1", X_Forwarded_For="9.9.9.9, 1.2.3.4", X_Forwarded_Proto="https") == (
        "1.2.3.4", "https", True)
    assert seen(app, "::1", X_Forwarded_For="1.2.3.4") == ("1.2.3.4", "http", False)


def test_no_hops_means_no_forwarded_header_counts(make_app):
    assert seen(make_app(), "127.0.0.1", X_Forwarded_For="1.2.3.4", X_Forwarded_Proto="https") == (
        "127.0.0.1", "http", False)


def test_configured_networks_replace_loopback(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1, TRUSTED_PROXIES="10.0.0.0/8")
    assert seen(app, "10.1.2.3", X_Forwarded_For="1.2.3.4")[0] == "1.2.3.4"
    assert seen(app, "127.0.0.1", X_Forwarded_For="1.2.3.4")[0] == "127.0.0.1"


@pytest.mark.parametrize("forwarded, depth", [
    ("1.1.1.1, 10.0.0.2", 2),        # the inner proxy is trusted: the client is 1.1.1.1
    ("1.1.1.1, 8.8.8.8", 1),         # the "inner proxy" is a stranger: it is the client, its claim ignored
    ("10.0.0.3, 10.0.0.2", 2),       # never deeper than TRUSTED_PROXY_HOPS
    ("10.0.0.2", 1),                 # fewer entries than hops
    ("", 1),
])
def test_each_further_hop_counts_only_when_reported_by_a_trusted_proxy(forwarded, depth):
    mw = TrustedProxies(lambda e, s: [], 2, [ipaddress.ip_network("10.0.0.0/8")])
    assert mw.depth({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": forwarded}) == depth
    assert mw.depth({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": forwarded}) == 0


def test_a_unix_socket_peer_is_local_and_garbage_is_not():
    mw = TrustedProxies(lambda e, s: [], 1, LOOPBACK)
    assert mw.trusted("") and mw.trusted(None)
    assert not mw.trusted("not-an-address") and not mw.trusted("127.0.0.2")


def test_spoofed_forwarded_for_does_not_escape_the_per_address_limit(make_app):
    client = make_app(TRUSTED_PROXY_HOPS=1, RATE_LIMIT="3/hour").test_client()
    statuses = [client.post("/chat", json={"prompt": "hi"}, headers={"X-Forwarded-For": f"10.9.8.{n}"},
                            environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code for n in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
