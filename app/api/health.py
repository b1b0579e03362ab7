"""Liveness and readiness probes."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from .admission import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when an upstream (or the offline model) is configured, the database answers and limits can count."""
    found = services()
    mode = current_app.config["SETTINGS"].upstream_mode
    checks = {"upstream": "offline" if mode == "offline" else ("configured" if mode == "remote" else "missing")}
    # A cheap SELECT 1 (and, where migrations are not automatic, the schema revision).
    checks["database"] = found.database.check()
    limits = found.limiter.check()
    if limits != "in-process":
        checks["limits"] = limits  # the shared store: Redis
    ready = (checks["upstream"] != "missing" and checks["database"] == "ok"
             and (limits != "unavailable" or found.limiter.fail == "open"))
    resp = jsonify(status="ready" if ready else "not_ready", checks=checks)
    resp.status_code = 200 if ready else 503
    return resp
