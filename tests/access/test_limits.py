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


def test_cors_only_for_listed_origins(make_app):
    client = make_app(CORS_ORIGINS="https://app.example.com").test_client()
    ok = client.post("/chat", json={"prompt": "hi"}, headers={"Origin": "https://app.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Request-ID" in ok.headers["Access-Control-Expose-Headers"]
    other = client.post("/chat", json={"prompt": "hi"}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    pre = client.options("/chat", headers={"Origin": "https://app.example.com",
                                           "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"].lower()
    bad = client.options("/chat", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in bad.headers
    assert "Access-Control-Allow-Origin" not in make_app().test_client().post(
        "/chat", json={"prompt": "hi"}, headers={"Origin": "https://app.example.com"}).headers


# --- pinned: what each refusal says, the windows, the defaults ------------------------------------


class Spy:
    """A store that records every (key, amount, window) it is asked to add."""

    def __init__(self, clock=None):
        self.inner = MemoryCounters(clock)
        self.added: list[tuple[str, int, float]] = []

    def add(self, key, amount, window):
        self.added.append((key, amount, window))
        return self.inner.add(key, amount, window)

    def add_many(self, ops):
        self.added += list(ops)
        return self.inner.add_many(ops)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class At:
    """A stand-in for the time module: wall time fixed at ``when``, monotonic time from a fake clock."""

    def __init__(self, when: float):
        self.when = when
        self.monotonic = FakeClock()

    def time(self) -> float:
        return self.when


def test_refusals_say_what_was_exceeded():
    lim = limiter(MemoryCounters(), rate_limit="1/minute", token_rate_limit="100/minute", daily_token_quota=150,
                  max_streams=1, auth_failure_limit="1/minute")
    lim.check_request(ALICE)
    with pytest.raises(RateLimited) as err:
        lim.check_request(ALICE)
    assert (err.value.message, err.value.code) == ("too many requests; slow down", "rate_limit_exceeded")
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 101)
    assert (err.value.message, err.value.code) == (
        "token rate exceeded: this request needs about 101 tokens", "token_limit_exceeded")
    lim.reserve(Caller(id="key:3", limit_key="key:3", token_rate_limit="1000/minute"), 100)
    with pytest.raises(RateLimited) as err:
        lim.reserve(Caller(id="key:3", limit_key="key:3", token_rate_limit="1000/minute"), 60)
    assert (err.value.message, err.value.code) == (
        "daily token quota exceeded: this request needs about 60 tokens", "quota_exceeded")
    lim.open_stream(ALICE)
    with pytest.raises(RateLimited) as err:
        lim.open_stream(ALICE)
    assert err.value.message == "too many open streams (at most 1); close one first"
    lim.count_auth_failure("192.0.2.1")
    with pytest.raises(RateLimited) as err:
        lim.check_auth_failures("192.0.2.1")
    assert err.value.message == "too many failed authentication attempts from this address; try again later"


def test_a_refusal_reports_what_was_left_before_the_request(counters):
    lim = limiter(counters, token_rate_limit="1000/minute")
    lim.reserve(ALICE, 600)
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 500)
    assert err.value.headers["RateLimit-Remaining"] == "400" and err.value.headers["RateLimit-Limit"] == "1000"


def test_every_window_is_the_rest_of_the_current_one(monkeypatch):
    at = At(1_700_000_000.25)  # 20.25 s into a minute, 80,000.25 s into a UTC day
    monkeypatch.setattr(limits_module, "time", at)
    spy = Spy(FakeClock())
    lim = limiter(spy, rate_limit="9/minute", token_rate_limit="900/hour", daily_token_quota=9000,
                  auth_failure_limit="9/minute")
    lim.check_request(ALICE)
    held = lim.reserve(ALICE, 10)
    lim.check_auth_failures("192.0.2.1")
    lim.count_auth_failure("192.0.2.1")
    at.monotonic.advance(1)
    lim.settle(held, 4)
    minute, hour, day = 60 - 20.25, 3600 - (1_700_000_000.25 % 3600), 86400 - 80000.25
    slot = int(1_700_000_000.25 // 60)
    assert spy.added == [
        (f"req:key:1:60:{slot}", 1, minute),
        (f"tok:key:1:3600:{int(1_700_000_000.25 // 3600)}", 10, hour),
        (f"day:key:1:{int(1_700_000_000.25 // 86400)}", 10, day),
        (f"authfail:192.0.2.1:60:{slot}", 0, minute),
        (f"authfail:192.0.2.1:60:{slot}", 1, minute),
        (f"tok:key:1:3600:{int(1_700_000_000.25 // 3600)}", -6, hour - 1),
        (f"day:key:1:{int(1_700_000_000.25 // 86400)}", -6, day - 1)]


def test_a_new_utc_day_is_a_new_quota(monkeypatch):
    midnight = 1_700_006_400  # a multiple of 86,400
    at = At(midnight - 0.5)
    monkeypatch.setattr(limits_module, "time", at)
    lim = limiter(MemoryCounters(FakeClock()), daily_token_quota=100)
    lim.reserve(ALICE, 100)
    with pytest.raises(RateLimited) as err:
        lim.reserve(ALICE, 1)
    assert err.value.headers["Retry-After"] == "1"
    at.when = midnight + 0.5
    lim.reserve(ALICE, 100)  # the new day's key, though the store has not expired the old one


def test_a_settlement_after_its_window_changes_nothing(monkeypatch):
    at = At(1_700_000_000.25)
    monkeypatch.setattr(limits_module, "time", at)
    spy = Spy(FakeClock())
    lim = limiter(spy, token_rate_limit="900/minute")
    held = lim.reserve(ALICE, 10)
    at.monotonic.advance(60 - 20.25)  # the minute is over
    lim.settle(held, 1)
    assert len(spy.added) == 1
    lim.settle(lim.reserve(ALICE, 10), 10)  # used what it reserved: nothing to settle
    assert len(spy.added) == 2


def test_with_no_token_limit_a_reservation_holds_nothing():
    spy = Spy()
    held = limiter(spy).reserve(ALICE, 500)
    assert (held.keys, held.amount) == ([], 500) and spy.added == []
    limiter(spy).settle(held, 10)
    assert spy.added == []


def test_a_reservation_made_while_failing_open_can_be_settled():
    lim = limiter(RedisCounters("redis://127.0.0.1:1/0"), token_rate_limit="1/minute", fail="open")
    held = lim.reserve(ALICE, 10**6)
    assert (held.keys, held.amount) == ([], 10**6)
    lim.settle(held, 5)


def test_the_defaults_fail_closed_and_renew_in_the_background():
    lim = Limiter(RedisCounters("redis://127.0.0.1:1/0"), rate_limit="1/minute", token_rate_limit=None,
                  daily_token_quota=None, max_streams=1)
    with pytest.raises(ServiceUnavailable) as err:
        lim.check_request(ALICE)
    assert err.value.message == "rate limiting is unavailable; try again shortly"
    assert (lim.lease_seconds, lim.keeper.interval, lim.keeper.background) == (6.0, 2.0, True)
    assert limiter(MemoryCounters(), lease_seconds=9).keeper.interval == 3.0
    assert limiter(MemoryCounters()).keeper.background is False


def test_the_fail_mode_is_logged_with_the_reason(caplog):
    import logging

    down = RedisCounters("redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="app.access.limits"):
        opened = limiter(down, rate_limit="1/minute", token_rate_limit="1/minute", max_streams=1,
                         auth_failure_limit="1/minute", fail="open")
        opened.check_request(ALICE)
        opened.reserve(ALICE, 1)
        opened.open_stream(ALICE)
        opened.check_auth_failures("192.0.2.1")
        with pytest.raises(ServiceUnavailable):
            limiter(down, rate_limit="1/minute").check_request(ALICE)
    reason = "ConnectionError"
    assert [r.getMessage() for r in caplog.records] == [
        f"limits store unavailable ({reason}); requests unlimited",
        f"limits store unavailable ({reason}); tokens unlimited",
        f"limits store unavailable ({reason}); streams unlimited",
        f"limits store unavailable ({reason}); failed authentications not throttled",
        f"limits store unavailable ({reason}); refusing"]


def test_readiness_of_a_reachable_shared_store(redis_url):
    assert limiter(RedisCounters(redis_url)).check() == "ok"
