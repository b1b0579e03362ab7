"""Per-request plumbing: request ids, security headers and CORS for the listed origins."""
from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

# A client-supplied id is kept only when it is short and boring; anything else is replaced,
# so a hostile header can never inject into our logs or responses.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HSTS = "max-age=31536000; includeSubDomains"
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def init_app(app: Flask) -> None:
    """Install request-id, header and CORS handling on ``app``."""
    app.before_request(assign_request_id)
    app.after_request(add_headers)
    origins = list(app.config["CORS_ORIGINS"])
    if origins:
        from flask_cors import CORS

        # Only the API answers cross-origin, only to the listed origins, and never with cookies:
        # a browser app authenticates with its own bearer key (see README "Browsers").
        CORS(app, resources={r"/(chat|v1/.*|conversations.*|usage)": {"origins": origins}},
             allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Idempotency-Key"],
             expose_headers=["X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
                             "RateLimit-Reset", "Idempotent-Replayed"],
             methods=["GET", "POST", "DELETE", "OPTIONS"], max_age=600, supports_credentials=False,
             vary_header=True)


def assign_request_id() -> None:
    """Take a sane X-Request-ID from the client or make one."""
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def request_id() -> str:
    """This request's id (made on demand for errors raised before before_request ran)."""
    rid = g.get("request_id")
    if rid is None:
        assign_request_id()
        rid = g.request_id
    return rid


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
