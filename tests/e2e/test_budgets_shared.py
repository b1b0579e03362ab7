"""Dollar budgets held by two chatgate instances sharing Redis: one budget, cut exactly where it ends."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import redis
import requests
from support import LiveServer, run_cli, wait_for

from app.core.estimate import estimate_messages

SHARED = "redis://127.0.0.1:6379/7"
BUDGET_MICROS = 600
MAX_TOKENS = 40
PRICES = '[models]\n"gpt-4o-mini" = { input = 1, output = 1 }\n'  # one micro-dollar a token


def test_two_instances_share_one_budget_exactly(tmp_path):
    redis.Redis.from_url(SHARED).flushdb()
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES, encoding="utf-8")
    env = {"REDIS_URL": SHARED, "AUTH_MODE": "keys", "KEY_HASH_SECRET": "k" * 40, "PRICES_FILE": str(prices),
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    keys = {}
    for name in ("sequential", "burst"):
        made = run_cli("keys", "create", name, "--budget-usd-day", f"{BUDGET_MICROS / 1e6:f}", env=env)
        assert made.returncode == 0, made.stderr
        keys[name] = made.stdout.strip().splitlines()[-1]
    body = {"prompt": "Hello", "max_tokens": MAX_TOKENS}
    worst = estimate_messages([{"role": "user", "content": "Hello"}]) + MAX_TOKENS  # micro-dollars

    def chat(url, key):
        return requests.post(url + "/chat", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    try:
        with LiveServer(**env) as one, LiveServer(**env) as two:
            # One request at a time, alternating instances: each is admitted exactly while it fits.
            spent, admitted = 0, 0
            for i in range(50):
                resp = chat((one, two)[i % 2].url, keys["sequential"])
                if resp.status_code != 200:
                    break
                assert spent + worst < BUDGET_MICROS
                spent += round(resp.json()["usage"]["cost_usd"] * 1e6)
                admitted += 1
            assert resp.status_code == 429 and resp.json()["error"]["code"] == "budget_exceeded"
            assert spent + worst >= BUDGET_MICROS and admitted >= 2
            def ledger_spent():
                usage = requests.get(one.url + "/usage", timeout=10,
                                     headers={"Authorization": f"Bearer {keys['sequential']}"}).json()["data"]
                return round(sum(r["cost_usd"] for r in usage) * 1e6)

            # The other instance writes its ledger rows within a fraction of a second.
            assert wait_for(lambda: ledger_spent() == spent)

            # Many at once through both instances: what they spent together stays under the budget.
            with ThreadPoolExecutor(max_workers=12) as pool:
                results = list(pool.map(lambda i: chat((one, two)[i % 2].url, keys["burst"]), range(24)))
            statuses = [r.status_code for r in results]
            assert statuses.count(200) >= 1 and statuses.count(429) >= 1
            burst_spent = sum(round(r.json()["usage"]["cost_usd"] * 1e6) for r in results if r.status_code == 200)
            assert burst_spent < BUDGET_MICROS
    finally:
        redis.Redis.from_url(SHARED).flushdb()
