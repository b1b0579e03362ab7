"""``flask --app wsgi tls …``: certificates for serving HTTPS."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from ..ops.tls import make_self_signed

tls_cli = AppGroup("tls", help="Certificates for serving HTTPS.")


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
