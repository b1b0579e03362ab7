"""WSGI entry point (gunicorn wsgi:app) and the development server (python wsgi.py)."""
from __future__ import annotations

import os
import sys

from app import create_app, start
from config import ConfigError

try:
    app = start(create_app())
except ConfigError as err:
    # One line naming the variable; never a traceback for a settings mistake.
    sys.exit(f"chatgate: configuration error: {err}")


def main() -> None:
    """Serve with Flask's development server, over HTTPS when TLS files are configured."""
    from app.ops.logs import announce
    from app.ops.tls import server_context

    settings = app.config["SETTINGS"]
    try:
        settings.check_serving()
    except ConfigError as err:
        sys.exit(f"chatgate: configuration error: {err}")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    ssl_context = server_context(settings.TLS_CERT_FILE, settings.TLS_KEY_FILE) if settings.tls else None
    scheme = "https" if ssl_context else "http"
    announce(settings.banner(f"{scheme}://{host}:{port}"), settings.LOG_FORMAT)
    app.run(host=host, port=port, ssl_context=ssl_context, threaded=True, debug=False)


if __name__ == "__main__":
    main()
