"""The router against mocked upstreams (``responses``): which failures fall back, deadlines, weights, breakers."""
from __future__ import annotations

import json
import logging
import random

import pytest
import requests
import responses
from support import FakeClock, completion

from app.access.counters import MemoryCounters
from app.config.routing import BreakerSpec
from app.errors import InvalidRequest, StreamFailed, UpstreamError, UpstreamUnavailable
from app.upstream.breaker import Breaker
from app.upstream.client import UpstreamClient, build_session
from app.upstream.router import Route, Router
from app.upstream.targets import Target

SPEC = BreakerSpec(failure_rate=0.5, min_requests=4, window=60, cooldown=30)
ASK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}


def url(name: str) -> str:
    return f"https://{name}.test/v1/chat/completions"


def client(name: str, retries: int = 0, **kwargs) -> UpstreamClient:
    return UpstreamClient(build_session(4), f"https://{name}.test/v1", f"sk-{name}-key-0123456789", 5, 60, retries,
                          name=name, **kwargs)


class Sink:
    """Records what the router says about who serves, as the meter's ticket would."""

    def __init__(self):
        self.seen = []

    def served_by(self, upstream, model, provider):
        self.seen.append((upstream, model))


def make(*targets, strategy="fallback", weights=(), deadline=30.0, breaker=None, **kwargs) -> Router:
    """A router with one route, gpt-4o-mini, over ``targets`` (names, or Target objects)."""
    made = tuple(t if isinstance(t, Target) else Target(client(t), "gpt-4o-mini") for t in targets)
    route = Route("gpt-4o-mini", made, strategy, weights)
    breaker = breaker or Breaker(MemoryCounters(), {t.name: SPEC for t in made})
    return Router({"gpt-4o-mini": route}, breaker, default_model="gpt-4o-mini", deadline=deadline, **kwargs)


FALLS_BACK = [
    ({"status": 408}, "upstream_timeout"), ({"status": 409}, "upstream_error"),
    ({"status": 429}, "upstream_rate_limited"), ({"status": 500}, "upstream_error"),
    ({"status": 502}, "upstream_error"), ({"status": 503}, "upstream_error"), ({"status": 504}, "upstream_timeout"),
    ({"status": 401}, "upstream_misconfigured"), ({"status": 403}, "upstream_misconfigured"),
    ({"status": 404}, "upstream_error"), ({"status": 302, "headers": {"Location": "https://x.test/"}},
                                          "upstream_redirect"),
    ({"body": requests.ConnectionError("refused")}, "upstream_unreachable"),
    ({"body": requests.ConnectTimeout("slow")}, "upstream_timeout"),
    ({"body": requests.ReadTimeout("slow")}, "upstream_timeout"),
    ({"body": "not json"}, "bad_upstream_response"),
]


@pytest.mark.parametrize("failure, code", FALLS_BACK)
@responses.activate
def test_each_upstream_failure_falls_back_to_the_next_target(failure, code):
    if "body" in failure:
        responses.post(url("a"), **failure)
    else:
        responses.post(url("a"), json={"error": {"message": "secret"}}, **failure)
    responses.post(url("b"), json=completion("from b"))
    sink = Sink()
    body = make("a", "b").chat(dict(ASK), sink)
    assert body["choices"][0]["message"]["content"] == "from b"
    assert sink.seen == [("a", "gpt-4o-mini"), ("b", "gpt-4o-mini")]
    # And with only the failing target, its own error is the answer, as a lone upstream's always was.
    with pytest.raises(Exception) as raised:
        make("a").chat(dict(ASK))
    assert getattr(raised.value, "code", None) == code


@pytest.mark.parametrize("status", [400, 422])
@responses.activate
def test_a_request_the_upstream_calls_wrong_never_falls_back(status):
    responses.post(url("a"), json={"error": {}}, status=status)
    responses.post(url("b"), json=completion())
    router = make("a", "b")
    with pytest.raises(InvalidRequest) as raised:
        router.chat(dict(ASK))
    assert raised.value.code == "upstream_rejected"
    assert [c.request.url for c in responses.calls] == [url("a")]
    # The upstream answered: its circuit counts a success, never a failure.
    for _ in range(6):
        with pytest.raises(InvalidRequest):
            router.chat(dict(ASK))
    assert router.states()["a"].kind == "closed"


