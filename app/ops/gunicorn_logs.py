"""gunicorn's own error and access logs in chatgate's format, scrubbed like every other line.

gunicorn.conf.py names ``GunicornLogger`` as its ``logger_class``. The master
builds it before the app exists, so it reads LOG_FORMAT and the secrets to
scrub from the settings itself; a settings error here falls back to the
environment's default format and shape-only scrubbing, and ``on_starting``
then reports the error in one line.
"""
from __future__ import annotations

import os

from gunicorn import glogging

from ..errors import ConfigError
from .logs import FIELDS, make_formatter


def _settings() -> tuple[str, tuple[str, ...]]:
    from ..config import load_config

    try:
        config = load_config()
    except ConfigError:
        production = (os.environ.get("APP_ENV") or "").strip().lower() == "production"
        return ("json" if production else "text"), ()
    return config.LOG_FORMAT, config.secret_values()


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with chatgate's formatter on its handlers, and a structured access line."""

    def setup(self, cfg) -> None:
        """Set gunicorn's handlers up as usual, then give them our formatter."""
        super().setup(cfg)
        fmt, secrets = _settings()
        self.json = fmt == "json"
        formatter = make_formatter(fmt, secrets)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time) -> None:
        """One access line: gunicorn's usual text, or its parts as JSON fields."""
        if not self.access_log_enabled:
            return
        if not getattr(self, "json", False):
            super().access(resp, req, environ, request_time)
            return
        atoms = self.atoms(resp, req, environ, request_time)
        fields = {"remote_addr": atoms["h"], "method": atoms["m"], "path": environ.get("RAW_URI"),
                  "protocol": atoms["H"], "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
                  "bytes": atoms["B"], "duration_ms": atoms["D"] / 1000, "user_agent": atoms["a"],
                  "request_id": atoms.get("{x-request-id}o")}
        self.access_log.info("%s %s %s", atoms["m"], environ.get("RAW_URI"), atoms["s"], extra={FIELDS: fields})
