"""Encryption at rest for conversation text (Fernet / MultiFernet).

``DATA_ENCRYPTION_KEY`` is a comma list of Fernet keys: the first encrypts,
all of them decrypt. To rotate, put a new key first, run
``flask --app wsgi db rotate-key`` (every row is re-encrypted with it), then
drop the old key. In development an unset key is generated once into
``instance/data-encryption.key``; tests get a fresh key per app; production
must set it (``Config.check_serving`` refuses to serve without one).
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..config import Config
from ..errors import ConfigError, KeyMissing, Undecryptable

log = logging.getLogger(__name__)

DEV_KEY_FILE = "data-encryption.key"


class Cipher:
    """Encrypts text with the first key and decrypts with any of them."""

    def __init__(self, keys: list[str] | tuple[str, ...]):
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        self.key_count = len(keys)

    def encrypt(self, text: str) -> bytes:
        """A Fernet token for ``text``, under the newest key."""
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        """The text inside ``token``; Undecryptable when no key opens it."""
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            raise Undecryptable() from None

    def rotate(self, token: bytes) -> bytes:
        """``token`` re-encrypted under the newest key."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise Undecryptable() from None

    def __repr__(self) -> str:
        return f"<Cipher keys={self.key_count}>"


class NoCipher:
    """Stands in when no key is configured: any use of conversation text is a 503."""

    key_count = 0

    def _refuse(self, *_args, **_kwargs):
        raise KeyMissing()

    encrypt = decrypt = rotate = _refuse

    def __repr__(self) -> str:
        return "<NoCipher>"


def load_cipher(config: Config, instance_path: str) -> Cipher | NoCipher:
    """The cipher for this app: configured keys, a development key file, a test key, or none."""
    if config.DATA_ENCRYPTION_KEY is not None:
        keys = [k for k in config.DATA_ENCRYPTION_KEY.reveal().split(",") if k]
        return Cipher(keys)
    if config.APP_ENV == "testing":
        return Cipher([Fernet.generate_key().decode("ascii")])
    if config.APP_ENV == "development":
        return Cipher([development_key(Path(instance_path) / DEV_KEY_FILE)])
    return NoCipher()


def development_key(path: Path) -> str:
    """Read the development key at ``path``, creating it (mode 0600) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key() + b"\n")
        try:
            # link() never replaces: when several workers start at once, the first key written wins.
            os.link(tmp, path)
            log.warning("generated a development DATA_ENCRYPTION_KEY in %s; keep it with the database", path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    try:
        key = path.read_text(encoding="ascii").strip()
        Fernet(key.encode("ascii"))
    except (OSError, ValueError):
        raise ConfigError(f"DATA_ENCRYPTION_KEY: unset, and the development key file {path} is unreadable "
                          + "or damaged") from None
    return key
