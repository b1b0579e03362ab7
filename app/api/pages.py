"""The browser pages: the chat page at / and Swagger UI at /docs.

Both are plain static files (no templates, no build step, no CDN); their
scripts and styles live in app/static and load under the page CSP in app/api/http.py.
Swagger UI's own files come from the flask-swagger-ui package, served from
/docs/assets. The package's stock index page is not used: it starts Swagger UI
with an inline script, which that CSP forbids, so /docs is a page of ours whose
start-up script is a file (app/static/swagger-init.js).
"""
from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, current_app

SWAGGER_UI_DIST = str(files("flask_swagger_ui") / "dist")

bp = Blueprint("pages", __name__, static_folder=SWAGGER_UI_DIST, static_url_path="/docs/assets")


@bp.get("/")
def chat_page():
    """The chat page."""
    return current_app.send_static_file("index.html")


@bp.get("/docs")
def docs_page():
    """Swagger UI over /openapi.json, with "Try it out" against this server."""
    return current_app.send_static_file("swagger.html")
