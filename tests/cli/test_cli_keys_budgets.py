"""keys create/update with dollar budgets, their enforcement on both doors, and `usage report`."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.storage.tables import ClientKeyRow

PRICES = '[models]\n"gpt-4o-mini" = { input = 1, output = 1 }\n'  # one micro-dollar a token


@pytest.fixture
def keyed(make_app, tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(PRICES, encoding="utf-8")
    return make_app(AUTH_MODE="keys", PRICES_FILE=str(path))


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def row(app, name):
    with app.extensions["chatgate"].database.session() as session:
        return session.scalar(select(ClientKeyRow).where(ClientKeyRow.name == name))


def test_create_and_update_budgets(keyed):
    made = cli(keyed, "keys", "create", "mobile", "--budget-usd-day", "5", "--budget-usd-month", "$100.25")
    assert made.exit_code == 0, made.output
    assert made.output.strip().splitlines()[-1].startswith("cg-")
    assert (row(keyed, "mobile").budget_day_micros, row(keyed, "mobile").budget_month_micros) == (5_000_000,
                                                                                                  100_250_000)
    assert "usd/day=5, usd/month=100.25" in cli(keyed, "keys", "list").output
    changed = cli(keyed, "keys", "update", "mobile", "--budget-usd-day", "0.5", "--budget-usd-month", "none",
                  "--rate-limit", "10/minute")
    assert changed.exit_code == 0, changed.output
    found = row(keyed, "mobile")
    assert (found.budget_day_micros, found.budget_month_micros, found.rate_limit) == (500_000, None, "10/minute")


@pytest.mark.parametrize("args, says", [
    (("--budget-usd-day", "0"), "expected US dollars"),
    (("--budget-usd-day", "-1"), "expected US dollars"),
    (("--budget-usd-day", "lots"), "expected US dollars"),
    (("--budget-usd-month", "0.0000001"), "expected US dollars"),
    (("--rate-limit", "fast"), "expected a rate"),
])
def test_bad_budgets_are_refused(keyed, args, says):
    out = cli(keyed, "keys", "create", "x", *args)
    assert out.exit_code != 0 and says in out.output
    assert row(keyed, "x") is None


def test_update_needs_a_change_and_an_active_key(keyed):
    cli(keyed, "keys", "create", "x")
    assert "give at least one of" in cli(keyed, "keys", "update", "x").output
    out = cli(keyed, "keys", "update", "ghost", "--budget-usd-day", "1")
    assert out.exit_code != 0 and "no active key named 'ghost'" in out.output


@pytest.mark.parametrize("path, body", [
    ("/chat", {"prompt": "Hello", "max_tokens": 50}),
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 50,
                              "messages": [{"role": "user", "content": "Hello"}]}),
])
def test_a_spent_budget_is_429_budget_exceeded_on_both_doors(keyed, path, body):
    key = cli(keyed, "keys", "create", "tiny", "--budget-usd-day", "0.0002").output.strip().splitlines()[-1]
    client = keyed.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    spent, statuses = 0.0, []
    for _ in range(10):
        resp = client.post(path, json=body, headers=headers)
        statuses.append(resp.status_code)
        if resp.status_code == 200:
            spent += resp.json["usage"]["cost_usd"]
        else:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    err = resp.json["error"]
    assert err["code"] == "budget_exceeded" and "daily budget of $0.0002" in err["message"]
    assert "resets at " in err["message"] and int(resp.headers["Retry-After"]) <= 86400
    assert spent < 0.0002  # the worst case of the next call would have reached it
    assert keyed.test_client().get("/metrics").get_data(as_text=True).count(
        'chatgate_limit_rejections_total{limit="budget_day"} 1.0') == 1


def test_usage_report_prints_a_table_per_key(keyed):
    key = cli(keyed, "keys", "create", "reporter").output.strip().splitlines()[-1]
    client = keyed.test_client()
    for _ in range(2):
        cost = client.post("/chat", json={"prompt": "Hello"},
                           headers={"Authorization": f"Bearer {key}"}).json["usage"]["cost_usd"]
    out = cli(keyed, "usage", "report", "--days", "7")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("reporter (key:")
    assert "cost (USD)" in lines[1] and "gpt-4o-mini" in lines[2]
    total = lines[3].split()
    assert total[0] == "total" and total[1] == "2" and float(total[-1]) == pytest.approx(2 * cost)


def test_usage_report_with_nothing_to_show(keyed):
    assert cli(keyed, "usage", "report", "--days", "1").output.strip() == "no usage in the last 1 day"
