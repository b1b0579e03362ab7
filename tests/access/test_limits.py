"""Request, token, stream and failed-authentication limits, on every counter store."""
from __future__ import annotations

import math

import pytest
from support import FakeClock

from app.access import limits as limits_module
from app.access.counters import MemoryCounters
from app.access.keys import Caller
from app.access.limits import Limiter
from app.access.redis_counters import RedisCounters
from app.access.shared_table import SharedCounters
from app.errors import RateLimited, ServiceUnavailable, StoreDown


@pytest.fixture(params=["memory", "table", "redis"])
def counters(request, tmp_path):
    """A fresh store of each kind."""
    if request.param == "memory":
        return MemoryCounters()
    if request.param == "table":
        return SharedCounters.create(str(tmp_path / "limits"), 8192)
    return RedisCounters(request.getfixturevalue("redis_url"))


def limiter(counters, **kw):
    settings = {"rate_limit": None, "token_rate_limit": None, "daily_token_quota": None, "max_streams": 0,
                "background": False}
    settings.update(kw)
    return Limiter(counters, **settings)


def value(counters, key: str) -> int:
    """A counter's current value, read without changing it."""
    return counters.add(key, 0, 60)[0]


ALICE = Caller(id="key:1", limit_key="key:1", name="alice")
BOB = Caller(id="key:2", limit_key="key:2", name="bob")


class Down:
    """A store that is away while ``down`` is set, and in-process otherwise."""

    def __init__(self, clock=None):
        self.inner = MemoryCounters(clock)
        self.down = False

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            if self.down:
                raise StoreDown("ConnectionError")
            return method(*args, **kwargs)
        return call


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
    lim.check_request(BOB)  # another client has its own budget


def test_no_rate_means_no_counting(counters):
    assert limiter(counters).check_request(ALICE) == {}


def test_per_key_overrides_replace_every_default(counters):
    lim = limiter(counters, rate_limit="100/minute", token_rate_limit="100000/minute", daily_token_quota=10**9)
    strict = Caller(id="key:9", limit_key="key:9", rate_limit="1/minute", token_rate_limit="50/minute")
    lim.check_request(strict)
    with pytest.raises(RateLimited):
        lim.check_request(strict)
    with pytest.raises(RateLimited) as err:
        lim.reserve(strict, 60)
    assert err.value.code == "token_limit_exceeded" and err.value.headers["RateLimit-Limit"] == "50"
    quota = Caller(id="key:8", limit_key="key:8", daily_token_quota=70)
    lim.reserve(quota, 60)
    with pytest.raises(RateLimited) as err:
        lim.reserve(quota, 60)
    assert err.value.code == "quota_exceeded" and err.value.headers["RateLimit-Limit"] == "70"


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


def test_settling_more_than_reserved_counts_the_excess(counters):
    lim = limiter(counters, token_rate_limit="1000/minute")
    lim.settle(lim.reserve(ALICE, 100), 900)
    with pytest.raises(RateLimited):
        lim.reserve(ALICE, 101)


def test_daily_quota_applies_to_keys_and_addresses(counters):
    lim = limiter(counters, daily_token_quota=500)
    anonymous = Caller(id="ip:192.0.2.1", limit_key="ip:192.0.2.1")
    for caller in (ALICE, anonymous):
        lim.reserve(caller, 400)
        with pytest.raises(RateLimited) as err:
            lim.reserve(caller, 200)
        assert err.value.code == "quota_exceeded"
        assert 1 <= int(err.value.headers["Retry-After"]) <= 86400


def test_a_refused_reservation_holds_nothing(counters):
    lim = limiter(counters, token_rate_limit="1000/minute", daily_token_quota=300)
    with pytest.raises(RateLimited):
        lim.reserve(ALICE, 400)  # passes the minute limit, fails the daily quota: both rolled back
    held = lim.reserve(ALICE, 300)
    assert [value(counters, key) for key, _ in held.keys] == [300, 300]
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 800)  # fails the minute limit first
    assert err.value.code == "token_limit_exceeded"
    assert [value(counters, key) for key, _ in held.keys] == [300, 300]
    lim.reserve(Caller(id="x", limit_key="key:x"), 300)


