"""Per-key dollar budgets, per UTC day and per calendar month, held like the token limits.

Before a call, its worst case (the estimated prompt plus every reply token it
may use, at the model's prices) is added to the key's day and month counters;
after it, the counters are settled to the real cost. The one check, for both
budgets, is ``spent + reserved >= budget`` with this call's reservation
included, so concurrent calls can never together spend past a budget. The
counters are the limiter's (in-process, or Redis for every instance); a
counter is seeded once per period from the usage ledger, so a restart or a
fresh Redis does not forget what was already spent.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import RateLimited, ServiceUnavailable, StoreDown
from ..ops.metrics import NULL

log = logging.getLogger(__name__)

# Counters outlive their period by this much, so a settle right after midnight still finds its key.
_GRACE_SECONDS = 3600


@dataclass
class Period:
    """One budget period: its name, its counter suffix, its first day and when it ends."""

    name: str      # "daily" or "monthly"
    metric: str    # the chatgate_limit_rejections_total label
    tag: str       # 2026-01-31 or 2026-01
    first_day: str
    resets_at: datetime


def periods(now: float) -> tuple[Period, Period]:
    """The UTC day and the calendar month ``now`` falls in."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    next_day = datetime.fromtimestamp(day.timestamp() + 86400, UTC)
    month = day.replace(day=1)
    next_month = month.replace(year=month.year + (month.month == 12), month=month.month % 12 + 1)
    return (Period("daily", "budget_day", day.strftime("%Y-%m-%d"), day.strftime("%Y-%m-%d"), next_day),
            Period("monthly", "budget_month", month.strftime("%Y-%m"), month.strftime("%Y-%m-%d"), next_month))


def over_budget(spent_and_reserved: int, budget: int) -> bool:
    """The one budget check, for the day and the month alike."""
    return spent_and_reserved >= budget


@dataclass
class BudgetHold:
    """Micro-dollars held on a key's budget counters for one call."""

    keys: list[tuple[str, float]]
    amount: int


class Budgets:
    """Reserves and settles micro-dollars against each key's daily and monthly budget."""

    def __init__(self, counters, *, fail: str = "closed", metrics=NULL,
                 spent_since: Callable[[str, str], int] | None = None, clock: Callable[[], float] = time.time):
        self.counters = counters
        self.fail = fail
        self.metrics = metrics
        self.spent_since = spent_since
        self.clock = clock
        self._seeded: set[str] = set()
        self._lock = threading.Lock()

    def reserve(self, caller, micros: int) -> BudgetHold | None:
        """Hold ``micros`` on the caller's budgets, or RateLimited ``budget_exceeded``; None when it has none."""
        day_budget, month_budget = caller.budget_day_micros, caller.budget_month_micros
        if day_budget is None and month_budget is None:
            return None
        now = self.clock()
        day, month = periods(now)
        hold = BudgetHold([], micros)
        for period, budget in ((day, day_budget), (month, month_budget)):
            if budget is None:
                continue
            key = f"budget:{caller.limit_key}:{period.tag}"
            window = period.resets_at.timestamp() - now + _GRACE_SECONDS
            self._seed(caller, key, period, window)
            count = self._add(key, micros, window)
            if count is None:
                continue  # the store is down and LIMITS_FAIL=open
            hold.keys.append((key, window))
            if over_budget(count, budget):
                self.settle(hold, 0)
                self.metrics.rejected(period.metric)
                raise _exceeded(period, budget, count - micros, micros, now)
        return hold

    def settle(self, hold: BudgetHold | None, micros: int) -> None:
        """Replace the reserved worst case by what the call really cost."""
        if hold is None:
            return
        delta = micros - hold.amount
        if not delta:
            return
        for key, window in hold.keys:
            try:
                self.counters.add(key, delta, window)
            except StoreDown:
                pass  # best effort, as for token reservations; the ledger keeps the truth
        hold.amount = micros

    def _add(self, key: str, amount: int, window: float) -> int | None:
        try:
            return self.counters.add(key, amount, window)[0]
        except StoreDown as err:
            if self.fail == "open":
                log.warning("limits store unavailable (%s); budgets failing open", err)
                return None
            log.error("limits store unavailable (%s); budgets failing closed", err)
            raise ServiceUnavailable("rate limiting is unavailable; try again shortly",
                                     code="limits_unavailable") from None

    def _seed(self, caller, key: str, period: Period, window: float) -> None:
        """Once per period (per store), start the counter from what the ledger says was spent."""
        if self.spent_since is None or key in self._seeded:
            return
        first = self._add(key + ":seeded", 1, window)
        if first == 1:
            spent = self.spent_since(caller.id, period.first_day)
            if spent:
                self._add(key, spent, window)
        with self._lock:
            if len(self._seeded) > 100_000:
                self._seeded.clear()  # old periods' keys; re-checking one costs a counter add
            self._seeded.add(key)


def _exceeded(period: Period, budget: int, before: int, needs: int, now: float) -> RateLimited:
    reset = period.resets_at
    seconds = max(1, math.ceil(reset.timestamp() - now))
    return RateLimited(f"the {period.name} budget of {_usd(budget)} for this key is used up: {_usd(before)} is spent "
                       + f"or reserved and this request may cost up to {_usd(needs)}; it resets at "
                       + reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       code="budget_exceeded", headers={"Retry-After": str(seconds)})


def _usd(micros: int) -> str:
    return f"${micros / 1_000_000:,.6f}".rstrip("0").rstrip(".") if micros % 10_000 else f"${micros / 1_000_000:,.2f}"
