"""What a call costs: the shipped price table (``prices.toml``), PRICES_FILE on top, and integer arithmetic.

Prices are US dollars per million tokens, which is the same number as
micro-dollars per token. They are kept as whole pico-dollars per token, so a
cost is an exact integer sum, rounded up once to whole micro-dollars: the
ledger stores micro-dollars, and a budget never loses a fraction to rounding.
"""
from __future__ import annotations

import logging
import re
import threading
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).with_name("prices.toml")
PICO_PER_MICRO = 1_000_000
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-4o-mini-2024-07-18 -> gpt-4o-mini
_FIELDS = {"input", "cached_input", "output"}


@dataclass(frozen=True)
class Price:
    """One model's prices in pico-dollars per token."""

    input: int
    cached_input: int
    output: int

    @property
    def per_million(self) -> dict[str, float]:
        """The prices as a table shows them: dollars per million tokens."""
        return {"input": self.input / PICO_PER_MICRO, "cached_input": self.cached_input / PICO_PER_MICRO,
                "output": self.output / PICO_PER_MICRO}


class PriceTable:
    """Model name to price; costs in micro-dollars."""

    def __init__(self, prices: dict[str, Price]):
        self._prices = dict(prices)
        self._resolved: dict[str, Price | None] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._prices)

    def price(self, model: str) -> Price | None:
        """The model's price: its own entry, else its undated name's; None when unpriced."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = self._prices.get(model)
        if found is None and _DATED.search(model):
            found = self._prices.get(_DATED.sub("", model))
        with self._lock:
            if len(self._resolved) < 10_000:  # bounded, whatever names reach it
                self._resolved[model] = found
        return found

    def _priced(self, model: str) -> Price | None:
        found = self.price(model)
        if found is None and model not in self._warned:
            with self._lock:
                first = model not in self._warned
                self._warned.add(model)
            if first:
                log.warning("no price for model %r: its calls count as costing 0 (add it to PRICES_FILE)", model)
        return found

    def cost_micros(self, model: str, usage: dict) -> int:
        """What a call with this usage cost, in micro-dollars (rounded up)."""
        price = self._priced(model)
        if price is None:
            return 0
        prompt = max(0, int(usage.get("prompt_tokens") or 0))
        completion = max(0, int(usage.get("completion_tokens") or 0))
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        cached = min(prompt, cached) if isinstance(cached, int) and cached > 0 else 0
        pico = (prompt - cached) * price.input + cached * price.cached_input + completion * price.output
        return -(-pico // PICO_PER_MICRO)

    def worst_case_micros(self, model: str, prompt_tokens: int, completion_tokens: int) -> int:
        """The most a call may cost: every prompt token uncached, every reply token used."""
        price = self._priced(model)
        if price is None:
            return 0
        return -(-(prompt_tokens * price.input + completion_tokens * price.output) // PICO_PER_MICRO)


def load_prices(extra: str | None = None) -> PriceTable:
    """The shipped table with PRICES_FILE's entries added or overriding; a bad file is a ConfigError."""
    prices = _read(SHIPPED, "the shipped price table")
    if extra:
        prices.update(_read(Path(extra), "PRICES_FILE"))
    return PriceTable(prices)


def _read(path: Path, name: str) -> dict[str, Price]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh, parse_float=Decimal)
    except OSError:
        raise ConfigError(f"{name}: no readable file at the given path") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{name}: not valid TOML ({err})") from None
    models = data.get("models")
    if not isinstance(models, dict) or set(data) - {"models"}:
        raise ConfigError(f'{name}: expected a [models] table, e.g. "gpt-4o" = {{ input = 2.50, output = 10.00 }}')
    return {str(model): _price(name, str(model), entry) for model, entry in models.items()}


def _price(name: str, model: str, entry) -> Price:
    where = f"{name}: model {model!r}"
    if not isinstance(entry, dict) or not {"input", "output"} <= set(entry) or set(entry) - _FIELDS:
        raise ConfigError(f"{where}: expected input and output (and optionally cached_input), in USD per 1M tokens")
    values = {field: _pico(where, field, entry[field]) for field in entry}
    return Price(input=values["input"], cached_input=values.get("cached_input", values["input"]),
                 output=values["output"])


def _pico(where: str, field: str, raw) -> int:
    """USD per million tokens (up to six decimals) as whole pico-dollars per token."""
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        raise ConfigError(f"{where}: {field} must be a number of US dollars per million tokens")
    try:
        pico = Decimal(raw) * PICO_PER_MICRO
        ok = pico.is_finite() and 0 <= pico <= 10**18 and pico == pico.to_integral_value()
    except InvalidOperation:  # NaN
        ok = False
    if not ok:
        raise ConfigError(f"{where}: {field} must be from 0 to 1000000 with at most six decimals")
    return int(pico)