def test_retry_after_and_reset_come_from_the_window(monkeypatch):
    class Clock:
        @staticmethod
        def time() -> float:
            return 1_700_000_000.25  # 20.25 s into a minute, 80,000.25 s into a UTC day

        monotonic = staticmethod(FakeClock())

    monkeypatch.setattr(limits_module, "time", Clock)
    frozen = FakeClock()
    lim = limiter(MemoryCounters(frozen), rate_limit="1/minute", daily_token_quota=10)
    assert lim.check_request(ALICE)["RateLimit-Reset"] == "40"
    with pytest.raises(RateLimited) as err:
        lim.check_request(ALICE)
    assert err.value.headers["Retry-After"] == "40"
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 11)
    assert err.value.headers["Retry-After"] == str(math.ceil(86400 - 80000.25)) == "6400"
    frozen.advance(39.5)
    with pytest.raises(RateLimited) as err:
        lim.check_request(ALICE)
    assert err.value.headers["Retry-After"] == "1"  # never 0: "now" is no use to a client


def test_open_streams_are_capped_and_released(counters):
    lim = limiter(counters, max_streams=2)
    a, b = lim.open_stream(ALICE), lim.open_stream(ALICE)
    with pytest.raises(RateLimited) as err:
        lim.open_stream(ALICE)
    assert err.value.code == "too_many_streams" and err.value.headers["Retry-After"] == "1"
    lim.open_stream(BOB)
    lim.close_stream(a)
    lim.close_stream(lim.open_stream(ALICE))
    lim.close_stream(b)


def test_a_stream_closed_twice_frees_one_slot(counters):
    lim = limiter(counters, max_streams=2)
    a, _b = lim.open_stream(ALICE), lim.open_stream(ALICE)
    lim.close_stream(a)
    lim.close_stream(a)
    lim.open_stream(ALICE)
    with pytest.raises(RateLimited):
        lim.open_stream(ALICE)


def test_no_stream_cap_means_streams_are_not_counted(counters):
    lim = limiter(counters, max_streams=0)
    assert [lim.open_stream(ALICE) for _ in range(50)] == [None] * 50
    lim.close_stream(None)