@pytest.mark.parametrize("status, words", [(401, "refused its own key"), (403, "refused its own key"),
                                           (404, "does not know model 'gpt-4o-mini'")])
@responses.activate
def test_an_upstream_refusing_its_key_or_lacking_the_model_is_one_loud_line_naming_it(status, words, caplog):
    responses.post(url("azure"), json={"error": {"message": "Incorrect API key sk-azure-key-0123456789"}},
                   status=status)
    responses.post(url("b"), json=completion())
    with caplog.at_level(logging.WARNING, logger="app.upstream"):
        make("azure", "b").chat(dict(ASK))
    loud = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(loud) == 1 and "upstream azure" in loud[0].getMessage() and words in loud[0].getMessage()
    assert "sk-azure-key" not in caplog.text


@responses.activate
def test_a_targets_own_retries_come_first_with_retry_after_honoured(sleeps):
    for _ in range(3):
        responses.post(url("a"), status=503, headers={"Retry-After": "2"})
    responses.post(url("b"), json=completion())
    make(Target(client("a", retries=2), "gpt-4o-mini"), "b").chat(dict(ASK))
    assert [c.request.url for c in responses.calls] == [url("a")] * 3 + [url("b")]
    assert sleeps == [2.0, 2.0]


@responses.activate
def test_no_retry_starts_that_would_end_past_the_deadline(sleeps):
    responses.post(url("a"), status=503, headers={"Retry-After": "15"})
    responses.post(url("b"), json=completion())
    make(Target(client("a", retries=2), "gpt-4o-mini"), "b", deadline=10).chat(dict(ASK))
    assert [c.request.url for c in responses.calls] == [url("a"), url("b")]
    assert sleeps == []


@responses.activate
def test_a_passed_deadline_tries_nothing_more():
    import time

    from app.errors import UpstreamTimeout

    responses.post(url("b"), json=completion())
    router = make("a", "b", deadline=0.2)
    first = router.routes["gpt-4o-mini"].targets[0].client

    def slow(body, deadline):
        time.sleep(0.25)  # the first target used the whole deadline
        raise UpstreamTimeout()

    first.chat = slow  # type: ignore[method-assign]
    with pytest.raises(UpstreamUnavailable):
        router.chat(dict(ASK))
    assert len(responses.calls) == 0  # b was never tried


@responses.activate
def test_every_target_failing_is_a_503_naming_no_upstream():
    responses.post(url("a"), status=500)
    responses.post(url("b"), status=502)
    sink = Sink()
    with pytest.raises(UpstreamUnavailable) as raised:
        make("a", "b").chat(dict(ASK), sink)
    assert raised.value.status == 503 and raised.value.code == "upstream_unavailable"
    assert raised.value.headers == {"Retry-After": "1"}
    assert sink.seen[-1] == (None, None)


