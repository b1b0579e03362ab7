"""``flask --app wsgi keys …``: create, list, update, rotate and revoke client API keys.

Each command calls the same service as the admin API (``app.access.key_admin``),
so both check values alike and both leave an audit row (actor ``cli``).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click
from flask import current_app
from flask.cli import AppGroup

from ..access.key_admin import CLI_ACTOR, KeyView, state_of
from ..config import parse_rate
from ..errors import APIError, Conflict, NotFound
from ..storage.tables import utcnow

keys_cli = AppGroup("keys", help="Client API keys: create, list, update, rotate, revoke.")
CLEAR = "none"  # `keys update NAME --rate-limit none` goes back to the default


def _rate_option(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        parse_rate(raw)
    except ValueError:
        raise click.BadParameter("expected a rate such as 60/minute") from None
    return raw


def _quota_option(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise click.BadParameter("expected a whole number of tokens, at least 1")
    return int(raw)


def _usd_option(raw: str | None) -> Decimal | None:
    """A dollar amount (the service turns it into micro-dollars)."""
    if raw is None:
        return None
    try:
        micros = Decimal(raw.strip().lstrip("$")) * 1_000_000
        ok = micros.is_finite() and micros >= 1 and micros == micros.to_integral_value() and micros < 10**15
    except InvalidOperation:
        ok = False
    if not ok:
        raise click.BadParameter("expected US dollars such as 5 or 0.25 (more than 0, at most six decimals)")
    return micros / 1_000_000


def _text_option(raw: str | None) -> str | None:
    return raw


# option name -> (field of key_admin, parser, help)
LIMIT_OPTIONS = {
    "--rate-limit": ("rate_limit", _rate_option, "Requests per window, e.g. 120/minute (default: RATE_LIMIT)."),
    "--token-rate-limit": ("token_rate_limit", _rate_option,
                           "Tokens per window, e.g. 100000/minute (default: TOKEN_RATE_LIMIT)."),
    "--daily-token-quota": ("daily_token_quota", _quota_option, "Tokens per UTC day (default: DAILY_TOKEN_QUOTA)."),
    "--max-streams": ("max_streams", _quota_option, "Open streams at once (default: MAX_STREAMS_PER_CLIENT)."),
    "--budget-usd-day": ("budget_usd_day", _usd_option,
                         "US dollars this key may spend per UTC day, at the price table's prices (default: none)."),
    "--budget-usd-month": ("budget_usd_month", _usd_option,
                           "US dollars this key may spend per calendar month, UTC (default: none)."),
    "--expires-at": ("expires_at", _text_option, "When the key stops working: ISO 8601 with a zone (default: never)."),
}


def limit_options(clearable: bool):
    """The --rate-limit ... --expires-at and --metadata options, each also taking "none" when ``clearable``."""
    def decorate(command):
        command = click.option("--metadata", "metadata", multiple=True, metavar="NAME=VALUE" + ("|none" if clearable
                               else ""), help="A metadata entry such as user=42 (repeatable"
                               + ("; replaces them all, none clears them)." if clearable else ")."))(command)
        for flag, (field, _parse, text) in reversed(LIMIT_OPTIONS.items()):
            command = click.option(flag, field, metavar="VALUE" + ("|none" if clearable else ""),
                                   help=text)(command)
        return command
    return decorate


def _fields(options: dict, clearable: bool) -> dict:
    out: dict = {}
    for _flag, (field, parse, _text) in LIMIT_OPTIONS.items():
        raw = options.get(field)
        if raw is None:
            continue
        out[field] = None if clearable and raw.strip().lower() == CLEAR else parse(raw)
    entries = options.get("metadata") or ()
    if clearable and [e.strip().lower() for e in entries] == [CLEAR]:
        out["metadata"] = None
    elif entries:
        if not all("=" in entry for entry in entries):
            raise click.BadParameter("expected NAME=VALUE", param_hint="--metadata")
        out["metadata"] = dict(entry.split("=", 1) for entry in entries)
    return out


def _admin():
    return current_app.extensions["chatgate"].key_admin


def _active_id(name: str) -> int:
    """The id of the unrevoked key called ``name``, or a ClickException."""
    try:
        view = _admin().get(_admin().find(name))
    except NotFound:
        view = None
    if view is None or view.state == "revoked":
        raise click.ClickException(f"no active key named {name!r}")
    return view.row.id


@keys_cli.command("create")
@click.argument("name")
@limit_options(clearable=False)
def keys_create(name: str, **options) -> None:
    """Create a key for NAME; the key is printed once, alone on the last line."""
    try:
        key, _view = _admin().create({"name": name, **_fields(options, clearable=False)}, actor=CLI_ACTOR)
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"created key {name!r}; it is shown only now, store it safely:", err=True)
    click.echo(key)


@keys_cli.command("update")
@click.argument("name")
@limit_options(clearable=True)
def keys_update(name: str, **options) -> None:
    """Change NAME's limits, budgets, expiry or metadata ("none" returns one to the default); seen within seconds."""
    changes = _fields(options, clearable=True)
    if not changes:
        raise click.UsageError("give at least one of " + ", ".join([*LIMIT_OPTIONS, "--metadata"]))
    key_id = _active_id(name)
    try:
        _admin().update(key_id, changes, actor=CLI_ACTOR)
    except (NotFound, Conflict):
        raise click.ClickException(f"no active key named {name!r}") from None
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"updated {name!r}: " + ", ".join(f"{field}={_shown(field, value)}" for field, value in changes.items()))


