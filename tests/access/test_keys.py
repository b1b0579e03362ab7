"""Client keys: creation, storage as keyed hashes, every refusal, on every protected route."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.storage.tables import ClientKeyRow


@pytest.fixture
def keyed(make_app):
    """An app in keys mode with one active key."""
    app = make_app(AUTH_MODE="keys")
    with app.app_context():
        key = app.extensions["chatgate"].keyring.create("alice")
    return app, key


def auth(key):
    return {"Authorization": f"Bearer {key}"}


ROUTES = [
    ("post", "/chat", {"json": {"prompt": "Hello"}}),
    ("post", "/v1/chat/completions", {"json": {"model": "gpt-4o-mini",
                                               "messages": [{"role": "user", "content": "Hello"}]}}),
    ("get", "/conversations", {}),
    ("get", "/conversations/abc", {}),
    ("delete", "/conversations/abc", {}),
    ("get", "/usage", {}),
]


@pytest.mark.parametrize("method, path, kw", ROUTES)
@pytest.mark.parametrize("header, code", [
    (None, "missing_api_key"),
    ("Bearer", "invalid_api_key"),
    ("Basic dXNlcjpwYXNz", "invalid_api_key"),
    ("Bearer cg-" + "x" * 43, "invalid_api_key"),
    ("Bearer sk-not-ours-0123456789", "invalid_api_key"),
    ("Bearer " + "a" * 500, "invalid_api_key"),
])
def test_missing_malformed_or_unknown_keys_are_401(keyed, method, path, kw, header, code):
    app, _key = keyed
    headers = {"Authorization": header} if header else {}
    resp = getattr(app.test_client(), method)(path, headers=headers, **kw)
    assert resp.status_code == 401
    body = resp.get_json()
    assert body["error"]["code"] == code and body["error"]["type"] == "authentication_error"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    if header and " " in header:
        assert header.split(" ", 1)[1] not in resp.get_data(as_text=True)


@pytest.mark.parametrize("method, path, kw", ROUTES)
def test_a_valid_key_gets_through(keyed, method, path, kw):
    app, key = keyed
    resp = getattr(app.test_client(), method)(path, headers=auth(key), **kw)
    assert resp.status_code in (200, 404)  # 404: the conversation "abc" does not exist
    if resp.status_code == 404:
        assert resp.get_json()["error"]["code"] == "conversation_not_found"


def test_a_revoked_key_is_401(keyed):
    app, key = keyed
    client = app.test_client()
    assert client.post("/chat", json={"prompt": "hi"}, headers=auth(key)).status_code == 200
    with app.app_context():
        assert app.extensions["chatgate"].keyring.revoke("alice") is True
        assert app.extensions["chatgate"].keyring.revoke("alice") is False
    resp = client.post("/chat", json={"prompt": "hi"}, headers=auth(key))
    assert resp.status_code == 401 and key not in resp.get_data(as_text=True)


def test_keys_are_stored_as_keyed_hashes_only(keyed):
    app, key = keyed
    with app.app_context():
        with app.extensions["chatgate"].database.session() as session:
            row = session.scalar(select(ClientKeyRow))
            assert key.encode() not in row.digest and len(row.digest) == 32
            assert row.prefix == key[:10]
        raw = b"".join(bytes(str(v), "utf-8") if not isinstance(v, bytes) else v
                       for v in vars(row).values() if not str(v).startswith("<"))
    assert key.encode() not in raw


def test_public_routes_need_no_key(keyed):
    app, _ = keyed
    client = app.test_client()
    for path in ("/healthz", "/readyz"):
        assert client.get(path).status_code == 200
    assert client.get("/v1/models").status_code == 401  # as OpenAI's: the SDKs send the key anyway


def test_each_key_sees_only_its_own_conversations(make_app):
    app = make_app(AUTH_MODE="keys")
    with app.app_context():
        alice, bob = app.extensions["chatgate"].keyring.create("alice"), app.extensions["chatgate"].keyring.create("bob")
    client = app.test_client()
    conv = client.post("/chat", json={"prompt": "hi"}, headers=auth(alice)).get_json()["conversation_id"]
    assert client.get(f"/conversations/{conv}", headers=auth(alice)).status_code == 200
    assert client.get(f"/conversations/{conv}", headers=auth(bob)).status_code == 404
    resp = client.post("/chat", json={"prompt": "hi", "conversation_id": conv}, headers=auth(bob))
    assert resp.status_code == 404
    assert client.get("/conversations", headers=auth(bob)).get_json()["data"] == []


def test_open_mode_scopes_conversations_and_usage_to_the_client_address(client):
    one, other = {"REMOTE_ADDR": "192.0.2.1"}, {"REMOTE_ADDR": "192.0.2.2"}
    conv = client.post("/chat", json={"prompt": "my diagnosis is private"}, environ_base=one).get_json()
    conv = conv["conversation_id"]
    assert client.get(f"/conversations/{conv}", environ_base=one).status_code == 200
    assert client.get(f"/conversations/{conv}", environ_base=other).status_code == 404
    assert client.get("/conversations", environ_base=other).get_json()["data"] == []
    assert client.post("/chat", json={"prompt": "hi", "conversation_id": conv}, environ_base=other).status_code == 404
    assert client.delete(f"/conversations/{conv}", environ_base=other).status_code == 404
    assert client.get("/usage", environ_base=other).get_json()["data"] == []
    assert client.get("/usage", environ_base=one).get_json()["data"][0]["requests"] == 1


def test_open_mode_gives_each_address_its_own_daily_quota(make_app):
    client = make_app(DAILY_TOKEN_QUOTA=300).test_client()

    def ask(address):
        return client.post("/chat", json={"prompt": "hi", "max_tokens": 200}, environ_base={"REMOTE_ADDR": address})

    answers = [ask("192.0.2.1") for _ in range(10)]
    codes = [resp.status_code for resp in answers]
    assert codes[0] == 200 and 429 in codes
    assert answers[codes.index(429)].get_json()["error"]["code"] == "quota_exceeded"
    assert ask("192.0.2.2").status_code == 200  # another address has a quota of its own


def test_duplicate_and_bad_names_are_refused(keyed):
    from app.errors import InvalidRequest

    app, _ = keyed
    with app.app_context():
        with pytest.raises(InvalidRequest, match="exists already"):
            app.extensions["chatgate"].keyring.create("alice")
        with pytest.raises(InvalidRequest):
            app.extensions["chatgate"].keyring.create("bad name")


def test_cli_create_list_revoke(make_app):
    app = make_app(AUTH_MODE="keys")
    runner = app.test_cli_runner(mix_stderr=False) if "mix_stderr" in app.test_cli_runner.__code__.co_varnames \
        else app.test_cli_runner()
    out = runner.invoke(args=["keys", "create", "ci-bot", "--rate-limit", "5/minute", "--daily-token-quota", "100000"])
    assert out.exit_code == 0, out.output
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("cg-") and len(key) == 46
    listed = runner.invoke(args=["keys", "list"]).stdout
    assert "ci-bot" in listed and key[:10] in listed and key not in listed and "rate=5/minute" in listed
    assert app.test_client().post("/chat", json={"prompt": "hi"}, headers=auth(key)).status_code == 200
    assert runner.invoke(args=["keys", "revoke", "ci-bot"]).exit_code == 0
    assert "revoked" in runner.invoke(args=["keys", "list"]).stdout
    assert runner.invoke(args=["keys", "revoke", "ci-bot"]).exit_code != 0
    assert runner.invoke(args=["keys", "create", "x", "--rate-limit", "lots"]).exit_code != 0


def test_open_mode_warns_at_start_up():
    from config import load_config

    banner = "\n".join(load_config({"APP_ENV": "development"}).banner("http://x"))
    assert "AUTH_MODE=open" in banner


def test_the_generated_development_hash_secret_is_named_for_what_it_is(tmp_path, caplog):
    import logging

    from app.access.keys import hash_secret
    from config import load_config

    with caplog.at_level(logging.WARNING):
        secret = hash_secret(load_config({"APP_ENV": "development"}), str(tmp_path))
    assert secret and (tmp_path / "key-hash.secret").exists()
    messages = [r.getMessage() for r in caplog.records]
    assert any("generated a development KEY_HASH_SECRET" in m for m in messages)
    assert not any("DATA_ENCRYPTION_KEY" in m for m in messages)
