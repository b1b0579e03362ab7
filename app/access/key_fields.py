"""What an admin may set on a client key, checked one field at a time into what the key row stores.

The admin API and the ``keys`` commands both hand their values here, so a
value refused over HTTP is refused on the command line too, with the same
message. Every refusal is an InvalidRequest naming the field in ``param``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from ..config import parse_rate
from ..errors import InvalidRequest

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
META_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
MAX_META_ENTRIES = 16
MAX_META_VALUE = 256
MAX_GRACE_SECONDS = 7 * 86400
MAX_QUOTA = 10**12
MAX_STREAMS = 100_000
MAX_MICROS = 10**15

# The fields a key takes, as the API names them; None clears one (on update).
FIELDS = ("name", "rate_limit", "token_rate_limit", "daily_token_quota", "max_streams", "budget_usd_day",
          "budget_usd_month", "expires_at", "metadata")


def checked(fields: Mapping[str, object], now: datetime, *, clearing: bool) -> dict:
    """Column values for ``fields`` (API names); None stays None only when ``clearing`` (an update)."""
    out: dict = {}
    for field, value in fields.items():
        if field not in FIELDS:
            raise InvalidRequest(f"unknown field {field!r}", param=field, code="unknown_field")
        if value is None:
            if field == "name" and clearing:
                raise InvalidRequest("a key's name cannot be cleared", param="name")
            if clearing:  # back to the server's default (metadata: none at all)
                out[_COLUMN.get(field, field)] = {} if field == "metadata" else None
            continue
        out[_COLUMN.get(field, field)] = _CHECKS[field](value, now)
    return out


def key_name(value: object, _now: datetime | None = None) -> str:
    """A key name: 1 to 64 letters, digits, '.', '_' or '-'."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidRequest("a key name is 1 to 64 letters, digits, '.', '_' or '-'", param="name")
    return value


def rate(field: str):
    """A checker for a rate such as 60/minute."""
    def check(value: object, _now: datetime) -> str:
        if isinstance(value, str):
            try:
                parse_rate(value)
                return value.strip()
            except ValueError:
                pass
        raise InvalidRequest(f"{field} must be a rate such as 60/minute", param=field)
    return check


def whole(field: str, high: int):
    """A checker for a whole number from 1 to ``high``."""
    def check(value: object, _now: datetime) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise InvalidRequest(f"{field} must be a whole number from 1 to {high}", param=field)
        return value
    return check


def usd(field: str):
    """A checker turning US dollars (more than 0, at most six decimals) into whole micro-dollars."""
    def check(value: object, _now: datetime) -> int:
        micros = None
        if not isinstance(value, bool) and isinstance(value, (int, float, str, Decimal)):
            try:
                amount = Decimal(str(value).strip().lstrip("$")) * 1_000_000
                if amount.is_finite() and 1 <= amount < MAX_MICROS and amount == amount.to_integral_value():
                    micros = int(amount)
            except InvalidOperation:
                pass
        if micros is None:
            raise InvalidRequest(f"{field} must be US dollars such as 5 or 0.25 (more than 0, at most six decimals)",
                                 param=field)
        return micros
    return check


def expiry(value: object, now: datetime) -> datetime:
    """An ISO 8601 moment with a time zone, in the future."""
    when = value if isinstance(value, datetime) else None
    if isinstance(value, str) and len(value) <= 64:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        raise InvalidRequest("expires_at must be an ISO 8601 time with a zone, e.g. 2030-01-31T12:00:00Z",
                             param="expires_at")
    when = when.astimezone(UTC)
    if when <= now:
        raise InvalidRequest("expires_at must be in the future", param="expires_at")
    return when


def metadata(value: object, _now: datetime | None = None) -> dict[str, str]:
    """A small string-to-string map: at most 16 entries, names like key names up to 40, values up to 256."""
    if not isinstance(value, Mapping):
        raise InvalidRequest("metadata must be an object of strings", param="metadata")
    if len(value) > MAX_META_ENTRIES:
        raise InvalidRequest(f"metadata holds at most {MAX_META_ENTRIES} entries", param="metadata")
    for name, text in value.items():
        if not isinstance(name, str) or not META_NAME.fullmatch(name):
            raise InvalidRequest("metadata names are 1 to 40 letters, digits, '.', '_' or '-'", param="metadata")
        if not isinstance(text, str) or len(text) > MAX_META_VALUE or not text.isprintable():
            raise InvalidRequest(f"metadata.{name} must be printable text of at most {MAX_META_VALUE} characters",
                                 param=f"metadata.{name}")
    return dict(value)


def grace(value: object) -> int:
    """Seconds a rotated-out key keeps working: 0 to seven days."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRACE_SECONDS:
        raise InvalidRequest(f"grace_seconds must be a whole number from 0 to {MAX_GRACE_SECONDS}",
                             param="grace_seconds")
    return value


# API name -> column, where they differ.
_COLUMN = {"budget_usd_day": "budget_day_micros", "budget_usd_month": "budget_month_micros"}
_CHECKS = {
    "name": key_name,
    "rate_limit": rate("rate_limit"),
    "token_rate_limit": rate("token_rate_limit"),
    "daily_token_quota": whole("daily_token_quota", MAX_QUOTA),
    "max_streams": whole("max_streams", MAX_STREAMS),
    "budget_usd_day": usd("budget_usd_day"),
    "budget_usd_month": usd("budget_usd_month"),
    "expires_at": expiry,
    "metadata": metadata,
}
