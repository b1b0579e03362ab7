"""Hostile and malformed input through POST /chat: the right 4xx, in the one shape."""
from __future__ import annotations

import json

import pytest


def post(client, body, content_type="application/json", **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/chat", data=data, content_type=content_type, **kw)


def assert_error(resp, status, code=None, param=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    if param is not None:
        assert body["error"]["param"] == param
    assert resp.headers["X-Request-ID"]
    assert b"Traceback" not in resp.data


@pytest.mark.parametrize("body, code, param", [
    ({}, "missing_required", "prompt"),
    ({"prompt": ""}, "empty_value", "prompt"),
    ({"prompt": "   \n\t"}, "empty_value", "prompt"),
    ({"prompt": 5}, "invalid_type", "prompt"),
    ({"prompt": None}, "invalid_type", "prompt"),
    ({"prompt": ["hi"]}, "invalid_type", "prompt"),
    ({"prompt": "hi", "temperature": True}, "invalid_type", "temperature"),
    ({"prompt": "hi", "temperature": "0.5"}, "invalid_type", "temperature"),
    ({"prompt": "hi", "temperature": 2.5}, "invalid_value", "temperature"),
    ({"prompt": "hi", "temperature": -0.1}, "invalid_value", "temperature"),
    ({"prompt": "hi", "top_p": 1.5}, "invalid_value", "top_p"),
    ({"prompt": "hi", "max_tokens": 0}, "invalid_value", "max_tokens"),
    ({"prompt": "hi", "max_tokens": 1.5}, "invalid_type", "max_tokens"),
    ({"prompt": "hi", "max_tokens": "10"}, "invalid_type", "max_tokens"),
    ({"prompt": "hi", "presence_penalty": -3}, "invalid_value", "presence_penalty"),
    ({"prompt": "hi", "frequency_penalty": 2.01}, "invalid_value", "frequency_penalty"),
    ({"prompt": "hi", "stream": "yes"}, "invalid_type", "stream"),
    ({"prompt": "hi", "stream": 1}, "invalid_type", "stream"),
    ({"prompt": "hi", "system": 3}, "invalid_type", "system"),
    ({"prompt": "hi", "model": "gpt-5-secret"}, "model_not_found", "model"),
    ({"prompt": "hi", "api_key": "sk-x"}, "unknown_field", "api_key"),
    ({"prompt": "hi", "base_url": "http://evil"}, "unknown_field", "base_url"),
    ({"prompt": "hi", "conversation_id": "../../etc"}, "invalid_value", "conversation_id"),
    ({"prompt": "a\x00b"}, "invalid_value", "prompt"),
    ({"prompt": "\ud800"}, "invalid_value", "prompt"),
    ({"prompt": "hi", "system": "x\x00"}, "invalid_value", "system"),
])
def test_schema_violations_are_400_with_the_field_named(client, body, code, param):
    assert_error(post(client, body), 400, code, param)


def test_the_range_message_names_both_ends(client):
    resp = post(client, {"prompt": "hi", "temperature": 3})
    assert resp.get_json()["error"]["message"] == "temperature must be between 0 and 2"
    assert resp.get_json()["error"]["type"] == "invalid_request_error"


def test_prompt_over_max_prompt_chars_is_refused(make_app):
    client = make_app(MAX_PROMPT_CHARS=10).test_client()
    assert_error(post(client, {"prompt": "x" * 11}), 400, "too_long", "prompt")
    assert post(client, {"prompt": "x" * 10}).status_code == 200


@pytest.mark.parametrize("raw, code", [
    (b"{", "invalid_json"),
    (b"{'prompt': 'hi'}", "invalid_json"),
    (b'{"prompt": "hi"} trailing', "invalid_json"),
    (b"", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'"just a string"', "invalid_json"),
    (b"null", "invalid_json"),
    (b'{"prompt": "\xff\xfe"}', "invalid_json"),
    (b'{"prompt": "hi", "temperature": NaN}', "invalid_json"),
    (b'{"prompt": "hi", "temperature": Infinity}', "invalid_json"),
    (b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}", "invalid_json"),
    (b"[" * 100000 + b"]" * 100000, "invalid_json"),
    (b'{"a":' * 50000 + b"1" + b"}" * 50000, "invalid_json"),
])
def test_malformed_json_is_400(client, raw, code):
    assert_error(post(client, raw), 400, code)


def test_huge_exponent_is_a_range_error_not_a_crash(client):
    assert_error(post(client, b'{"prompt": "hi", "temperature": 1e400}'), 400, "invalid_value", "temperature")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data", "", "application/json; charset=latin-1"])
def test_non_json_content_type_is_415(client, content_type):
    assert_error(post(client, {"prompt": "hi"}, content_type=content_type), 415, "unsupported_media_type")


def test_json_with_charset_and_vendor_types_are_accepted(client):
    assert post(client, {"prompt": "hi"}, content_type="application/json; charset=utf-8").status_code == 200
    assert post(client, {"prompt": "hi"}, content_type="application/vnd.api+json").status_code == 200


def test_body_over_max_content_length_is_413(client):
    assert_error(post(client, b'{"prompt": "' + b"x" * (10 * 1024 * 1024) + b'"}'), 413, "request_too_large")


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_is_405_in_the_error_shape(client, method):
    resp = getattr(client, method)("/chat")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


def test_unknown_route_is_404_in_the_error_shape(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.post("/v2/chat"), 404, "not_found")


def test_unknown_conversation_is_404(client):
    assert_error(post(client, {"prompt": "hi", "conversation_id": "abc123"}), 404, "conversation_not_found")
