"""Per-request plumbing: request ids, security headers and CORS for the listed origins."""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

from ..ops.record import Observed, current

# A client-supplied id is kept only when it is short and boring; anything else is replaced,
# so a hostile header can never inject into our logs or responses.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HSTS = "max-age=31536000; includeSubDomains"
UPSTREAM_HEADER = "X-Chatgate-Upstream"
# The chat routes: Server-Timing on every answer, and the gateway-overhead metric.
CHAT_ENDPOINTS = frozenset({"api.chat.chat", "api.v1.chat_completions"})
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# What browser clients send: OpenAI's SDKs add X-Stainless-* on every call (and OpenAI-* when configured);
# Idempotency-Key and Cache-Control are ours to read; traceparent/tracestate carry a trace.
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Accept", "X-Request-ID", "Idempotency-Key", "Cache-Control",
                      "OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", r"X-Stainless-[A-Za-z0-9-]+",
                      "traceparent", "tracestate"]
# What a page may read back: ids, retry advice and limits (the SDKs read x-should-retry and Retry-After).
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "x-should-retry", "RateLimit-Limit", "RateLimit-Remaining",
                       "RateLimit-Reset", "X-Chatgate-Upstream", "X-Cache", "Age", "Server-Timing",
                       "Idempotent-Replayed"]


def init_app(app: Flask) -> None:
    """Install request records, request-id, header and CORS handling on ``app``."""
    found = app.extensions["chatgate"]
    app.wsgi_app = Observed(app.wsgi_app, found.metrics, found.request_log)  # type: ignore[method-assign]
    app.before_request(assign_request_id)
    app.after_request(add_headers)
    origins = list(app.config["CORS_ORIGINS"])
    if origins:
        from flask_cors import CORS

        # Only the API answers cross-origin, only to the listed origins, and never with cookies:
        # a browser app authenticates with its own bearer key (see README "Browsers").
        CORS(app, resources={r"/(chat|v1/.*|conversations.*|usage)": {"origins": origins}},
             allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS,
             methods=["GET", "POST", "DELETE", "OPTIONS"], max_age=600, supports_credentials=False,
             vary_header=True)


def assign_request_id() -> None:
    """Take a sane X-Request-ID from the client or make one; note the route for the request's record."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    record = current()
    if record is not None:
        record.request_id = g.request_id
        rule = request.url_rule
        if rule is not None:
            record.route = rule.rule  # the pattern, never the path: bounded, and no ids in metrics
            record.chat = request.endpoint in CHAT_ENDPOINTS


def request_id() -> str:
    """This request's id (made on demand for errors raised before before_request ran)."""
    rid = g.get("request_id")
    if rid is None:
        assign_request_id()
        rid = g.request_id
    return rid


def add_upstream_header(response):
    """Name the upstream whose answer this is (set as routing tries each; a stream's is known by now)."""
    record = current()
    if record is not None and record.upstream is not None:
        response.headers[UPSTREAM_HEADER] = record.upstream
    return response


def add_headers(response):
    """Every response: request id, no sniffing, no framing, HSTS under TLS."""
    headers = response.headers
    headers["X-Request-ID"] = request_id()
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
    else:
        headers.setdefault("Content-Security-Policy", API_CSP)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response
