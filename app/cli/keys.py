"""``flask --app wsgi keys …``: create, list and revoke client API keys."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..config import parse_rate
from ..errors import APIError

keys_cli = AppGroup("keys", help="Client API keys: create, list, revoke.")


def _rate_option(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        parse_rate(raw)
    except ValueError:
        raise click.BadParameter("expected a rate such as 60/minute") from None
    return raw


@keys_cli.command("create")
@click.argument("name")
@click.option("--rate-limit", help="Requests per window for this key, e.g. 120/minute (default: RATE_LIMIT).")
@click.option("--token-rate-limit", help="Tokens per window, e.g. 100000/minute (default: TOKEN_RATE_LIMIT).")
@click.option("--daily-token-quota", type=click.IntRange(1), help="Tokens per UTC day (default: DAILY_TOKEN_QUOTA).")
def keys_create(name: str, rate_limit, token_rate_limit, daily_token_quota) -> None:
    """Create a key for NAME; the key is printed once, alone on the last line."""
    try:
        key = current_app.extensions["chatgate"].keyring.create(
            name, rate_limit=_rate_option(rate_limit), token_rate_limit=_rate_option(token_rate_limit),
            daily_token_quota=daily_token_quota)
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"created key {name!r}; it is shown only now, store it safely:", err=True)
    click.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """Show every key: name, prefix, created, last used, state and limits (never the key)."""
    rows = current_app.extensions["chatgate"].keyring.list()
    click.echo(f"{'name':<20} {'prefix':<12} {'created':<20} {'last used':<20} {'state':<8} limits")
    for row in rows:
        limits = ", ".join(f"{label}={value}" for label, value in (
            ("rate", row.rate_limit), ("tokens", row.token_rate_limit), ("daily", row.daily_token_quota)) if value)
        click.echo(f"{row.name:<20} {row.prefix + '…':<12} {_when(row.created_at):<20} {_when(row.last_used_at):<20} "
                   + f"{'revoked' if row.revoked_at else 'active':<8} {limits or 'defaults'}")


@keys_cli.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke the key called NAME (takes effect within seconds on every worker)."""
    if not current_app.extensions["chatgate"].keyring.revoke(name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"revoked {name!r}")


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
