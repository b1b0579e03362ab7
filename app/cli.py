"""Operator commands: ``flask --app wsgi secrets …`` and ``flask --app wsgi tls …``."""
from __future__ import annotations

import os

import click
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import AppGroup

from config import ConfigError, read_secrets_file, write_secrets_file

from .tls import make_self_signed

secrets_cli = AppGroup("secrets", help="Keep the upstream key in an encrypted file.")
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


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(secrets_cli)
    app.cli.add_command(tls_cli)
