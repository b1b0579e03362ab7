"""Encryption at rest: keys, the development key file, rotation, and no plaintext in the tables."""
from __future__ import annotations

import glob
import os
import stat
import threading

import pytest
from cryptography.fernet import Fernet
from dbfixtures import identify_clients, raw_rows

from app.core.turns import ChatTurns
from app.storage.crypto import Cipher, KeyMissing, NoCipher, Undecryptable, development_key, load_cipher
from config import ConfigError, load_config

PROMPT = "my locker code is PLAINTEXT-PROMPT-4711"
REPLY = "noted: PLAINTEXT-REPLY-0815"
SYSTEM = "You are PLAINTEXT-SYSTEM-2342."
PLAIN = (b"PLAINTEXT-PROMPT", b"PLAINTEXT-REPLY", b"PLAINTEXT-SYSTEM")
HASH_SECRET = "h" * 40  # production also needs the client-key hashing secret


def key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode("ascii")


def test_the_first_key_encrypts_and_every_key_decrypts():
    old, new = key(), key()
    legacy = Cipher([old]).encrypt("hello")
    both = Cipher([new, old])
    assert both.decrypt(legacy) == "hello"
    token = both.encrypt("héllo ✓")
    assert Cipher([new]).decrypt(token) == "héllo ✓"
    with pytest.raises(Undecryptable):
        Cipher([old]).decrypt(token)
    assert Cipher([new]).decrypt(both.rotate(legacy)) == "hello"


@pytest.mark.parametrize("token", [b"", b"garbage", b"gAAAAAB" + b"A" * 80])
def test_a_token_no_key_opens_is_a_clear_error(token):
    with pytest.raises(Undecryptable) as err:
        Cipher([key()]).decrypt(token)
    assert err.value.status == 503 and err.value.code == "undecryptable"
    assert "DATA_ENCRYPTION_KEY" in err.value.message
    with pytest.raises(Undecryptable):
        Cipher([key()]).rotate(token)


@pytest.mark.parametrize("raw", ["not-a-key", "abc,def", key()[:-2], key() + ",short", "é" * 44])
def test_a_malformed_key_is_one_config_line_that_does_not_echo_it(raw):
    with pytest.raises(ConfigError) as err:
        load_config({"APP_ENV": "testing", "DATA_ENCRYPTION_KEY": raw})
    message = str(err.value)
    assert message.startswith("DATA_ENCRYPTION_KEY: ") and "\n" not in message
    assert all(part not in message for part in raw.split(",") if len(part) > 4)


def test_the_key_never_shows_in_a_repr():
    secret = key()
    cfg = load_config({"APP_ENV": "testing", "DATA_ENCRYPTION_KEY": f" {secret} , {key()}"})
    for text in (repr(cfg), repr(cfg.as_mapping()), str(cfg.DATA_ENCRYPTION_KEY), repr(load_cipher(cfg, "/nx"))):
        assert secret not in text
    assert load_cipher(cfg, "/nx").key_count == 2


def test_production_refuses_to_serve_without_a_key():
    prod = load_config({"APP_ENV": "production", "OPENAI_API_KEY": "sk-test-0123456789abcdef",
                        "KEY_HASH_SECRET": HASH_SECRET})
    with pytest.raises(ConfigError, match=r"^DATA_ENCRYPTION_KEY: production needs a key") as err:
        prod.check_serving()
    assert "\n" not in str(err.value)
    load_config({"APP_ENV": "production", "OPENAI_API_KEY": "sk-test-0123456789abcdef",
                 "KEY_HASH_SECRET": HASH_SECRET, "DATA_ENCRYPTION_KEY": key()}).check_serving()
    cipher = load_cipher(prod, "/nonexistent")
    assert isinstance(cipher, NoCipher) and repr(cipher) == "<NoCipher>"
    with pytest.raises(KeyMissing):
        cipher.encrypt("x")


def test_testing_gets_a_fresh_key_per_app():
    cfg = load_config({"APP_ENV": "testing"})
    a, b = load_cipher(cfg, "/nonexistent"), load_cipher(cfg, "/nonexistent")
    with pytest.raises(Undecryptable):
        b.decrypt(a.encrypt("x"))


def test_development_generates_one_private_key_and_reuses_it(tmp_path):
    cfg = load_config({"APP_ENV": "development"})
    first = load_cipher(cfg, str(tmp_path / "instance"))
    path = tmp_path / "instance" / "data-encryption.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_cipher(cfg, str(tmp_path / "instance")).decrypt(first.encrypt("kept")) == "kept"


