"""The admin token: from ``ADMIN_TOKEN``, else ``ADMIN_TOKEN_FILE``, else an encrypted ``SECRETS_FILE``; or none.

Without one the admin API is not served at all. It is an operator's bearer
token, never a client key: one shaped like a client key is refused, so the
two can never be mistaken for each other.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError
from .parsers import Secret, token
from .secrets_file import read_secrets_file

CLIENT_KEY_PREFIX = "cg-"


def load_admin_token(environ: Mapping[str, str]) -> Secret | None:
    """The admin token, or None when the admin API is off."""
    raw = (environ.get("ADMIN_TOKEN") or "").strip()
    if raw:
        return _checked(raw, "ADMIN_TOKEN")
    path = (environ.get("ADMIN_TOKEN_FILE") or "").strip()
    if path:
        try:
            raw = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise ConfigError("ADMIN_TOKEN_FILE: no readable UTF-8 file at the given path") from None
        if not raw:
            raise ConfigError("ADMIN_TOKEN_FILE: the file is empty")
        return _checked(raw, "ADMIN_TOKEN_FILE")
    secrets_file = (environ.get("SECRETS_FILE") or "").strip()
    if secrets_file:
        # An optional entry: a secrets file made for the upstream key alone leaves the admin API off.
        raw = str(read_secrets_file(secrets_file, environ.get("SECRETS_KEY") or "").get("ADMIN_TOKEN") or "").strip()
        if raw:
            return _checked(raw, "SECRETS_FILE")
    return None


def _checked(raw: str, name: str) -> Secret:
    try:
        found = token(raw)
    except ValueError as err:
        raise ConfigError(f"{name}: {err}") from None
    if raw.startswith(CLIENT_KEY_PREFIX):
        raise ConfigError(f"{name}: must not look like a client key (starting with {CLIENT_KEY_PREFIX!r})")
    return found
