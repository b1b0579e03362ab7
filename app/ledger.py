"""The usage ledger: one row per upstream call, totals by day and model. No prompt text."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import func, select

from .db import Database
from .models import UsageRow


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class UsageLedger:
    """Writes usage rows and sums them per client."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow):
        self._db = db
        self._clock = clock

    def record(self, *, client_id: str, model: str, prompt_tokens: int, completion_tokens: int,
               latency_ms: float, status: int, filter_action: str, endpoint: str, stream: bool) -> None:
        """Append one row for one upstream call."""
        now = self._clock()
        row = UsageRow(client_id=client_id, day=now.strftime("%Y-%m-%d"), model=(model or "")[:255],
                       endpoint=endpoint[:64], stream=bool(stream), status=int(status),
                       filter_action=(filter_action or "none")[:16], prompt_tokens=max(0, int(prompt_tokens)),
                       completion_tokens=max(0, int(completion_tokens)), latency_ms=max(0.0, float(latency_ms)),
                       created_at=now)
        with self._db.session(write=True) as session:
            session.add(row)

    def totals(self, client_id: str, days: int) -> list[dict]:
        """Requests and tokens per UTC day and model over the last ``days`` days (today included)."""
        since = (self._clock() - timedelta(days=days - 1)).strftime("%Y-%m-%d")
        stmt = (select(UsageRow.day, UsageRow.model, func.count(), func.sum(UsageRow.prompt_tokens),
                       func.sum(UsageRow.completion_tokens))
                .where(UsageRow.client_id == client_id, UsageRow.day >= since)
                .group_by(UsageRow.day, UsageRow.model)
                .order_by(UsageRow.day, UsageRow.model))
        with self._db.session() as session:
            rows = session.execute(stmt).all()
        return [{"day": day, "model": model, "requests": int(count), "prompt_tokens": int(prompt or 0),
                 "completion_tokens": int(completion or 0), "total_tokens": int(prompt or 0) + int(completion or 0)}
                for day, model, count, prompt, completion in rows]
