"""Encryption at rest for conversation text (Fernet / MultiFernet).

``DATA_ENCRYPTION_KEY`` is a comma list of Fernet keys: the first encrypts,
all of them decrypt. To rotate, put a new key first, run
``flask --app wsgi db rotate-key`` (every row is re-encrypted with it), then
drop the old key.

Each text is bound to its place: what Fernet seals is a header naming the
text's context (``system_context``/``message_context``: its conversation and
position), then the text. Decrypting checks the header against the row being
read, so a token copied into another row, conversation or position is
refused (``Undecryptable``), even though the key opens it. Migration
``0003_hardening`` bound the rows written before. In development an unset key is generated once into
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
# Starts every sealed plaintext: version 1 of the bound format, then the context, a NUL, the text.
BOUND = b"\x00cg1\x00"


def system_context(conversation_id: str) -> str:
    """Where a conversation's system prompt lives."""
    return f"system:{conversation_id}"


def cache_context(digest: str) -> str:
    """Where the cached reply stored under ``digest`` lives."""
    return f"cache:{digest}"


def message_context(conversation_id: str, seq: int) -> str:
    """Where message ``seq`` of a conversation lives."""
    return f"message:{conversation_id}:{seq}"


class Cipher:
    """Encrypts text bound to its context with the first key, and decrypts with any of them."""

    def __init__(self, keys: list[str] | tuple[str, ...]):
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        self.key_count = len(keys)

    def encrypt(self, text: str, context: str) -> bytes:
        """A Fernet token for ``text`` bound to ``context``, under the newest key."""
        return self.seal_raw(BOUND + context.encode("ascii") + b"\x00" + text.encode("utf-8"))

    def decrypt(self, token: bytes, context: str) -> str:
        """The text inside ``token``; Undecryptable when no key opens it or it belongs elsewhere."""
        data = self.open_raw(token)
        head, _, text = data[len(BOUND):].partition(b"\x00")
        if not data.startswith(BOUND) or head != context.encode("ascii"):
            log.warning("stored text refused: it is not bound to the row it was read from")
            raise Undecryptable("stored conversation text does not belong where it was found (moved or damaged)")
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            raise Undecryptable() from None

    def rotate(self, token: bytes, context: str) -> bytes:
        """``token`` re-encrypted under the newest key (checked against ``context`` first)."""
        return self.encrypt(self.decrypt(token, context), context)

    def seal_raw(self, data: bytes) -> bytes:
        """Encrypt bytes as they are (migrations, which write the bound format themselves)."""
        return self._fernet.encrypt(data)

    def open_raw(self, token: bytes) -> bytes:
        """Decrypt to the bytes as they are; Undecryptable when no key opens the token."""
        try:
            return self._fernet.decrypt(bytes(token))
        except InvalidToken:
            raise Undecryptable() from None

    def __repr__(self) -> str:
        return f"<Cipher keys={self.key_count}>"


class NoCipher:
    """Stands in when no key is configured: any use of conversation text is a 503."""

    key_count = 0

    def _refuse(self, *_args, **_kwargs):
        raise KeyMissing()

    encrypt = decrypt = rotate = seal_raw = open_raw = _refuse

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


def development_key(path: Path, setting: str = "DATA_ENCRYPTION_KEY") -> str:
    """Read the development key at ``path`` (standing in for ``setting``), creating it (mode 0600) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key() + b"\n")
        try:
            # link() never replaces: when several workers start at once, the first key written wins.
            os.link(tmp, path)
            log.warning("generated a development %s in %s; keep it with the database", setting, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    try:
        key = path.read_text(encoding="ascii").strip()
        Fernet(key.encode("ascii"))
    except (OSError, ValueError):
        raise ConfigError(f"{setting}: unset, and the development key file {path} is unreadable "
                          + "or damaged") from None
    return key
