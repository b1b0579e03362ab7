"""The upstream key: from ``OPENAI_API_KEY``, else ``OPENAI_API_KEY_FILE``, else an encrypted ``SECRETS_FILE``.

The key is kept in a ``Secret``, so it never shows in a repr, log line or traceback.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError
from .parsers import Secret
from .secrets_file import read_secrets_file


def load_api_key(environ: Mapping[str, str]) -> tuple[Secret | None, str]:
    """The upstream key and where it came from: env, file, secrets file or none."""
    raw = (environ.get("OPENAI_API_KEY") or "").strip()
    if raw:
        return _checked_key(raw, "OPENAI_API_KEY"), "env"
    path = (environ.get("OPENAI_API_KEY_FILE") or "").strip()
    if path:
        try:
            raw = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise ConfigError("OPENAI_API_KEY_FILE: no readable UTF-8 file at the given path") from None
        if not raw:
            raise ConfigError("OPENAI_API_KEY_FILE: the file is empty")
        return _checked_key(raw, "OPENAI_API_KEY_FILE"), "file"
    secrets_file = (environ.get("SECRETS_FILE") or "").strip()
    if secrets_file:
        secrets = read_secrets_file(secrets_file, environ.get("SECRETS_KEY") or "")
        raw = str(secrets.get("OPENAI_API_KEY") or "").strip()
        if not raw:
            raise ConfigError("SECRETS_FILE: the file holds no OPENAI_API_KEY")
        return _checked_key(raw, "SECRETS_FILE"), "secrets-file"
    return None, "none"


def _checked_key(raw: str, name: str) -> Secret:
    # A key with whitespace or control characters would corrupt the Authorization header.
    if not re.fullmatch(r"[\x21-\x7e]{8,512}", raw):
        raise ConfigError(f"{name}: the key must be 8 to 512 printable ASCII characters without spaces")
    return Secret(raw)
