"""chatgate as wsgi.py serves it, plus two routes that fail the way a bug would, quoting secrets.

Only tests/e2e/test_log_hygiene.py serves this (gunicorn ... --pythonpath tests/e2e leaky_app:app): it
proves that whatever a careless line or a traceback quotes, the log output holds no secret.
"""
from __future__ import annotations

import logging
import os

from flask import Response, request

from wsgi import app

log = logging.getLogger("app.leaky")


def _secrets() -> tuple[str, str]:
    return request.headers.get("Authorization", ""), os.environ["OPENAI_API_KEY"]


def leak_log():
    """Log the caller's key and the upstream key in a message, an argument and a traceback."""
    client, upstream = _secrets()
    log.warning("calling the upstream with %s for %s", upstream, client)
    try:
        raise RuntimeError(f"upstream {upstream} refused the call for {client}")
    except RuntimeError:
        log.exception("the call for %s failed", client)
    return {"logged": True}


def leak_body():
    """Fail inside the response body, so gunicorn itself logs the traceback (and the request URI)."""
    client, upstream = _secrets()

    def body():
        yield b"partial"
        raise RuntimeError(f"broke mid-body for {client} with {upstream}")

    return Response(body(), mimetype="text/plain")


app.add_url_rule("/leak/log", view_func=leak_log)
app.add_url_rule("/leak/body", view_func=leak_body)
