"""WSGI entry point (gunicorn wsgi:app) and the development server (python wsgi.py)."""
from __future__ import annotations

import os
import sys

from app import create_app, start
from config import Config, ConfigError, load_config


def refuse(err: ConfigError) -> None:
    """Stop with one line per problem, each naming its variable; never a traceback for a settings mistake."""
    sys.exit("\n".join(f"chatgate: configuration error: {problem}" for problem in err.problems))


def build(settings: Config | None = None):
    """The app, migrated where DB_AUTO_MIGRATE says so; a settings mistake stops the process."""
    try:
        return start(create_app(settings))
    except ConfigError as err:
        refuse(err)


def main() -> None:
    """Serve with Flask's development server, over HTTPS when TLS files are configured."""
    from app.ops.logs import announce
    from app.ops.tls import server_context

    try:
        # Checked before anything is built, so every problem is named in one go.
        settings = load_config()
        settings.check_serving()
    except ConfigError as err:
        refuse(err)
    served = build(settings)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    ssl_context = server_context(settings.TLS_CERT_FILE, settings.TLS_KEY_FILE) if settings.tls else None
    scheme = "https" if ssl_context else "http"
    announce(settings.banner(f"{scheme}://{host}:{port}"), settings.LOG_FORMAT)
    served.run(host=host, port=port, ssl_context=ssl_context, threaded=True, debug=False)


if __name__ == "__main__":
    main()
else:
    app = build()