@keys_cli.command("rotate")
@click.argument("name")
@click.option("--grace-seconds", type=click.IntRange(0, 7 * 86400), default=0, show_default=True,
              help="How long the old key keeps working (at most 7 days).")
def keys_rotate(name: str, grace_seconds: int) -> None:
    """Give NAME a new key (printed once, on the last line); usage, limits and conversations stay with it."""
    try:
        key, view = _admin().rotate(_active_id(name), grace_seconds, actor=CLI_ACTOR)
    except APIError as err:
        raise click.ClickException(err.message) from None
    until = "now" if not grace_seconds else f"at {_when(view.row.previous_expires_at)} UTC"
    click.echo(f"rotated {name!r}; the old key stops working {until}. The new key is shown only now:", err=True)
    click.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """Show every key: name, id, prefix, created, last used, expiry, state and limits (never the key)."""
    now = utcnow()
    admin = _admin()
    click.echo(f"{'name':<20} {'id':>5} {'prefix':<12} {'created':<20} {'last used':<20} {'expires':<20} "
               + f"{'state':<8} limits")
    after = None
    while True:
        page = admin.keys(limit=100, after=after)
        for view in page.items:
            click.echo(_line(view, now))
        if page.next_after is None:
            return
        after = page.next_after


def _line(view: KeyView, now) -> str:
    row = view.row
    limits = ", ".join(f"{label}={value}" for label, value in (
        ("rate", row.rate_limit), ("tokens", row.token_rate_limit), ("daily", row.daily_token_quota),
        ("streams", row.max_streams), ("usd/day", _dollars(row.budget_day_micros)),
        ("usd/month", _dollars(row.budget_month_micros))) if value)
    meta = " ".join(f"{k}={v}" for k, v in view.metadata.items())
    return (f"{row.name:<20} {row.id:>5} {row.prefix + '…':<12} {_when(row.created_at):<20} "
            + f"{_when(row.last_used_at):<20} {_when(row.expires_at):<20} {state_of(row, now):<8} "
            + f"{limits or 'defaults'}" + (f"  [{meta}]" if meta else ""))


@keys_cli.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke the key called NAME (takes effect within seconds on every worker)."""
    _admin().revoke(_active_id(name), actor=CLI_ACTOR)
    click.echo(f"revoked {name!r}")


def _dollars(micros: int | None) -> str | None:
    return None if micros is None else f"{micros / 1_000_000:g}"


def _shown(field: str, value) -> str:
    if value is None:
        return "default"
    if field.startswith("budget"):
        return f"${value:g}"
    if field == "metadata":
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
