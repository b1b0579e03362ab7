"""The pieces settings are made of: strict parsers and the Secret wrapper.

Each parser takes the raw environment string and returns the value or raises
ValueError with a short phrase saying what it accepts; ``config.Config`` puts
the variable's name in front of it.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*$", re.I)


class Secret:
    """A string that never shows itself in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def boolean(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not re.fullmatch(r"\s*-?\d+\s*", raw):
            raise ValueError("expected a whole number")
        val = int(raw)
        if (lo is not None and val < lo) or (hi is not None and val > hi):
            raise ValueError(f"expected a whole number from {lo} to {hi if hi is not None else 'any'}")
        return val
    return parse


def number(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            val = float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
        if not lo <= val <= hi:
            raise ValueError(f"expected a number from {lo:g} to {hi:g}")
        return val
    return parse


def choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        val = raw.strip().lower()
        if val not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return val
    return parse


def http_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("expected an http(s) URL such as https://api.openai.com/v1")
    return raw.strip().rstrip("/")


def comma_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def regions(raw: str) -> tuple[str, ...]:
    """A comma list of ISO 3166 region codes that phone numbering knows (e.g. US,GB,DE)."""
    import phonenumbers  # the one parser that needs it; keeps config import-light

    codes = tuple(code.upper() for code in comma_list(raw))
    unknown = [code for code in codes if code not in phonenumbers.SUPPORTED_REGIONS]
    if not codes or unknown:
        raise ValueError("expected a comma list of two-letter region codes such as US,GB,DE"
                         + (f" ({unknown[0]!r} is not one)" if unknown else ""))
    return codes


def rate(raw: str) -> str:
    parse_rate(raw)
    return raw.strip()


def secret(raw: str) -> Secret:
    if len(raw.strip()) < 32:
        raise ValueError("expected at least 32 characters of random text (e.g. from `openssl rand -base64 32`)")
    return Secret(raw.strip())


def token(raw: str) -> Secret:
    """A bearer token an operator chose: 16 to 512 printable ASCII characters without spaces."""
    if not re.fullmatch(r"[\x21-\x7e]{16,512}", raw.strip()):
        raise ValueError("expected 16 to 512 printable characters without spaces (e.g. from `openssl rand -hex 24`)")
    return Secret(raw.strip())


def path(raw: str) -> str:
    return raw.strip()


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.I)


def duration(raw: str) -> int:
    """Seconds, from a number of seconds or a duration such as 90s, 15m, 12h, 30d."""
    m = _DURATION.match(raw)
    seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2).lower()] if m else 0
    if not 1 <= seconds <= 100 * 365 * 86400:
        raise ValueError("expected a duration such as 3600, 12h or 30d (at least one second)")
    return seconds


def duration_or_off(raw: str) -> int:
    """0 (off), or a duration as ``duration`` reads it."""
    if re.fullmatch(r"\s*0+\s*[smhd]?\s*", raw, re.I):
        return 0
    try:
        return duration(raw)
    except ValueError:
        raise ValueError("expected 0 (off) or a duration such as 90s, 10m, 1h or 1d") from None


def database_url(raw: str) -> str:
    if not re.fullmatch(r"\s*(sqlite|postgres|postgresql)(\+\w+)?://\S*\s*", raw):
        raise ValueError("expected a SQLAlchemy URL such as sqlite:///instance/chatgate.db "
                         + "or postgresql+psycopg://user@host:5432/chatgate")
    return raw.strip()


def fernet_keys(raw: str) -> Secret:
    # The first key encrypts, all of them decrypt; a malformed one is refused now, not at the first read.
    keys = comma_list(raw)
    for key in keys:
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ValueError("expected a comma list of Fernet keys (44 url-safe base64 characters each); "
                             + "make one with `flask --app wsgi db generate-key`") from None
    return Secret(",".join(keys))


def without_password(url: str) -> str:
    """A URL fit for a log line: any password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def redis_url(raw: str) -> str:
    if urlsplit(raw.strip()).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected a redis:// URL such as redis://127.0.0.1:6379/0")
    return raw.strip()


def parse_rate(text: str) -> tuple[int, int]:
    """Turn '60/minute' into (60, 60): a count and a window in seconds; ValueError unless both are positive."""
    m = _RATE.match(text)
    if not m:
        raise ValueError("expected a rate such as 60/minute")
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[m.group(3).lower()]
    count, window = int(m.group(1)), seconds * int(m.group(2) or 1)
    # A zero window would divide by zero on every request; a zero count would refuse them all.
    if count < 1 or window < 1:
        raise ValueError("expected a rate such as 60/minute, with a count and a window of at least 1")
    return count, window


def networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma list of addresses or CIDRs (a bare address is a /32 or /128)."""
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in comma_list(raw))
    except ValueError:
        raise ValueError("expected a comma list of addresses or CIDRs such as 127.0.0.1,10.0.0.0/8") from None


def limits_table(raw: str) -> str:
    """Where the shared limits table lives: an absolute path, or ``fd:N`` for a descriptor inherited at fork."""
    value = raw.strip()
    if re.fullmatch(r"fd:\d{1,9}", value) or value.startswith("/"):
        return value
    raise ValueError("expected an absolute path, or fd:N (set by gunicorn.conf.py for its workers)")