@responses.activate
def test_each_target_gets_the_request_as_it_takes_it():
    responses.post(url("local"), status=503)
    responses.post(url("reasoner"), json=completion())
    local = Target(client("local"), "qwen2.5:7b", developer_role="system")
    reasoner = Target(client("reasoner"), "o3-mini", developer_role="system")
    ask = {"model": "gpt-4o-mini", "max_tokens": 50,
           "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    make(local, reasoner).chat(ask)
    sent = [json.loads(c.request.body) for c in responses.calls]
    assert sent[0]["model"] == "qwen2.5:7b" and sent[0]["max_tokens"] == 50
    assert [m["role"] for m in sent[0]["messages"]] == ["system", "user"]
    assert sent[1]["model"] == "o3-mini" and sent[1]["max_completion_tokens"] == 50 and "max_tokens" not in sent[1]
    assert ask["messages"][0]["role"] == "developer" and ask["model"] == "gpt-4o-mini"  # the caller's is untouched


@responses.activate
def test_the_developer_role_goes_as_it_is_by_default():
    responses.post(url("a"), json=completion())
    make("a", "b").chat({**ASK, "messages": [{"role": "developer", "content": "x"}, *ASK["messages"]]})
    assert json.loads(responses.calls[0].request.body)["messages"][0]["role"] == "developer"


@responses.activate
def test_weights_spread_calls_as_configured():
    responses.post(url("a"), json=completion())
    responses.post(url("b"), json=completion())
    router = make("a", "b", strategy="weighted", weights=(3.0, 1.0), rng=random.Random(15))
    sink = Sink()
    for _ in range(800):
        router.chat(dict(ASK), sink)
    to_a = sum(1 for name, _ in sink.seen if name == "a")
    # 3:1 means 600 of 800; a binomial's standard deviation here is about 12, and the seed is fixed.
    assert 600 - 40 <= to_a <= 600 + 40


@responses.activate
def test_weights_skip_a_target_whose_circuit_is_open():
    clock = FakeClock()
    store = MemoryCounters(clock)
    breaker = Breaker(store, {"a": SPEC, "b": SPEC}, clock=clock)
    responses.post(url("a"), status=500)
    responses.post(url("b"), json=completion())
    router = make("a", "b", strategy="weighted", weights=(100.0, 1.0), breaker=breaker, rng=random.Random(1))
    for _ in range(6):
        router.chat(dict(ASK))
    assert router.states()["a"].kind == "open"
    responses.calls.reset()
    for _ in range(20):
        router.chat(dict(ASK))
    assert {c.request.url for c in responses.calls} == {url("b")}


@responses.activate
def test_breaker_open_fast_503_then_one_probe_then_closed():
    clock = FakeClock()
    breaker = Breaker(MemoryCounters(clock), {"a": SPEC, "b": SPEC}, clock=clock)
    failing = responses.post(url("a"), status=500)
    responses.post(url("b"), status=500)
    router = make("a", "b", breaker=breaker)
    for _ in range(4):
        with pytest.raises(UpstreamUnavailable):
            router.chat(dict(ASK))
    assert {n: s.kind for n, s in router.states().items()} == {"a": "open", "b": "open"}
    before = len(responses.calls)
    with pytest.raises(UpstreamUnavailable) as raised:
        router.chat(dict(ASK))
    assert len(responses.calls) == before  # refused at once: nothing was sent
    assert raised.value.headers["Retry-After"] == "30"
    assert router.unusable_routes() == ["gpt-4o-mini"]
    clock.advance(31)
    responses.remove(failing)
    responses.post(url("a"), json=completion("back"))
    assert router.chat(dict(ASK))["choices"][0]["message"]["content"] == "back"  # the probe
    assert router.states()["a"].kind == "closed" and router.states()["b"].kind == "half_open"
    assert router.unusable_routes() == []


@responses.activate
def test_the_soonest_cool_down_is_the_retry_after():
    clock = FakeClock()
    breaker = Breaker(MemoryCounters(clock), {"a": SPEC, "b": SPEC}, clock=clock)
    responses.post(url("a"), status=429, headers={"Retry-After": "120"})
    responses.post(url("b"), status=429, headers={"Retry-After": "50"})
    router = make("a", "b", breaker=breaker)
    with pytest.raises(UpstreamUnavailable):
        router.chat(dict(ASK))  # a 429 with Retry-After opens each circuit at once
    clock.advance(10)
    with pytest.raises(UpstreamUnavailable) as raised:
        router.chat(dict(ASK))
    assert raised.value.headers["Retry-After"] == "40"


def sse(*events) -> str:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)


def chunk(**delta) -> dict:
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


@pytest.mark.parametrize("before", [
    "",  # nothing at all
    sse(chunk(role="assistant", content="")),  # a role, but no content: nothing a client would have seen
    "data: {not json\n\n",
])
@responses.activate
def test_a_stream_that_fails_before_its_first_content_falls_over_invisibly(before):
    responses.post(url("a"), body=before, content_type="text/event-stream")
    responses.post(url("b"), body=sse(chunk(role="assistant", content=""), chunk(content="from b"), "[DONE]"),
                   content_type="text/event-stream")
    sink = Sink()
    stream = make("a", "b").chat_stream({**ASK, "stream": True}, sink)
    got = [c["choices"][0]["delta"].get("content") for c in stream]
    assert got == ["", "from b"] and sink.seen[-1][0] == "b"


