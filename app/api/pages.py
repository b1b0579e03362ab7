"""The browser pages: the chat page at / and the API docs at /docs.

Both are plain static files (no templates, no build step, no CDN); their
scripts and styles live in app/static and load under the page CSP in http.py.
"""
from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("pages", __name__)


@bp.get("/")
def chat_page():
    """The chat page."""
    return current_app.send_static_file("index.html")


@bp.get("/docs")
def docs_page():
    """The API docs page, which renders /openapi.json."""
    return current_app.send_static_file("docs.html")
