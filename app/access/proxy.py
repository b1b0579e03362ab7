"""Which reverse proxies may vouch for the client's address and scheme (``X-Forwarded-*``)."""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask, hops: int) -> None:
    """Believe ``hops`` levels of X-Forwarded-For/-Proto/-Host/-Port, and no more."""
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]