def test_workers_starting_together_agree_on_one_development_key(tmp_path):
    path = tmp_path / "k" / "data-encryption.key"
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(development_key(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert os.listdir(path.parent) == ["data-encryption.key"]


def test_a_damaged_development_key_file_is_a_config_error(tmp_path):
    path = tmp_path / "data-encryption.key"
    path.write_text("not a key")
    with pytest.raises(ConfigError, match=r"^DATA_ENCRYPTION_KEY: unset, and the development key file"):
        development_key(path)


# --- against real databases


def seed(app) -> str:
    """One conversation holding the recognisable texts; returns its id."""
    store = app.extensions["chatgate"].conversations
    conv = store.open("alice", None, SYSTEM)
    store.append_turn(conv, PROMPT, REPLY, model="gpt-4o-mini", finish_reason="stop", filter_action="none")
    return conv.id


def test_no_plaintext_reaches_the_database(db_app, database_url):
    app = db_app()
    seed(app)
    rows = raw_rows(app, "SELECT content FROM messages") + raw_rows(app, "SELECT system FROM conversations")
    assert len(rows) == 3
    for (value,) in rows:
        assert bytes(value).startswith(b"gAAAAA") and not any(p in bytes(value) for p in PLAIN)
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        files = glob.glob(path + "*")
        assert path in files
        for name in files:
            with open(name, "rb") as fh:
                data = fh.read()
            assert not any(p in data for p in PLAIN), name
    else:
        dump = raw_rows(app, "SELECT m::text FROM messages m") + raw_rows(app, "SELECT c::text FROM conversations c")
        assert dump and not any(p.decode() in text for (text,) in dump for p in PLAIN)


def test_rotation_add_a_key_reencrypt_then_drop_the_old_one(db_app):
    old, new = key(), key()
    before = seed(db_app(DATA_ENCRYPTION_KEY=old))
    rotated = db_app(DATA_ENCRYPTION_KEY=f"{new},{old}")
    store = rotated.extensions["chatgate"].conversations
    assert store.get("alice", before)[1][0].content == PROMPT  # old rows still readable
    after = seed(rotated)  # new rows use the new key
    out = rotated.test_cli_runner().invoke(args=["db", "rotate-key"])
    assert out.exit_code == 0 and "re-encrypted 6 rows" in out.output
    only_new = db_app(DATA_ENCRYPTION_KEY=new).extensions["chatgate"].conversations
    for conversation_id in (before, after):
        conversation, messages = only_new.get("alice", conversation_id)
        assert conversation.system == SYSTEM and [m.content for m in messages] == [PROMPT, REPLY]
    assert ChatTurns(None, only_new, history_budget=1000).history(only_new.open("alice", before, None))[0] == {
        "role": "system", "content": SYSTEM}
    # The alias does the same; re-running is harmless.
    assert rotated.test_cli_runner().invoke(args=["db", "reencrypt"]).exit_code == 0
    only_old = identify_clients(db_app(DATA_ENCRYPTION_KEY=old))
    with pytest.raises(Undecryptable):
        only_old.extensions["chatgate"].conversations.get("alice", before)
    resp = only_old.test_client().get(f"/conversations/{before}", headers={"X-Test-Client": "alice"})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "undecryptable"
    assert PROMPT not in resp.get_data(as_text=True)
    out = only_old.test_cli_runner().invoke(args=["db", "rotate-key"])
    assert out.exit_code != 0 and "(undecryptable)" in out.output


def test_rotate_key_without_a_key_refuses(db_app):
    app = db_app(APP_ENV="production", DATA_ENCRYPTION_KEY="", OFFLINE_MODEL="true", KEY_HASH_SECRET=HASH_SECRET)
    out = app.test_cli_runner().invoke(args=["db", "rotate-key"])
    assert out.exit_code != 0 and "DATA_ENCRYPTION_KEY is not set" in out.output
    out = app.test_cli_runner().invoke(args=["db", "generate-key"])
    Fernet(out.output.strip().encode())


def test_a_cipher_needs_a_key():
    with pytest.raises(ValueError):
        Cipher([])


def test_when_another_worker_writes_the_key_first_its_key_wins(tmp_path, monkeypatch):
    import app.storage.crypto as crypto

    path = tmp_path / "data-encryption.key"
    theirs = key()
    real_link = os.link

    def link_after_another_worker(src, dst):
        path.write_text(theirs + "\n")
        return real_link(src, dst)

    monkeypatch.setattr(crypto.os, "link", link_after_another_worker)
    assert development_key(path) == theirs
    assert os.listdir(tmp_path) == ["data-encryption.key"]
