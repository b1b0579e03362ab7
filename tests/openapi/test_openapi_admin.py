"""The admin operations in /openapi.json: listed only with ADMIN_TOKEN, with their bodies, and real answers conform."""
from __future__ import annotations

import re

import jsonschema_rs
import pytest
from schemathesis.specs.openapi import definitions

from app.openapi import document as openapi

TOKEN = "admin-token-" + "d" * 20
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_OPS = {("post", "/admin/keys"), ("get", "/admin/keys"), ("get", "/admin/keys/{key_id}"),
             ("patch", "/admin/keys/{key_id}"), ("post", "/admin/keys/{key_id}/rotate"),
             ("delete", "/admin/keys/{key_id}"), ("get", "/admin/audit")}


@pytest.fixture
def admin_app(make_app):
    return make_app(AUTH_MODE="keys", ADMIN_TOKEN=TOKEN)


@pytest.fixture
def doc(admin_app):
    return admin_app.test_client().get("/openapi.json").json


def conforms(doc, model, instance):
    root = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
    return [str(e) for e in jsonschema_rs.Draft202012Validator(root).iter_errors(instance)]


def test_the_admin_document_is_valid_and_lists_every_admin_route(admin_app, doc):
    assert [str(e) for e in jsonschema_rs.Draft202012Validator(definitions.OPENAPI_31).iter_errors(doc)] == []
    documented = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for p, item in doc["paths"].items() for m in item}
    assert documented == openapi.routed_operations(admin_app)
    assert {(m, p) for p, item in doc["paths"].items() for m in item if p.startswith("/admin")} == ADMIN_OPS


def test_admin_operations_need_the_admin_scheme_and_name_their_bodies(doc):
    assert doc["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path.startswith("/admin"):
                assert op["security"] == [{"adminToken": []}] and op["tags"] == ["admin"]
                assert {"401", "429"} <= set(op["responses"])
            else:
                assert {"adminToken": []} not in op["security"]
    bodies = {(m, p): op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
              for p, item in doc["paths"].items() for m, op in item.items() if "requestBody" in op}
    assert bodies[("post", "/admin/keys")] == "KeyCreateRequest"
    assert bodies[("patch", "/admin/keys/{key_id}")] == "KeyUpdateRequest"
    assert bodies[("post", "/admin/keys/{key_id}/rotate")] == "KeyRotateRequest"
    fields = set(doc["components"]["schemas"]["KeyCreateRequest"]["properties"])
    assert fields == {"name", "rate_limit", "token_rate_limit", "daily_token_quota", "max_streams", "budget_usd_day",
                      "budget_usd_month", "expires_at", "metadata"}
    assert "409" in doc["paths"]["/admin/keys/{key_id}"]["patch"]["responses"]


def test_real_admin_answers_conform_to_the_document(admin_app, doc):
    client = admin_app.test_client()
    made = client.post("/admin/keys", json={"name": "a", "budget_usd_day": 2, "metadata": {"user": "1"}},
                       headers=ADMIN)
    assert conforms(doc, "AdminKeyCreated", made.json) == []
    key_id = made.json["id"]
    client.post("/chat", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {made.json['key']}"})
    checks = [("AdminKeyList", client.get("/admin/keys", headers=ADMIN)),
              ("AdminKeyDetail", client.get(f"/admin/keys/{key_id}", headers=ADMIN)),
              ("AdminKey", client.patch(f"/admin/keys/{key_id}", json={"max_streams": 2}, headers=ADMIN)),
              ("AdminKeyCreated", client.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN)),
              ("AdminKey", client.delete(f"/admin/keys/{key_id}", headers=ADMIN)),
              ("AuditList", client.get("/admin/audit", headers=ADMIN))]
    for model, resp in checks:
        assert resp.status_code == 200 and conforms(doc, model, resp.json) == [], model
    conflict = client.patch(f"/admin/keys/{key_id}", json={"max_streams": 1}, headers=ADMIN)
    assert conflict.status_code == 409 and conforms(doc, "ErrorBody", conflict.json) == []
