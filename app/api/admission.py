"""Admission to every route that spends money or shows a client's data: who is calling, then counting them.

The API blueprint runs ``admit`` before each of its routes (and its child
blueprints' routes), so a new protected route is guarded by being put there.
"""
from __future__ import annotations

from functools import partial

from flask import Response, current_app, g, request

from ..access.keys import Caller
from ..errors import AuthenticationFailed
from ..ops.record import current


def services():
    """The app's long-lived objects (``app.services.Services``)."""
    return current_app.extensions["chatgate"]


def current_caller() -> Caller:
    """This request's caller (set by ``admit``; the anonymous caller outside protected routes)."""
    caller = g.get("caller")
    if caller is None:
        caller = g.caller = anonymous()
    return caller


def anonymous() -> Caller:
    """The caller in open mode: its address owns its conversations and usage, and is what limits count."""
    # Per address, so two people on one open server do not read each other's conversations; an address
    # is no proof of identity (NAT, proxies), which is why production refuses open mode.
    address = f"ip:{request.remote_addr or 'unknown'}"
    return Caller(id=address, limit_key=address, name="anonymous")


def admit() -> None:
    """Identify the caller (client key or anonymous), then count the request against its rate limit."""
    if request.method == "OPTIONS":
        return  # a CORS preflight carries no credentials by design
    found = services()
    if current_app.config["AUTH_MODE"] == "open":
        g.caller = anonymous()
    else:
        address = request.remote_addr or "unknown"
        try:
            # An address that keeps failing is refused before its keys cost a database lookup.
            g.caller = found.keyring.authenticate(request.headers.get("Authorization"),
                                                  partial(found.limiter.check_auth_failures, address))
        except AuthenticationFailed:
            found.limiter.count_auth_failure(address)
            raise
        record = current()
        if record is not None:
            record.key = g.caller.name  # the key's name, for the log line; never the key
    g.ratelimit_headers = found.limiter.check_request(g.caller)


def add_ratelimit_headers(response: Response) -> Response:
    """RateLimit-* on every counted response, refusals included."""
    for name, value in (g.get("ratelimit_headers") or {}).items():
        response.headers.setdefault(name, value)
    return response
