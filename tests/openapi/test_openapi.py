"""GET /openapi.json: valid OpenAPI 3.1, complete, and in step with validation and real responses."""
from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest
from flask import Flask
from schemathesis.specs.openapi import definitions

from app.api import health, schemas
from app.openapi import document as openapi
from app.openapi.operations import OPERATIONS
from app.upstream.sse_codec import iter_sse


@pytest.fixture
def doc(client):
    """The document the testing app serves."""
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return resp.json


def conforms(doc: dict, ref: str, instance) -> list[str]:
    """Every way ``instance`` breaks the schema at ``ref`` (a $ref into the document)."""
    root = {"$ref": ref, "components": doc["components"]}
    validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    return [str(err) for err in validator.iter_errors(instance)]


def response_ref(doc: dict, path: str, method: str, status: int, media_type: str = "application/json") -> str:
    """The $ref of the schema documented for one response."""
    resp = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in resp:
        resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    return resp["content"][media_type]["schema"]["$ref"]


def test_the_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    errors = [str(e) for e in jsonschema_rs.Draft202012Validator(definitions.OPENAPI_31).iter_errors(doc)]
    assert errors == []


def test_every_route_is_documented_and_nothing_else(app, doc):
    documented = {(method, re.sub(r"\{[^}]+\}", "{}", path)) for path, item in doc["paths"].items() for method in item}
    assert documented == openapi.routed_operations(app)
    assert {op["operationId"] for item in doc["paths"].values() for op in item.values()} <= {
        op.operation_id for op in OPERATIONS}


def test_an_operation_is_listed_only_while_a_route_serves_it(app):
    bare = Flask("bare")
    bare.config["SETTINGS"] = app.config["SETTINGS"]
    bare.register_blueprint(health.bp)
    doc = openapi.build_document(bare)
    assert list(doc["paths"]) == ["/healthz", "/readyz"]
    assert [t["name"] for t in doc["tags"]] == ["health"]


def test_request_bodies_are_the_validation_models(doc):
    chat = doc["components"]["schemas"]["ChatRequest"]
    model = schemas.ChatRequest.model_json_schema()
    assert set(chat["properties"]) == set(model["properties"])
    assert chat["required"] == model["required"] == ["prompt"]
    assert chat["additionalProperties"] is False
    body = doc["paths"]["/chat"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ChatRequest"}


def test_settings_shape_the_limits(make_app):
    app = make_app(MAX_PROMPT_CHARS=100, OPENAI_MODEL="m-one", ALLOWED_MODELS="m-one,m-two", AUTH_MODE="keys")
    doc = app.test_client().get("/openapi.json").json
    chat = doc["components"]["schemas"]["ChatRequest"]["properties"]
    assert chat["prompt"]["maxLength"] == 100
    assert [b["enum"] for b in chat["model"]["anyOf"] if b.get("type") == "string"] == [["m-one", "m-two"]]
    # In keys mode the API needs a bearer key; the probes and pages never do.
    assert doc["paths"]["/chat"]["post"]["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == [{}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerAuth"][
            "description"]}


def test_open_mode_requires_no_key(doc):
    assert all(op["security"] == [{}] for item in doc["paths"].values() for op in item.values())
    assert "AUTH_MODE=open" in doc["components"]["securitySchemes"]["bearerAuth"]["description"]


@pytest.mark.parametrize("prompt", ["hello", " x ", "a\nb", "", "   ", "\t\n", "\x1c\x1f", "\u3000\u2028",
                                    "\x85", "\ufeff", "nul\x00here", "é" * 5])
def test_the_prompt_pattern_says_what_the_server_accepts(client, doc, prompt):
    schema = doc["components"]["schemas"]["ChatRequest"]["properties"]["prompt"]
    documented_ok = re.search(schema["pattern"], prompt) is not None and len(prompt) <= schema["maxLength"]
    resp = client.post("/chat", json={"prompt": prompt})
    assert (resp.status_code == 200) == documented_ok, resp.json


def test_every_str_isspace_character_is_in_the_blank_set():
    spaces = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert spaces == openapi.PY_SPACES


