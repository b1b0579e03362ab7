"""Request, token and stream limits, in-process and in the real Redis."""
from __future__ import annotations

import pytest
import redis as redis_lib

from app.access.keys import Caller
from app.errors import RateLimited, ServiceUnavailable
from app.access.counters import MemoryCounters, RedisCounters
from app.access.limits import Limiter

REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["memory", "redis"])
def counters(request):
    if request.param == "memory":
        return MemoryCounters()
    redis_lib.Redis.from_url(REDIS).flushdb()
    return RedisCounters(REDIS)


def limiter(counters, **kw):
    settings = {"rate_limit": None, "token_rate_limit": None, "daily_token_quota": None, "max_streams": 0}
    settings.update(kw)
    return Limiter(counters, **settings)


ALICE = Caller(id="key:1", limit_key="key:1", name="alice")


def test_request_rate(counters):
    lim = limiter(counters, rate_limit="3/minute")
    headers = [lim.check_request(ALICE) for _ in range(3)]
    assert [h["RateLimit-Remaining"] for h in headers] == ["2", "1", "0"]
    assert headers[0]["RateLimit-Limit"] == "3" and 0 < int(headers[0]["RateLimit-Reset"]) <= 60
    with pytest.raises(RateLimited) as err:
        lim.check_request(ALICE)
    assert err.value.code == "rate_limit_exceeded"
    assert 1 <= int(err.value.headers["Retry-After"]) <= 60
    assert err.value.headers["RateLimit-Remaining"] == "0"
    lim.check_request(Caller(id="key:2", limit_key="key:2"))  # another client has its own budget


def test_per_key_limits_override_the_defaults(counters):
    lim = limiter(counters, rate_limit="100/minute")
    strict = Caller(id="key:9", limit_key="key:9", rate_limit="1/minute")
    lim.check_request(strict)
    with pytest.raises(RateLimited):
        lim.check_request(strict)


def test_token_reservation_is_checked_then_settled(counters):
    lim = limiter(counters, token_rate_limit="1000/minute")
    held = lim.reserve(ALICE, 600)
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 600)  # 1,200 would be over
    assert err.value.code == "token_limit_exceeded"
    lim.settle(held, 100)  # it really used 100: 900 left
    lim.reserve(ALICE, 850)
    with pytest.raises(RateLimited):
        lim.reserve(ALICE, 100)


def test_daily_quota_applies_to_keys(counters):
    lim = limiter(counters, daily_token_quota=500)
    lim.reserve(ALICE, 400)
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 200)
    assert err.value.code == "quota_exceeded"
    assert int(err.value.headers["Retry-After"]) <= 86400


def test_a_refused_reservation_holds_nothing(counters):
    lim = limiter(counters, token_rate_limit="1000/minute", daily_token_quota=300)
    with pytest.raises(RateLimited):
        lim.reserve(ALICE, 400)  # passes the minute limit, fails the daily quota: both rolled back
    lim.reserve(ALICE, 300)
    lim.reserve(Caller(id="x", limit_key="key:x"), 300)


def test_open_streams_are_capped_and_released(counters):
    lim = limiter(counters, max_streams=2)
    a, b = lim.open_stream(ALICE), lim.open_stream(ALICE)
    with pytest.raises(RateLimited) as err:
        lim.open_stream(ALICE)
    assert err.value.code == "too_many_streams"
    lim.close_stream(a)
    lim.close_stream(lim.open_stream(ALICE))
    lim.close_stream(b)


@pytest.mark.parametrize("fail, outcome", [("closed", ServiceUnavailable), ("open", None)])
def test_redis_down_follows_the_fail_mode(fail, outcome):
    lim = limiter(RedisCounters("redis://127.0.0.1:1/0"), rate_limit="1/minute", token_rate_limit="1/minute",
                  fail=fail)
    if outcome is None:
        assert lim.check_request(ALICE) == {}
        lim.settle(lim.reserve(ALICE, 10**6), 5)
    else:
        with pytest.raises(outcome) as err:
            lim.check_request(ALICE)
        assert err.value.status == 503 and err.value.code == "limits_unavailable"


# --- through the HTTP doors --------------------------------------------------------------------


def test_over_the_request_rate_is_429_with_headers(make_app):
    client = make_app(RATE_LIMIT="2/minute").test_client()
    ok = client.post("/chat", json={"prompt": "hi"})
    assert ok.headers["RateLimit-Limit"] == "2" and ok.headers["RateLimit-Remaining"] == "1"
    client.get("/conversations")
    resp = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini",
                                                     "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 429
    assert resp.get_json()["error"]["type"] == "rate_limit_error"
    for name in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert name in resp.headers
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_token_limit_is_checked_before_the_upstream_call(make_app):
    client = make_app(TOKEN_RATE_LIMIT="100/minute").test_client()
    resp = client.post("/chat", json={"prompt": "hi", "max_tokens": 200})
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "token_limit_exceeded"
    assert client.post("/chat", json={"prompt": "hi", "max_tokens": 20}).status_code == 200


@pytest.mark.parametrize("door", ["chat", "v1"])
def test_abuse_bounds(make_app, door):
    client = make_app(MAX_TOKENS_CAP=100, MAX_MESSAGES=3, MAX_TOTAL_CHARS=50).test_client()

    def send(messages, **extra):
        if door == "chat":
            return client.post("/chat", json={"prompt": messages[-1]["content"], **extra})
        return client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": messages, **extra})

    over_cap = send([{"role": "user", "content": "hi"}], max_tokens=101)
    assert over_cap.status_code == 400 and over_cap.get_json()["error"]["param"] == "max_tokens"
    long = send([{"role": "user", "content": "x" * 51}])
    assert long.status_code == 400 and long.get_json()["error"]["code"] == "too_long"
    if door == "v1":
        many = send([{"role": "user", "content": "a"}] * 4)
        assert many.status_code == 400 and many.get_json()["error"]["code"] == "too_many_messages"


def test_stream_cap_through_http(make_app):
    client = make_app(MAX_STREAMS_PER_CLIENT=1, OFFLINE_STREAM_DELAY=0).test_client()
    first = client.post("/chat", json={"prompt": "hi", "stream": True}, buffered=False)
    second = client.post("/chat", json={"prompt": "hi", "stream": True})
    assert second.status_code == 429 and second.get_json()["error"]["code"] == "too_many_streams"
    first.close()
    third = client.post("/chat", json={"prompt": "hi", "stream": True})
    assert third.status_code == 200
