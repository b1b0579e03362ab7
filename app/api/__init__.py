"""The doors: HTTP routes, request schemas, error responses and event streams.

``bp`` is the parent of every route that spends money or shows a client's
data (``/chat``, ``/v1/*``, ``/conversations``, ``/usage``): its
``before_request`` authenticates and counts each request. Health checks and
pages sit outside it, and so does the admin API (its own token, its own
guard), registered only when ADMIN_TOKEN is set.
"""
from __future__ import annotations

from flask import Blueprint, Flask

from ..access.proxy import trust_proxies
from . import (
    admin,
    admission,
    body_guard,
    chat,
    conversations,
    embeddings,
    errors,
    health,
    http,
    metrics,
    pages,
    responses,
    v1,
)

bp = Blueprint("api", __name__)
bp.before_request(admission.admit)
bp.after_request(admission.add_ratelimit_headers)
bp.after_request(http.add_upstream_header)
bp.register_blueprint(chat.bp)
bp.register_blueprint(v1.bp)
bp.register_blueprint(embeddings.bp)
bp.register_blueprint(responses.bp)
bp.register_blueprint(conversations.bp)


def init_app(app: Flask) -> None:
    """Errors, proxy trust, per-request headers, body bounds, then the routes."""
    errors.register_error_handlers(app)
    trust_proxies(app, app.config["TRUSTED_PROXY_HOPS"], app.config["TRUSTED_PROXIES"])
    http.init_app(app)
    body_guard.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(bp)
    if app.config["ADMIN_TOKEN"] is not None:
        app.register_blueprint(admin.bp)
    app.register_blueprint(pages.bp)
