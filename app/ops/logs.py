"""Log lines as text or one JSON object each, scrubbed of secrets in the formatter.

Scrubbing happens where the line is finally written (``format``), after the
message is merged with its arguments and after a traceback is rendered, so no
credential gets through in an argument, an exception's text or a traceback.
Every handler chatgate knows of (the root logger's, gunicorn's error and
access logs, werkzeug's) gets one of these formatters.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time

from .record import current

# Shapes of credentials that must never reach a log line, whoever wrote the message:
# chatgate client keys, OpenAI-style keys, AWS access keys, bearer tokens and JWTs.
_SECRET_SHAPES = re.compile(
    r"(cg-[A-Za-z0-9_-]{16,}|sk-(?:proj-)?[A-Za-z0-9_-]{8,}|AKIA[0-9A-Z]{16}"
    + r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,})")
# Every shape above contains one of these (compared lower-cased): a line without any skips the regex.
_SHAPE_MARKS = ("cg-", "sk-", "akia", "bearer", "eyj")
PLACEHOLDER = "[SECRET]"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The attribute a record carries its structured fields in (``extra={FIELDS: {...}}``).
FIELDS = "chatgate_fields"


class Scrubber:
    """Replaces known secret values, and anything shaped like a credential, by a placeholder."""

    def __init__(self, secrets: tuple[str, ...] = ()):
        forms = set()
        for secret in secrets:
            if secret:
                # As written, and as it appears inside a JSON string (quotes and backslashes escaped).
                forms.add(secret)
                forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        self._secrets = tuple(sorted(forms, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, PLACEHOLDER)
        low = text.lower()
        # The regex is most of the cost of a line; most lines hold nothing shaped like a credential.
        if any(mark in low for mark in _SHAPE_MARKS):
            text = _SECRET_SHAPES.sub(PLACEHOLDER, text)
        return text


class TextFormatter(logging.Formatter):
    """Readable lines for development: the usual layout, then any structured fields as key=value."""

    def __init__(self, scrub: Scrubber):
        super().__init__(TEXT_FORMAT)
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, FIELDS, None)
        if fields:
            extra = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
            head, sep, tail = text.partition("\n")  # a traceback stays below the first line
            text = f"{head} {extra}{sep}{tail}"
        return self.scrub(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, any traceback."""

    def __init__(self, scrub: Scrubber):
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        out: dict = {"time": utc_stamp(record.created), "level": record.levelname.lower(), "logger": record.name,
                     "message": record.getMessage()}
        fields = getattr(record, FIELDS, None)
        if fields:
            out.update(fields)
        elif (req := current()) is not None and req.request_id:
            out["request_id"] = req.request_id  # ties a library's line to the request it happened in
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return self.scrub(json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str))


_stamp_second = [-1, ""]  # the last whole second formatted, and its text: one strftime a second, not a line


def utc_stamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-01-31T12:00:00.123Z."""
    second = int(created)
    cached = _stamp_second
    if cached[0] != second:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached[0] = second
    return f"{cached[1]}.{int(created % 1 * 1000):03d}Z"


def make_formatter(fmt: str, secrets: tuple[str, ...] = ()) -> logging.Formatter:
    """The formatter for LOG_FORMAT ``fmt`` ("text" or "json"), scrubbing ``secrets``."""
    scrub = Scrubber(secrets)
    return JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub)


def init_logging(level: str, fmt: str, secrets: tuple[str, ...]) -> None:
    """Give the root, gunicorn and werkzeug handlers the scrubbing formatter for ``fmt``."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    logging.getLogger("app").setLevel(level)
    formatter = make_formatter(fmt, secrets)
    for logger in (root, logging.getLogger("gunicorn.error"), logging.getLogger("gunicorn.access"),
                   logging.getLogger("werkzeug")):
        for handler in logger.handlers:
            handler.setFormatter(formatter)


def announce(lines: list[str], fmt: str) -> None:
    """Print a start-up block: as it is in text mode, as one JSON object in json mode."""
    if fmt == "json":
        out = {"time": utc_stamp(time.time()), "level": "info", "logger": "chatgate", "message": lines[0],
               "details": lines[1:]}
        print(json.dumps(out, ensure_ascii=False, separators=(",", ":")), file=sys.stderr, flush=True)
    else:
        print("\n".join(lines), file=sys.stderr, flush=True)
