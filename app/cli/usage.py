"""``flask --app wsgi usage report``: what each key spent, by day and model."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import APIError

usage_cli = AppGroup("usage", help="Spend and tokens from the usage ledger.")


@usage_cli.command("report")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660),
              help="How many UTC days back, today included.")
def report(days: int) -> None:
    """Print a table per key: requests, tokens and cost by day and model, and the key's total."""
    found = current_app.extensions["chatgate"]
    try:
        rows = found.ledger.report(days)
        names = {f"key:{row.id}": row.name for row in found.keyring.list()}
    except APIError as err:
        raise click.ClickException(f"{err.message} ({err.code})") from None
    if not rows:
        click.echo(f"no usage in the last {days} day{'s' if days != 1 else ''}")
        return
    by_client: dict[str, list[dict]] = {}
    for client, row in rows:
        by_client.setdefault(client, []).append(row)
    header = f"  {'day':<10}  {'model':<28} {'requests':>9} {'prompt':>11} {'completion':>11} {'cost (USD)':>12}"
    for client, client_rows in by_client.items():
        click.echo(f"{names.get(client, client)} ({client})")
        click.echo(header)
        for r in client_rows:
            click.echo(f"  {r['day']:<10}  {r['model'][:28]:<28} {r['requests']:>9} {r['prompt_tokens']:>11} "
                       + f"{r['completion_tokens']:>11} {r['cost_usd']:>12.6f}")
        total = sum(r["cost_usd"] for r in client_rows)
        requests = sum(r["requests"] for r in client_rows)
        click.echo(f"  {'total':<10}  {'':<28} {requests:>9} {sum(r['prompt_tokens'] for r in client_rows):>11} "
                   + f"{sum(r['completion_tokens'] for r in client_rows):>11} {total:>12.6f}")
        click.echo("")
