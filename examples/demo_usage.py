#!/usr/bin/env python3
"""Fill a chatgate database with a month of made-up usage, to try /usage, `usage report` and usage_plot.py.

    DATABASE_URL=sqlite:////tmp/demo.db .venv/bin/python examples/demo_usage.py
    DATABASE_URL=sqlite:////tmp/demo.db .venv/bin/python wsgi.py &     # AUTH_MODE=open: the anonymous client
    python3 examples/usage_plot.py --url http://127.0.0.1:5000 --days 30 --out usage.svg

The rows belong to the anonymous client (AUTH_MODE=open) unless --client names
another ledger id (``key:<id>``, see ``keys list``). Costs come from the price table.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app import create_app, start  # noqa: E402
from app.storage.tables import LedgerRow  # noqa: E402

# model -> (calls a day, prompt tokens, completion tokens) on an ordinary weekday
TRAFFIC = {"gpt-4o-mini": (900, 900, 350), "gpt-4o": (120, 1500, 500), "gpt-4.1-mini": (300, 1200, 400)}


def main() -> int:
    """Write the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--client", default="anonymous")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    app = start(create_app({"APP_ENV": "development", "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
                            "ALLOWED_MODELS": ",".join(TRAFFIC)}))
    found = app.extensions["chatgate"]
    rows = []
    today = datetime.now(UTC)
    for back in range(args.days - 1, -1, -1):
        moment = today - timedelta(days=back)
        weekend = moment.weekday() >= 5
        growth = 1 + 0.02 * (args.days - back)
        for model, (calls, prompt, completion) in TRAFFIC.items():
            for _ in range(int(calls * growth * (0.35 if weekend else 1) * rng.uniform(0.8, 1.2)) // 50):
                usage = {"prompt_tokens": int(prompt * 50 * rng.uniform(0.5, 1.5)),
                         "completion_tokens": int(completion * 50 * rng.uniform(0.5, 1.5))}
                rows.append(dict(client_id=args.client, day=moment.strftime("%Y-%m-%d"), model=model,
                                 endpoint="/v1/chat/completions", stream=False, status=200, filter_action="none",
                                 latency_ms=800.0, created_at=moment, cost_micros=found.prices.cost_micros(model, usage),
                                 **usage))
    with found.database.session(write=True) as session:
        session.execute(LedgerRow.__table__.insert(), rows)
    print(f"wrote {len(rows)} ledger rows over {args.days} days for {args.client}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
