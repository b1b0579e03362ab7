"""Liveness and readiness probes."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when an upstream (or the offline model) is configured and the database answers."""
    mode = current_app.config["SETTINGS"].upstream_mode
    checks = {"upstream": "offline" if mode == "offline" else ("configured" if mode == "remote" else "missing")}
    # A cheap SELECT 1 (and, where migrations are not automatic, the schema revision).
    checks["database"] = current_app.extensions["database"].check()
    ready = checks["upstream"] != "missing" and checks["database"] == "ok"
    resp = jsonify(status="ready" if ready else "not_ready", checks=checks)
    resp.status_code = 200 if ready else 503
    return resp
