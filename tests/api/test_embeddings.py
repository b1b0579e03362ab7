"""POST /v1/embeddings: allowed models, the guard on inputs, limits, the ledger, the upstream and the offline model."""
from __future__ import annotations

import base64
import json
import math
import struct

import pytest
import responses
from conftest import UPSTREAM

from app.upstream.offline_embeddings import vector

URL = UPSTREAM + "/embeddings"
MODEL = "text-embedding-3-small"


def embed(client, **body):
    return client.post("/v1/embeddings", json={"model": MODEL, **body})


def upstream_body(count: int, dims: int = 3, usage: int = 7) -> dict:
    return {"object": "list", "model": MODEL, "usage": {"prompt_tokens": usage, "total_tokens": usage},
            "data": [{"object": "embedding", "index": i, "embedding": [0.1 * (i + 1)] * dims} for i in range(count)]}


def test_the_offline_model_gives_deterministic_unit_vectors(client):
    one = embed(client, input=["alpha", "beta"], dimensions=16).get_json()
    again = embed(client, input="alpha", dimensions=16).get_json()
    assert [d["index"] for d in one["data"]] == [0, 1] and one["object"] == "list" and one["model"] == MODEL
    first = one["data"][0]["embedding"]
    assert len(first) == 16 and first == again["data"][0]["embedding"] != one["data"][1]["embedding"]
    assert math.isclose(math.sqrt(sum(x * x for x in first)), 1.0, rel_tol=1e-9)
    assert one["usage"]["prompt_tokens"] == one["usage"]["total_tokens"] > 0 and one["usage"]["cost_usd"] >= 0


def test_base64_is_little_endian_float32(client):
    floats = embed(client, input="alpha", dimensions=8).get_json()["data"][0]["embedding"]
    packed = embed(client, input="alpha", dimensions=8, encoding_format="base64").get_json()["data"][0]["embedding"]
    unpacked = struct.unpack("<8f", base64.b64decode(packed))
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(unpacked, floats))


def test_the_default_size_follows_the_model(make_app):
    client = make_app(ALLOWED_EMBEDDING_MODELS="text-embedding-3-small,text-embedding-3-large").test_client()
    assert len(embed(client, input="x").get_json()["data"][0]["embedding"]) == 1536
    large = client.post("/v1/embeddings", json={"model": "text-embedding-3-large", "input": "x"}).get_json()
    assert len(large["data"][0]["embedding"]) == 3072
    assert vector("m", "x", 4) == vector("m", "x", 4) != vector("m", "y", 4)


@responses.activate
def test_inputs_are_guarded_then_sent_upstream_with_the_options(remote_app):
    client = remote_app.test_client()
    responses.post(URL, json=upstream_body(2))
    resp = embed(client, input=["card 4111 1111 1111 1111", "plain"], dimensions=3, encoding_format="float",
                 user="u-1")
    assert resp.status_code == 200, resp.get_json()
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {"model": MODEL, "input": ["card [CARD]", "plain"], "dimensions": 3, "encoding_format": "float",
                    "user": "u-1"}
    assert responses.calls[0].request.url == URL
    assert resp.get_json()["data"][1]["embedding"] == [0.2, 0.2, 0.2] and resp.get_json()["usage"]["total_tokens"] == 7


@responses.activate
def test_a_blocked_input_is_refused_before_it_leaves(remote):
    responses.post(URL, json=upstream_body(1))
    resp = embed(remote, input=["fine", "you motherfucker"])
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "prompt_blocked"
    assert len(responses.calls) == 0


@pytest.mark.parametrize("body, param, code", [
    ({"model": "gpt-4o-mini", "input": "x"}, "model", "model_not_found"),
    ({"input": [1, 2, 3]}, "input", "unsupported_value"),
    ({"input": [[1, 2], [3]]}, "input", "unsupported_value"),
    ({"input": []}, "input", "invalid_value"),
    ({"input": ""}, "input", "empty_value"),
    ({"input": ["ok", "  "]}, "input.1", "empty_value"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format", "invalid_value"),
    ({"input": "x", "dimensions": 0}, "dimensions", "invalid_value"),
    ({"input": "x", "api_base": "http://evil"}, "api_base", "unknown_field"),
    ({"input": "x" * 40_000}, "input", "too_long"),
    ({"input": ["x"] * 2049}, "input", "too_many_inputs"),
])
@responses.activate
def test_bad_requests_are_refused_naming_the_field(remote, body, param, code):
    responses.post(URL, json=upstream_body(1))
    error = remote.post("/v1/embeddings", json={"model": MODEL, **body}).get_json()["error"]
    assert (error["param"], error["code"]) == (param, code), error
    assert len(responses.calls) == 0


@pytest.mark.parametrize("status, upstream, code", [
    (500, {"error": {"message": "secret detail"}}, "upstream_error"),
    (401, {}, "upstream_misconfigured"),
    (200, {"data": [{"index": 0}]}, "bad_upstream_response"),
    (200, {"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [0.2]}]}, "bad_upstream_response"),
    (200, {"data": [{"index": 0, "embedding": ["x"]}]}, "bad_upstream_response"),
])
@responses.activate
def test_upstream_failures_map_onto_the_one_error_shape(remote, sleeps, status, upstream, code):
    responses.post(URL, json=upstream, status=status)
    resp = embed(remote, input="x")
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == code
    assert "secret detail" not in resp.get_data(as_text=True)


def test_inputs_count_toward_the_token_limit_and_reach_the_ledger(make_app):
    app = make_app(TOKEN_RATE_LIMIT="40/minute")
    client = app.test_client()
    assert embed(client, input="a few words").status_code == 200
    refused = embed(client, input="x" * 200)
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "token_limit_exceeded"
    [row] = app.extensions["chatgate"].ledger.totals("ip:127.0.0.1", 1)
    assert row["requests"] == 1 and row["model"] == MODEL and row["completion_tokens"] == 0  # the refusal cost nothing


@pytest.mark.parametrize("count, dims, encoding, ok", [
    (1000, 1536, "float", True),       # a usual batch fits
    (2048, 1536, "base64", True),      # the most inputs OpenAI takes, encoded compactly
    (2048, 1536, "float", False),      # the same as JSON floats could be about 66 MB
    (100, 8192, None, True),
    (2048, 8192, "base64", False),
])
@responses.activate
def test_a_reply_that_could_outgrow_the_read_bound_is_refused_up_front(remote, count, dims, encoding, ok):
    responses.post(URL, json=upstream_body(count, 1))
    body = {"input": [f"text {i}" for i in range(count)], "dimensions": dims}
    if encoding:
        body["encoding_format"] = encoding
    resp = embed(remote, **body)
    if ok:
        assert resp.status_code == 200, resp.get_json()
    else:
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "reply_too_large"
        assert "base64" in resp.get_json()["error"]["message"] and len(responses.calls) == 0
