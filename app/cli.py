"""Operator commands: ``flask --app wsgi secrets …`` and ``flask --app wsgi tls …``."""
from __future__ import annotations

import os

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app
from flask.cli import AppGroup

from .secretfile import read_secrets_file, write_secrets_file
from .settings import ConfigError

from .tls import make_self_signed

secrets_cli = AppGroup("secrets", help="Keep the upstream key in an encrypted file.")
keys_cli = AppGroup("keys", help="Client API keys: create, list, revoke.")
tls_cli = AppGroup("tls", help="Certificates for serving HTTPS.")


@secrets_cli.command("generate-key")
def generate_key() -> None:
    """Print a new SECRETS_KEY (a Fernet key)."""
    click.echo(Fernet.generate_key().decode("ascii"))


@secrets_cli.command("write")
@click.option("--file", "path", default=lambda: os.environ.get("SECRETS_FILE") or "instance/secrets.enc",
              show_default="$SECRETS_FILE or instance/secrets.enc", help="Where to write.")
def write(path: str) -> None:
    """Encrypt OPENAI_API_KEY (asked for, never echoed) into the secrets file with $SECRETS_KEY."""
    key = os.environ.get("SECRETS_KEY", "")
    if not key:
        raise click.UsageError("set SECRETS_KEY first (make one with `flask --app wsgi secrets generate-key`)")
    secrets = {}
    if os.path.exists(path):
        try:
            secrets = read_secrets_file(path, key)
        except ConfigError as err:
            raise click.ClickException(str(err)) from None
    api_key = click.prompt("OPENAI_API_KEY", hide_input=True).strip()
    if not api_key:
        raise click.UsageError("an empty key was given")
    secrets["OPENAI_API_KEY"] = api_key
    try:
        write_secrets_file(path, key, secrets)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {path}; serve with SECRETS_FILE={path} and SECRETS_KEY set")


@tls_cli.command("make-cert")
@click.option("--cert", default="instance/dev-cert.pem", show_default=True, help="Certificate path.")
@click.option("--key", "key_path", default="instance/dev-key.pem", show_default=True, help="Private key path.")
@click.option("--host", "hosts", multiple=True, default=("localhost", "127.0.0.1"), show_default=True,
              help="A DNS name or IP address for the certificate (repeatable).")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 825))
def make_cert(cert: str, key_path: str, hosts: tuple[str, ...], days: int) -> None:
    """Write a self-signed development certificate and key."""
    make_self_signed(cert, key_path, tuple(hosts), days)
    click.echo(f"wrote {cert} and {key_path}; serve with TLS_CERT_FILE={cert} TLS_KEY_FILE={key_path}")


def _rate_option(raw: str | None) -> str | None:
    from .settings import parse_rate

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
    from .errors import APIError

    try:
        key = current_app.extensions["keyring"].create(
            name, rate_limit=_rate_option(rate_limit), token_rate_limit=_rate_option(token_rate_limit),
            daily_token_quota=daily_token_quota)
    except APIError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"created key {name!r}; it is shown only now, store it safely:", err=True)
    click.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """Show every key: name, prefix, created, last used, state and limits (never the key)."""
    rows = current_app.extensions["keyring"].list()
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
    if not current_app.extensions["keyring"].revoke(name):
        raise click.ClickException(f"no active key named {name!r}")
    click.echo(f"revoked {name!r}")


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(keys_cli)
    app.cli.add_command(secrets_cli)
    app.cli.add_command(tls_cli)
