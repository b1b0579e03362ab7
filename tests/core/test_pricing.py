"""Prices: the shipped table, PRICES_FILE, exact costs, the ledger's cost, and cost_usd wherever usage is shown."""
from __future__ import annotations

import json
import logging
import re

import pytest
import responses
from conftest import UPSTREAM
from support import completion

from app.core.pricing import SHIPPED, load_prices
from app.errors import ConfigError
from app.upstream.sse_codec import iter_sse

URL = UPSTREAM + "/chat/completions"


def test_the_shipped_table_says_its_date_and_source_and_covers_the_common_models():
    head = SHIPPED.read_text(encoding="utf-8").split("[models]")[0]
    assert re.search(r"\b(January|February|March|April|May|June|July|August|September|October|November|December) "
                     + r"20\d\d\b", head) and "openai.com" in head
    table = load_prices()
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5",
                  "gpt-5-mini", "gpt-5-nano", "text-embedding-3-small"):
        assert table.price(model) is not None, model
    assert table.price("gpt-4o-mini").per_million == {"input": 0.15, "cached_input": 0.075, "output": 0.6}


@pytest.mark.parametrize("model, usage, micros", [
    ("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 100}, 3500),            # 1000 x 2.5 + 100 x 10
    ("gpt-4o-mini", {"prompt_tokens": 1, "completion_tokens": 0}, 1),                # 0.15 rounds up to 1
    ("gpt-4o-mini", {"prompt_tokens": 0, "completion_tokens": 0}, 0),
    ("gpt-4o-mini", {"prompt_tokens": 1000, "completion_tokens": 1000,
                     "prompt_tokens_details": {"cached_tokens": 500}}, 713),          # 75 + 37.5 + 600
    ("gpt-4o-mini-2024-07-18", {"prompt_tokens": 1000, "completion_tokens": 0}, 150),  # dated snapshot
    ("gpt-4o-2024-05-13", {"prompt_tokens": 1000, "completion_tokens": 0}, 5000),      # its own price
    ("o1-pro", {"prompt_tokens": 2, "completion_tokens": 1}, 900),
])
def test_costs_are_exact_micro_dollars_rounded_up_once(model, usage, micros):
    assert load_prices().cost_micros(model, usage) == micros


def test_the_worst_case_prices_every_prompt_token_uncached_and_every_reply_token():
    assert load_prices().worst_case_micros("gpt-4o", 1000, 256) == 2500 + 2560


def test_a_model_without_a_price_costs_zero_and_warns_once(caplog):
    table = load_prices()
    with caplog.at_level(logging.WARNING, logger="app.core.pricing"):
        for _ in range(3):
            assert table.cost_micros("llama3:8b", {"prompt_tokens": 10, "completion_tokens": 10}) == 0
            assert table.worst_case_micros("llama3:8b", 10, 10) == 0
        table.cost_micros("qwen2.5", {"prompt_tokens": 1, "completion_tokens": 1})
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "'llama3:8b'" in warnings[0] and "PRICES_FILE" in warnings[0]


def test_prices_file_adds_and_overrides(tmp_path, make_app):
    path = tmp_path / "prices.toml"
    path.write_text('[models]\n"gpt-4o-mini" = { input = 1, output = 2 }\n"llama3" = { input = 0, output = 0 }\n'
                    + '"tiny" = { input = 0.000001, cached_input = 0, output = 1000000 }\n', encoding="utf-8")
    table = load_prices(str(path))
    assert table.cost_micros("gpt-4o-mini", {"prompt_tokens": 10, "completion_tokens": 10}) == 30
    assert table.price("llama3").output == 0 and table.price("gpt-4o") is not None
    assert table.cost_micros("tiny", {"prompt_tokens": 1, "completion_tokens": 0}) == 1
    app = make_app(PRICES_FILE=str(path))
    assert app.test_client().post("/chat", json={"prompt": "Hi"}).json["usage"]["cost_usd"] > 0


@pytest.mark.parametrize("text, says", [
    ("not toml [", "PRICES_FILE: not valid TOML"),
    ('[prices]\n"a" = { input = 1, output = 1 }', "PRICES_FILE: expected a [models] table"),
    ('[models]\n"a" = { input = 1 }', "PRICES_FILE: model 'a': expected input and output"),
    ('[models]\n"a" = { input = 1, output = 1, discount = 2 }', "PRICES_FILE: model 'a': expected input and output"),
    ('[models]\n"a" = { input = -1, output = 1 }', "PRICES_FILE: model 'a': input must be from 0"),
    ('[models]\n"a" = { input = 0.0000001, output = 1 }', "PRICES_FILE: model 'a': input must be from 0"),
    ('[models]\n"a" = { input = "1", output = 1 }', "PRICES_FILE: model 'a': input must be a number"),
    ('[models]\n"a" = { input = nan, output = 1 }', "PRICES_FILE: model 'a': input must be from 0"),
])
def test_a_bad_prices_file_stops_start_up_with_one_line(tmp_path, make_app, text, says):
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        make_app(PRICES_FILE=str(path))
    assert str(err.value).startswith(says) and "\n" not in str(err.value)


def test_a_missing_prices_file_is_refused(make_app, tmp_path):
    with pytest.raises(ConfigError, match=r"^PRICES_FILE: no readable file"):
        make_app(PRICES_FILE=str(tmp_path / "nope.toml"))


# --- cost_usd wherever a client sees usage, and in the ledger


def events(resp) -> list[dict]:
    return [json.loads(e.data) for e in iter_sse([resp.get_data()]) if e.data != "[DONE]"]


def test_chat_reply_stream_end_and_v1_usage_carry_the_same_cost_as_the_ledger(client, app):
    chat = client.post("/chat", json={"prompt": "Hello"}).json["usage"]
    end = events(client.post("/chat", json={"prompt": "Hello", "stream": True}))[-1]["usage"]
    v1 = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini",
                                                   "messages": [{"role": "user", "content": "Hello"}]}).json["usage"]
    chunks = events(client.post("/v1/chat/completions", json={
        "model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Hello"}]}))
    v1_stream = chunks[-1]["usage"]
    table = app.extensions["chatgate"].prices
    for usage in (chat, end, v1, v1_stream):
        assert usage["cost_usd"] == table.cost_micros("gpt-4o-mini", usage) / 1e6 > 0
    rows = app.extensions["chatgate"].ledger.totals("ip:127.0.0.1", 1)
    assert rows[0]["requests"] == 4
    assert rows[0]["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in (chat, end, v1, v1_stream)))
    assert client.get("/usage").json["data"] == rows


@responses.activate
def test_cached_prompt_tokens_are_priced_lower_and_passed_on(remote):
    body = completion(usage=(1000, 100))
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 800}
    responses.post(URL, json=body)
    usage = remote.post("/v1/chat/completions", json={"model": "gpt-4o",
                                                      "messages": [{"role": "user", "content": "Hi"}]}).json["usage"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 800}
    assert usage["cost_usd"] == (200 * 2.5 + 800 * 1.25 + 100 * 10) / 1e6
