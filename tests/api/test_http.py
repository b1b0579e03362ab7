"""Request ids, security headers, HSTS and proxy trust."""
from __future__ import annotations

import pytest


def test_every_response_has_a_request_id(client):
    for resp in (client.get("/healthz"), client.get("/missing"), client.post("/chat", data="x")):
        assert len(resp.headers["X-Request-ID"]) >= 16


def test_a_sane_client_request_id_is_kept(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123.x"}).headers["X-Request-ID"] == "abc-123.x"


@pytest.mark.parametrize("hostile", ["a" * 65, "<script>", "x y", "id;Set-Cookie: a=b", "../..", "é", ""])
def test_a_hostile_request_id_is_replaced(client, hostile):
    resp = client.get("/healthz", headers={"X-Request-ID": hostile})
    assert resp.headers["X-Request-ID"] != hostile
    assert resp.status_code == 200


def test_security_headers(client):
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in headers


def test_hsts_only_over_tls(client):
    assert "max-age=" in client.get("/healthz", base_url="https://localhost").headers["Strict-Transport-Security"]


def test_forwarded_proto_is_ignored_without_trusted_hops(client):
    resp = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in resp.headers


def test_forwarded_proto_is_trusted_from_configured_hops(make_app):
    client = make_app(TRUSTED_PROXY_HOPS=1).test_client()
    resp = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in resp.headers


def test_health_and_readiness(client, make_app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready",
                                                "checks": {"upstream": "offline", "database": "ok"}}
    from cryptography.fernet import Fernet

    prod = make_app(APP_ENV="production", AUTH_MODE="open", DB_AUTO_MIGRATE="true", DATABASE_URL="sqlite://",
                    DATA_ENCRYPTION_KEY=Fernet.generate_key().decode()).test_client().get("/readyz")
    assert prod.status_code == 503 and prod.get_json()["checks"]["upstream"] == "missing"
    remote = make_app(OPENAI_API_KEY="sk-test-0123456789").test_client().get("/readyz")
    assert remote.get_json()["checks"]["upstream"] == "configured"


def test_an_unexpected_exception_is_a_json_500_without_traceback(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail sk-abcdefghijklmnop")

    resp = app.test_client().get("/boom")
    assert resp.status_code == 500
    assert resp.get_json() == {"error": {"message": "internal error", "type": "api_error",
                                         "param": None, "code": "internal_error"}}


# --- CORS


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


# Headers the official OpenAI Node SDK sends from a browser (X-Stainless-*), and what a page may read back.
SDK_HEADERS = ("authorization, content-type, accept, x-stainless-lang, x-stainless-package-version, x-stainless-os, "
               + "x-stainless-arch, x-stainless-runtime, x-stainless-runtime-version, x-stainless-retry-count, "
               + "x-stainless-timeout, openai-organization, openai-project, idempotency-key, cache-control")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/chat"])
def test_a_preflight_allows_every_header_the_browser_sdks_send(make_app, path):
    client = make_app(CORS_ORIGINS="https://app.example.com").test_client()
    pre = client.options(path, headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": SDK_HEADERS})
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = {h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert {h.strip() for h in SDK_HEADERS.split(",")} <= allowed
    odd = client.options(path, headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "x-forwarded-for"})
    assert "x-forwarded-for" not in odd.headers.get("Access-Control-Allow-Headers", "").lower()


def test_a_page_may_read_retry_advice_limits_and_the_request_id(make_app):
    client = make_app(CORS_ORIGINS="https://app.example.com", RATE_LIMIT="5/minute").test_client()
    resp = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                       headers={"Origin": "https://app.example.com"})
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "retry-after", "x-should-retry", "ratelimit-limit", "ratelimit-remaining",
            "ratelimit-reset"} <= exposed
