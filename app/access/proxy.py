"""Which reverse proxies may vouch for the client's address and scheme (``X-Forwarded-*``).

Forwarded headers count only when the direct peer is in ``TRUSTED_PROXIES``,
and then only ``TRUSTED_PROXY_HOPS`` deep: each further hop counts only when
the proxy that reported it is trusted too. From anyone else they are ignored
for the client address (and so for per-address limits), the scheme and HSTS.
A UNIX-socket peer (no address) is local by construction and counts as trusted.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """WSGI middleware applying X-Forwarded-For/-Proto/-Host/-Port as deep as the chain of trusted peers goes."""

    def __init__(self, app, hops: int, networks: Sequence[Network]):
        self.app = app
        self.hops = hops
        self.networks = tuple(networks)
        self._fixes = {depth: ProxyFix(app, x_for=depth, x_proto=depth, x_host=depth, x_port=depth)
                       for depth in range(1, hops + 1)}

    def trusted(self, address: str | None) -> bool:
        """True when ``address`` is a proxy we believe (no address: a UNIX socket, so local)."""
        if not address:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def depth(self, environ: dict) -> int:
        """How many X-Forwarded-* entries this request may use (0: none)."""
        if not self.hops or not self.trusted(environ.get("REMOTE_ADDR")):
            return 0
        forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        depth = 1
        while depth < self.hops and depth < len(forwarded) and forwarded[-depth] and self.trusted(forwarded[-depth]):
            depth += 1
        return depth

    def __call__(self, environ, start_response):
        depth = self.depth(environ)
        return (self._fixes[depth] if depth else self.app)(environ, start_response)


def trust_proxies(app: Flask, hops: int, networks: Sequence[Network]) -> None:
    """Believe forwarded headers from ``networks`` only, ``hops`` deep, and no further."""
    if hops:
        app.wsgi_app = TrustedProxies(app.wsgi_app, hops, networks)  # type: ignore[method-assign]
