"""The encrypted secrets file: a JSON object of secrets sealed with a Fernet key."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from secrets import token_hex

from cryptography.fernet import Fernet, InvalidToken

from ..errors import ConfigError


def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ConfigError("SECRETS_KEY: expected a Fernet key (44 url-safe base64 characters); "
                          + "make one with `flask --app wsgi secrets generate-key`") from None


def read_secrets_file(path: str, key: str) -> dict:
    """Decrypt the JSON object stored in an encrypted secrets file."""
    if not key.strip():
        raise ConfigError("SECRETS_KEY: required to open SECRETS_FILE")
    fernet = _fernet(key)
    try:
        token = Path(path).read_bytes()
    except OSError:
        raise ConfigError("SECRETS_FILE: no readable file at the given path") from None
    try:
        data = json.loads(fernet.decrypt(token.strip()))
    except InvalidToken:
        raise ConfigError("SECRETS_KEY: it does not open SECRETS_FILE (wrong key or damaged file)") from None
    except ValueError:
        raise ConfigError("SECRETS_FILE: the decrypted content is not a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError("SECRETS_FILE: the decrypted content is not a JSON object")
    return data


def write_secrets_file(path: str, key: str, secrets: Mapping[str, str]) -> None:
    """Encrypt ``secrets`` as JSON into ``path``, readable by the owner only, replaced in one atomic step."""
    token = _fernet(key).encrypt(json.dumps(dict(secrets)).encode("utf-8"))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A fresh, unguessable name created with O_EXCL (and no symlink followed): never a file or link someone
    # planted beside the target; 0600 from its first byte; flushed to disk before it replaces the old file.
    tmp = target.with_name(f".{target.name}.{token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(token + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory is on disk too.
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
