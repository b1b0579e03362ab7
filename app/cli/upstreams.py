"""``flask --app wsgi upstreams check``: ask every upstream for its model list, and print a table."""
from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from ..config.parsers import without_password
from ..errors import APIError
from ..upstream.router import Router

upstreams_cli = AppGroup("upstreams", help="The upstreams of UPSTREAMS_FILE (or of the OPENAI_* settings).")


@upstreams_cli.command("check")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 300),
              help="Seconds to wait for each upstream.")
def check(timeout: float) -> None:
    """GET /models from each upstream, once: its answer, time, model count and circuit; exit 1 if any failed."""
    found = current_app.extensions["chatgate"]
    router = found.upstream
    if not isinstance(router, Router):
        raise click.ClickException("no upstream is configured")
    routing = found.routing
    states = router.states()
    rows, failed = [], 0
    for name, client in router.upstreams.items():
        spec = routing.upstreams.get(name)
        offline = spec is not None and spec.kind == "offline"
        where = "embedded offline model" if offline else without_password(client.base_url)
        started = time.perf_counter()
        try:
            count = client.models(timeout)
            answer, models = "ok", str(count)
        except APIError as err:
            # The error's code only: never the upstream's body, and never its key.
            failed += 1
            status = f" {err.upstream_status}" if err.upstream_status else ""
            answer, models = f"FAILED{status} {err.code}", "-"
        ms = (time.perf_counter() - started) * 1000
        state = states[name].kind if states[name].known else "unknown"
        rows.append((name, where, answer, f"{ms:.0f} ms", models, state))
    header = ("upstream", "base URL", "answer", "time", "models", "circuit")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for line in (header, *rows):
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    if failed:
        raise click.exceptions.Exit(1)
