"""The OpenAPI 3.1 description at /openapi.json, generated from the schemas the doors validate with."""
from __future__ import annotations

from flask import Flask

from .document import bp


def init_app(app: Flask) -> None:
    """Serve /openapi.json."""
    app.register_blueprint(bp)
