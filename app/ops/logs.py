"""Logging set-up with a last line of defence against leaked secrets."""
from __future__ import annotations

import logging
import re

# Shapes of credentials that must never reach a log line, whoever wrote the message.
_SECRET_SHAPES = re.compile(
    r"(sk-(?:proj-)?[A-Za-z0-9_-]{8,}|AKIA[0-9A-Z]{16}|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    + r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,})")


class RedactingFilter(logging.Filter):
    """Replaces known secret values and secret-shaped strings in every record."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by a placeholder."""
        for secret in self._secrets:
            text = text.replace(secret, "[SECRET]")
        return _SECRET_SHAPES.sub("[SECRET]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self.scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


def init_logging(level: str, secrets: tuple[str, ...]) -> None:
    """Attach the redacting filter to every handler of the root and chatgate loggers."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(level)
    redactor = RedactingFilter(secrets)
    for logger in (root, logging.getLogger("gunicorn.error"), logging.getLogger("werkzeug")):
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redactor)
