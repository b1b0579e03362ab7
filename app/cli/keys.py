"""``flask --app wsgi keys …``: create, list and revoke client API keys."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click
from flask import current_app
from flask.cli import AppGroup

from ..config import parse_rate
from ..errors import APIError

keys_cli = AppGroup("keys", help="Client API keys: create, list, update, revoke.")
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


def _usd_option(raw: str | None) -> int | None:
    """A dollar amount as whole micro-dollars."""
    if raw is None:
        return None
    try:
        micros = Decimal(raw.strip().lstrip("$")) * 1_000_000
        ok = micros.is_finite() and micros >= 1 and micros == micros.to_integral_value() and micros < 10**15
    except InvalidOperation:
        ok = False
    if not ok:
        raise click.BadParameter("expected US dollars such as 5 or 0.25 (more than 0, at most six decimals)")
    return int(micros)


# option name -> (key limit, parser, help)
LIMIT_OPTIONS = {
    "--rate-limit": ("rate_limit", _rate_option, "Requests per window, e.g. 120/minute (default: RATE_LIMIT)."),
    "--token-rate-limit": ("token_rate_limit", _rate_option,
                           "Tokens per window, e.g. 100000/minute (default: TOKEN_RATE_LIMIT)."),
    "--daily-token-quota": ("daily_token_quota", _quota_option, "Tokens per UTC day (default: DAILY_TOKEN_QUOTA)."),
    "--budget-usd-day": ("budget_day_micros", _usd_option,
                         "US dollars this key may spend per UTC day, at the price table's prices (default: none)."),
    "--budget-usd-month": ("budget_month_micros", _usd_option,
                           "US dollars this key may spend per calendar month, UTC (default: none)."),
}


def limit_options(clearable: bool):
    """The --rate-limit ... --budget-usd-month options, each also taking "none" when ``clearable``."""
    def decorate(command):
        for flag, (field, _parse, text) in reversed(LIMIT_OPTIONS.items()):
            command = click.option(flag, field, metavar="VALUE" + ("|none" if clearable else ""),
                                   help=text)(command)
        return command
    return decorate


def _limits(options: dict, clearable: bool) -> dict:
    out = {}
    for _flag, (field, parse, _text) in LIMIT_OPTIONS.items():
        raw = options.get(field)
        if raw is None:
            continue
        out[field] = None if clearable and raw.strip().lower() == CLEAR else parse(raw)
    return out


@keys_cli.command("create")
@click.argument("name")
@limit_options(clearable=False)
def keys_create(name: str, **options) -> None:
    """Create a key for NAME; the key is printed once, alone on the last line."""
    try:
        key = current_app.extensions["chatgate"].keyring.create(name, **_limits(options, clearable=False))
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"created key {name!r}; it is shown only now, store it safely:", err=True)
    click.echo(key)


@keys_cli.command("update")
@click.argument("name")
@limit_options(clearable=True)
def keys_update(name: str, **options) -> None:
    """Change NAME's limits or budgets ("none" returns one to the default); every worker sees it within seconds."""
    changes = _limits(options, clearable=True)
    if not changes:
        raise click.UsageError("give at least one of " + ", ".join(LIMIT_OPTIONS))
    try:
        found = current_app.extensions["chatgate"].keyring.update(name, **changes)
    except APIError as err:
        raise click.ClickException(err.message) from None
    if not found:
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"updated {name!r}: " + ", ".join(f"{field}={_shown(field, value)}" for field, value in changes.items()))


@keys_cli.command("list")
def keys_list() -> None:
    """Show every key: name, prefix, created, last used, state and limits (never the key)."""
    rows = current_app.extensions["chatgate"].keyring.list()
    click.echo(f"{'name':<20} {'prefix':<12} {'created':<20} {'last used':<20} {'state':<8} limits")
    for row in rows:
        limits = ", ".join(f"{label}={value}" for label, value in (
            ("rate", row.rate_limit), ("tokens", row.token_rate_limit), ("daily", row.daily_token_quota),
            ("usd/day", _dollars(row.budget_day_micros)), ("usd/month", _dollars(row.budget_month_micros)))
            if value)
        click.echo(f"{row.name:<20} {row.prefix + '…':<12} {_when(row.created_at):<20} {_when(row.last_used_at):<20} "
                   + f"{'revoked' if row.revoked_at else 'active':<8} {limits or 'defaults'}")


@keys_cli.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke the key called NAME (takes effect within seconds on every worker)."""
    if not current_app.extensions["chatgate"].keyring.revoke(name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"revoked {name!r}")


def _dollars(micros: int | None) -> str | None:
    return None if micros is None else f"{micros / 1_000_000:g}"


def _shown(field: str, value) -> str:
    if value is None:
        return "default"
    if field.startswith("budget"):
        return f"${value / 1_000_000:g}"
    return str(value)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
