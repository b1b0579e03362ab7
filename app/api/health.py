"""Liveness and readiness probes."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..upstream.router import Router
from .admission import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when an upstream (or the offline model) is configured, the database answers and limits can count.

    With UPSTREAMS_FILE, each upstream's circuit is listed (name and state,
    nothing else), and readiness fails only while some route has every
    target open: a route with one usable target still serves.
    """
    found = services()
    mode = current_app.config["SETTINGS"].upstream_mode
    checks: dict[str, object] = {
        "upstream": "offline" if mode == "offline" else ("configured" if mode == "remote" else "missing")}
    unusable: list[str] = []
    if found.routing.source == "file" and isinstance(found.upstream, Router):
        checks["upstreams"] = {name: state.kind if state.known else "unknown"
                               for name, state in found.upstream.states().items()}
        unusable = found.upstream.unusable_routes()
        if unusable:
            checks["unusable_models"] = unusable
    # A cheap SELECT 1 (and, where migrations are not automatic, the schema revision).
    checks["database"] = found.database.check()
    limits = found.limiter.check()
    if limits != "in-process":
        checks["limits"] = limits  # the shared store: Redis
    ready = (checks["upstream"] != "missing" and checks["database"] == "ok" and not unusable
             and (limits != "unavailable" or found.limiter.fail == "open"))
    resp = jsonify(status="ready" if ready else "not_ready", checks=checks)
    resp.status_code = 200 if ready else 503
    return resp
