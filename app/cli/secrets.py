"""``flask --app wsgi secrets …``: keep the upstream key (and the admin token) in an encrypted file."""
from __future__ import annotations

import os

import click
from cryptography.fernet import Fernet
from flask.cli import AppGroup

from ..config import ConfigError, read_secrets_file, write_secrets_file

secrets_cli = AppGroup("secrets", help="Keep the upstream key and the admin token in an encrypted file.")
# The entries chatgate reads from the secrets file.
SECRET_NAMES = ("OPENAI_API_KEY", "ADMIN_TOKEN")


@secrets_cli.command("generate-key")
def generate_key() -> None:
    """Print a new SECRETS_KEY (a Fernet key)."""
    click.echo(Fernet.generate_key().decode("ascii"))


@secrets_cli.command("write")
@click.option("--file", "path", default=lambda: os.environ.get("SECRETS_FILE") or "instance/secrets.enc",
              show_default="$SECRETS_FILE or instance/secrets.enc", help="Where to write.")
@click.option("--name", type=click.Choice(SECRET_NAMES), default="OPENAI_API_KEY", show_default=True,
              help="Which entry to set; the file's other entries are kept.")
def write(path: str, name: str) -> None:
    """Encrypt a secret (asked for, never echoed) into the secrets file with $SECRETS_KEY."""
    key = os.environ.get("SECRETS_KEY", "")
    if not key:
        raise click.UsageError("set SECRETS_KEY first (make one with `flask --app wsgi secrets generate-key`)")
    secrets = {}
    if os.path.exists(path):
        try:
            secrets = read_secrets_file(path, key)
        except ConfigError as err:
            raise click.ClickException(str(err)) from None
    value = click.prompt(name, hide_input=True).strip()
    if not value:
        raise click.UsageError(f"an empty {name} was given")
    secrets[name] = value
    try:
        write_secrets_file(path, key, secrets)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {path}; serve with SECRETS_FILE={path} and SECRETS_KEY set")