@pytest.mark.parametrize("kind", ["memory", "table"])
def test_streams_open_for_hours_keep_their_slots_and_the_count_never_goes_negative(kind, tmp_path):
    # The old counter's one-hour window lapsed under open streams: 8 became 16, then 24.
    clock = FakeClock()
    store = MemoryCounters(clock) if kind == "memory" else SharedCounters.create(str(tmp_path / "t"), 4096, clock)
    lim = limiter(store, max_streams=8)
    streams = [lim.open_stream(ALICE) for _ in range(8)]
    for _ in range(3 * 3600 // 2):  # three hours, renewed every two seconds as the keeper does
        clock.advance(2)
        lim.keeper.run_once()
    with pytest.raises(RateLimited):
        lim.open_stream(ALICE)
    for stream in streams:
        lim.close_stream(stream)
        lim.close_stream(stream)
    again = [lim.open_stream(ALICE) for _ in range(8)]
    with pytest.raises(RateLimited):
        lim.open_stream(ALICE)
    assert all(again)


def test_a_stream_nobody_renews_frees_its_slot_within_seconds():
    clock = FakeClock()
    lim = limiter(MemoryCounters(clock), max_streams=1, lease_seconds=6)
    lim.open_stream(ALICE)
    lim.keeper.drop(lim.keeper._leases.copy().pop())  # its worker died: nobody renews it
    clock.advance(5)
    with pytest.raises(RateLimited):
        lim.open_stream(ALICE)
    clock.advance(1.5)
    assert lim.open_stream(ALICE) is not None


@pytest.mark.parametrize("fail, outcome", [("closed", ServiceUnavailable), ("open", None)])
def test_an_unreachable_store_follows_the_fail_mode_on_every_path(fail, outcome):
    lim = limiter(RedisCounters("redis://127.0.0.1:1/0"), rate_limit="1/minute", token_rate_limit="1/minute",
                  max_streams=1, fail=fail)
    calls = (lambda: lim.check_request(ALICE), lambda: lim.reserve(ALICE, 10**6), lambda: lim.open_stream(ALICE))
    for call in calls:
        if outcome is None:
            assert call() in ({}, None) or call().keys == []
        else:
            with pytest.raises(outcome) as err:
                call()
            assert err.value.status == 503 and err.value.code == "limits_unavailable"
    lim.settle(limits_module.Reservation([], 10**6), 5)
    lim.close_stream(None)


def test_settlements_missed_in_an_outage_are_made_when_the_store_is_back():
    store = Down()
    lim = limiter(store, token_rate_limit="1000/hour")
    held = lim.reserve(ALICE, 900)
    store.down = True
    lim.settle(held, 50)
    assert lim.keeper.pending == 1
    lim.keeper.run_once()
    assert lim.keeper.pending == 1  # still away: kept
    store.down = False
    lim.keeper.run_once()
    assert lim.keeper.pending == 0
    lim.reserve(ALICE, 900)  # 50 + 900: the stuck 900 is gone


def test_a_refusal_during_an_outage_of_its_rollback_is_rolled_back_later():
    store = Down()
    lim = limiter(store, token_rate_limit="1000/hour")
    lim.reserve(ALICE, 600)

    real_add_many = store.inner.add_many

    def add_then_fail(ops):
        got = real_add_many(ops)
        store.down = True  # the store goes away right after counting the refused reservation
        return got

    store.inner.add_many = add_then_fail
    with pytest.raises(RateLimited):
        lim.reserve(ALICE, 600)
    store.inner.add_many = real_add_many
    store.down = False
    lim.keeper.run_once()
    lim.reserve(ALICE, 400)


def test_open_stream_slots_survive_an_outage_and_are_freed_after_it():
    clock = FakeClock()
    store = Down(clock)
    lim = limiter(store, max_streams=2, lease_seconds=6)
    ended, running = lim.open_stream(ALICE), lim.open_stream(ALICE)
    store.down = True
    lim.close_stream(ended)  # its release is lost in the outage
    clock.advance(2)
    lim.keeper.run_once()  # renewals fail too
    clock.advance(8)  # the outage outlasts every lease
    store.down = False
    lim.keeper.run_once()  # the running stream is renewed (taken again); the ended one is not
    lim.open_stream(ALICE)
    with pytest.raises(RateLimited):
        lim.open_stream(ALICE)
    assert not running.released


def test_failed_authentications_are_throttled_per_address(counters):
    lim = limiter(counters, auth_failure_limit="3/minute")
    for _ in range(3):
        lim.check_auth_failures("192.0.2.1")
        lim.count_auth_failure("192.0.2.1")
    with pytest.raises(RateLimited) as err:
        lim.check_auth_failures("192.0.2.1")
    assert err.value.code == "too_many_auth_failures" and 1 <= int(err.value.headers["Retry-After"]) <= 60
    lim.check_auth_failures("192.0.2.2")
    limiter(counters).check_auth_failures("192.0.2.1")  # no limit configured: never throttled


def test_the_failed_authentication_throttle_never_locks_keys_out_when_the_store_is_away():
    lim = limiter(RedisCounters("redis://127.0.0.1:1/0"), auth_failure_limit="1/minute", fail="closed")
    lim.check_auth_failures("192.0.2.1")
    lim.count_auth_failure("192.0.2.1")
    lim.check_auth_failures("192.0.2.1")


def test_readiness_names_the_store():
    assert limiter(MemoryCounters()).check() == "in-process"
    assert limiter(RedisCounters("redis://127.0.0.1:1/0")).check() == "unavailable"


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


def test_anonymous_callers_are_counted_by_their_address(make_app):
    client = make_app(RATE_LIMIT="1/hour").test_client()

    def ask(address):
        return client.post("/chat", json={"prompt": "hi"}, environ_base={"REMOTE_ADDR": address}).status_code

    assert [ask("192.0.2.1"), ask("192.0.2.1"), ask("192.0.2.2")] == [200, 429, 200]


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


def test_failed_keys_from_one_address_are_refused_before_any_lookup(make_app, monkeypatch):
    app = make_app(AUTH_MODE="keys", AUTH_FAILURE_LIMIT="3/minute")
    with app.app_context():
        key = app.extensions["chatgate"].keyring.create("alice")
    client = app.test_client()
    lookups = []
    database = app.extensions["chatgate"].database
    real_session = database.session
    monkeypatch.setattr(database, "session", lambda **kw: lookups.append(1) or real_session(**kw))

    def ask(token, address="192.0.2.1"):
        return client.post("/chat", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {token}"},
                           environ_base={"REMOTE_ADDR": address})

    wrong = "cg-" + "x" * 43
    assert [ask(wrong).status_code for _ in range(3)] == [401, 401, 401]
    assert len(lookups) == 3
    refused = ask(wrong)
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "too_many_auth_failures"
    assert "Retry-After" in refused.headers and len(lookups) == 3  # no lookup for it
    assert ask(key).status_code == 429  # not even a right key, until the window passes
    assert ask(key, "192.0.2.2").status_code == 200  # another address is not affected
    assert ask(key).status_code == 200  # now cached: it costs no lookup, so it passes
