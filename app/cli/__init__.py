"""Operator commands: ``flask --app wsgi keys|secrets|tls|db|usage|upstreams …``."""
from __future__ import annotations

from flask import Flask

from .db import db_cli
from .keys import keys_cli
from .secrets import secrets_cli
from .tls import tls_cli
from .upstreams import upstreams_cli
from .usage import usage_cli


def init_app(app: Flask) -> None:
    """Register the command groups."""
    for group in (keys_cli, secrets_cli, tls_cli, db_cli, usage_cli, upstreams_cli):
        app.cli.add_command(group)
