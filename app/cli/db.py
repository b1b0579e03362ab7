"""Operator commands for the database: ``flask --app wsgi db …``."""
from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask import current_app
from flask.cli import AppGroup

from ..errors import APIError, ConfigError, StoreDown
from ..storage import migrate
from ..storage.crypto import NoCipher

db_cli = AppGroup("db", help="Schema migrations, retention and encryption keys.")


def _store():
    return current_app.extensions["chatgate"].conversations


def _cache():
    return current_app.extensions["chatgate"].cache_store


def _run(action):
    # Storage errors become one line, never a traceback that could quote data.
    try:
        return action()
    except APIError as err:
        raise click.ClickException(f"{err.message} ({err.code})") from None
    except StoreDown as err:
        raise click.ClickException(f"the response cache store (Redis) is unavailable ({err})") from None


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    found = current_app.extensions["chatgate"]
    _migrate(lambda: found.database.upgrade(revision, found.cipher))
    click.echo(f"database schema at {found.database.revision() or 'base'}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION ("base" drops every table)."""
    found = current_app.extensions["chatgate"]
    _migrate(lambda: found.database.downgrade(revision, found.cipher))
    click.echo(f"database schema at {found.database.revision() or 'base'}")


def _migrate(action) -> None:
    # A missing key, or text it cannot open, is one line: never a traceback that could quote data.
    try:
        _run(action)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


@db_cli.command("current")
def current() -> None:
    """Print the schema revision of the database and of this release."""
    at = current_app.extensions["chatgate"].database.revision()
    click.echo(f"database: {at or 'base'}  release: {migrate.head()}")
    if migrate.is_behind(at):
        raise click.ClickException("the schema is out of date: run `flask --app wsgi db upgrade`")
    if at != migrate.head():
        click.echo("the database is newer than this release (a later release migrated it)")


@db_cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option("--autogenerate", is_flag=True, help="Compare the models with the database.")
def revision(message: str, autogenerate: bool) -> None:
    """Write a new migration script into app/storage/migrations/versions."""
    migrate.revision(current_app.extensions["chatgate"].database.engine, message, autogenerate)


@db_cli.command("purge-expired")
def purge_expired() -> None:
    """Erase idle conversations, spent Idempotency-Keys and cache entries past their lifetimes."""
    count = _run(_store().purge_expired)
    keys = _run(_store().purge_idempotency_keys)
    click.echo(f"purged {count} expired conversation{'s' if count != 1 else ''} "
               + f"and {keys} expired idempotency key{'s' if keys != 1 else ''}")
    entries = _run(_cache().purge_expired)
    click.echo(f"purged {entries} expired response-cache entr{'ies' if entries != 1 else 'y'}")


@db_cli.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt all stored text with the first DATA_ENCRYPTION_KEY."""
    store = _store()
    if isinstance(store.cipher, NoCipher):
        raise click.ClickException("DATA_ENCRYPTION_KEY is not set")
    count = _run(store.reencrypt)
    entries = _run(_cache().reencrypt)
    click.echo(f"re-encrypted {count} row{'s' if count != 1 else ''} and {entries} response-cache "
               + f"entr{'ies' if entries != 1 else 'y'} with the first DATA_ENCRYPTION_KEY; "
               + "keys after the first may now be removed")


db_cli.add_command(rotate_key, "reencrypt")


@db_cli.command("generate-key")
def generate_key() -> None:
    """Print a new key for DATA_ENCRYPTION_KEY (put it first in the list to rotate)."""
    click.echo(Fernet.generate_key().decode("ascii"))