@responses.activate
def test_a_stream_that_fails_after_its_first_content_ends_with_the_error_and_counts_against_the_upstream():
    clock = FakeClock()
    breaker = Breaker(MemoryCounters(clock), {"a": SPEC, "b": SPEC}, clock=clock)
    responses.post(url("a"), body=sse(chunk(content="half a reply")), content_type="text/event-stream")
    router = make("a", "b", breaker=breaker)
    for _ in range(4):
        stream = router.chat_stream({**ASK, "stream": True})
        with pytest.raises(StreamFailed) as failed:
            list(stream)
        assert failed.value.error.code == "upstream_stream_truncated"
    assert router.states()["a"].kind == "open"
    assert [c.request.url for c in responses.calls] == [url("a")] * 4  # b was never needed: a had started


@responses.activate
def test_a_stream_the_client_leaves_counts_nothing_against_the_upstream():
    clock = FakeClock()
    breaker = Breaker(MemoryCounters(clock), {"a": SPEC, "b": SPEC}, clock=clock)
    responses.post(url("a"), body=sse(*[chunk(content=f"{i} ") for i in range(20)], "[DONE]"),
                   content_type="text/event-stream")
    router = make("a", "b", breaker=breaker)
    for _ in range(10):
        stream = router.chat_stream({**ASK, "stream": True})
        chunks = iter(stream)
        next(chunks)
        stream.close()  # what the reply stream does when its client goes away
    assert router.states()["a"].kind == "closed"


@responses.activate
def test_embeddings_use_the_route_of_their_name_or_the_default_upstream():
    vectors = {"data": [{"index": 0, "embedding": [0.1, 0.2]}], "model": "x", "usage": {"prompt_tokens": 1}}
    responses.post("https://a.test/v1/embeddings", status=503)
    responses.post("https://b.test/v1/embeddings", json=vectors)
    emb = Route("text-embedding-3-small", (Target(client("a"), "text-embedding-3-small"),
                                           Target(client("b"), "text-embedding-3-large")))
    chat = Route("gpt-4o-mini", (Target(client("b"), "gpt-4o-mini"),))
    router = Router({"gpt-4o-mini": chat, "text-embedding-3-small": emb},
                    Breaker(MemoryCounters(), {"a": SPEC, "b": SPEC}), default_model="gpt-4o-mini", deadline=30)
    router.embeddings({"model": "text-embedding-3-small", "input": ["x"]})
    assert json.loads(responses.calls[-1].request.body)["model"] == "text-embedding-3-large"
    router.embeddings({"model": "ada-002", "input": ["x"]})  # no route: the default route's first upstream
    assert responses.calls[-1].request.url == "https://b.test/v1/embeddings"
    assert json.loads(responses.calls[-1].request.body)["model"] == "ada-002"


@responses.activate
def test_moderation_asks_the_default_models_first_upstream():
    responses.post("https://a.test/v1/moderations", json={"results": [{"flagged": True}]})
    assert make("a", "b").moderate("text") is True


def test_a_lone_upstream_without_a_breaker_is_called_as_before():
    class Refusing:
        def __getattr__(self, _name):
            raise AssertionError("the store was used")

    target = Target(client("a"), "gpt-4o-mini")
    router = Router({"gpt-4o-mini": Route("gpt-4o-mini", (target,))},
                    Breaker(Refusing(), {"a": BreakerSpec(enabled=False)}), default_model="gpt-4o-mini")
    with responses.RequestsMock() as mocked:
        mocked.post(url("a"), status=500)
        with pytest.raises(UpstreamError) as raised:
            router.chat(dict(ASK))
    assert raised.value.code == "upstream_error" and raised.value.upstream_status == 500
    assert "sk-a-key" not in repr(router)
