"""GET /metrics: Prometheus's text format, behind METRICS_TOKEN when one is set."""
from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from ..errors import AuthenticationFailed
from .admission import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    """Every metric, summed over this instance's workers."""
    token = current_app.config["METRICS_TOKEN"]
    if token is not None:
        sent = request.headers.get("Authorization", "")
        # Constant-time, so the token cannot be guessed a character at a time from response times.
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), ("Bearer " + token.reveal()).encode("utf-8")):
            raise AuthenticationFailed("GET /metrics needs Authorization: Bearer <METRICS_TOKEN>",
                                       headers={"WWW-Authenticate": 'Bearer realm="chatgate metrics"'})
    body, content_type = services().metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