def test_body_examples_pass_validation(client, doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, example in media.get("examples", {}).items():
                assert conforms(doc, media["schema"]["$ref"], example["value"]) == [], (path, name)
                if "conversation_id" not in example["value"]:
                    resp = client.open(path, method=method.upper(), json=example["value"])
                    assert resp.status_code == 200, (path, name, resp.json)


def test_every_error_response_is_the_one_error_shape(doc):
    for name, resp in doc["components"]["responses"].items():
        media = resp["content"]["application/json"]
        assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert conforms(doc, "#/components/schemas/ErrorBody", media["example"]) == [], name
        assert resp["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
    assert "Retry-After" in doc["components"]["responses"]["RateLimited"]["headers"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")) and "$ref" in resp:
                    assert resp["$ref"].startswith("#/components/responses/"), (path, method, status)


def test_real_responses_match_the_documented_schemas(client, doc):
    calls = [
        ("post", "/chat", {"prompt": "echo: mail jane.doe@example.com"}, 200),
        ("post", "/chat", {"prompt": "Hi", "temperature": 3}, 400),
        ("post", "/chat", {"prompt": "Hi", "conversation_id": "nope"}, 404),
        ("get", "/healthz", None, 200),
        ("get", "/readyz", None, 200),
    ]
    optional = [
        ("get", "/conversations", None, 200), ("get", "/usage", None, 200),
        ("get", "/conversations/{conversation_id}", None, 404), ("get", "/v1/models", None, 200),
        ("post", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]},
         200),
    ]
    calls += [c for c in optional if c[1] in doc["paths"]]
    for method, path, body, status in calls:
        resp = client.open(path.replace("{conversation_id}", "missing"), method=method.upper(), json=body)
        assert resp.status_code == status, (path, resp.json)
        assert conforms(doc, response_ref(doc, path, method, status), resp.json) == [], (path, resp.json)
        assert resp.headers["X-Request-ID"]


def test_stream_events_match_the_documented_event_schema(client, doc):
    resp = client.post("/chat", json={"prompt": "echo: mail jane.doe@example.com", "stream": True})
    schema = doc["paths"]["/chat"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    data = schema["properties"]["data"]["anyOf"]
    one_of = data[1]["contentSchema"]["oneOf"]
    events = [e.data for e in iter_sse([resp.data])]
    assert events[-1] == "[DONE]" == data[0]["const"]
    for raw in events[:-1]:
        matches = [ref["$ref"] for ref in one_of if not conforms(doc, ref["$ref"], json.loads(raw))]
        assert len(matches) == 1, raw


def test_models_still_being_written_are_described_loosely():
    assert openapi.model_named("NoSuchModelYet") is None
    assert openapi._ref_or_object("NoSuchModelYet") == {"type": "object"}
    assert openapi.model_named("ChatRequest") is schemas.ChatRequest


def test_the_document_is_built_once_per_app(app, client):
    first = client.get("/openapi.json")
    assert app.extensions["chatgate.openapi"] is not None
    assert client.get("/openapi.json").data == first.data
    assert first.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_chat_operations_describe_the_response_cache(make_app, doc):
    for path, extra in (("/chat", ["Idempotency-Key"]), ("/v1/chat/completions", []), ("/v1/responses", [])):
        op = doc["paths"][path]["post"]
        assert sorted(p["name"] for p in op["parameters"] if p["in"] == "header") == ["Cache-Control", *extra], path
        assert set(op["responses"]["200"]["headers"]) == {"X-Request-ID", "X-Chatgate-Upstream", "X-Cache", "Age"}, path
    assert "parameters" not in doc["paths"]["/v1/embeddings"]["post"]
    assert doc["components"]["headers"]["X-Cache"]["schema"]["enum"] == ["HIT", "MISS", "BYPASS"]
    client = make_app(CACHE_TTL="1h").test_client()
    for _ in range(2):
        resp = client.post("/chat", json={"prompt": "Hello"}, headers={"Cache-Control": "max-age=60"})
    assert resp.headers["X-Cache"] == "HIT" and resp.headers["Age"].isdigit()
    usage = client.get("/usage").json["data"]
    assert conforms(doc, "#/components/schemas/UsageReport", {"days": 30, "data": usage}) == []
    assert usage[0]["cached"] == 1
