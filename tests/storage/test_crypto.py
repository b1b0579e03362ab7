"""Encryption at rest: keys, the development key file, rotation, and no plaintext in the tables."""
from __future__ import annotations

import glob
import os
import stat
import threading
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from dbfixtures import identify_clients, raw_rows

from app.core.turns import ChatTurns
from app.storage.crypto import Cipher, KeyMissing, NoCipher, Undecryptable, development_key, load_cipher
from app.storage.tables import ConversationRow, MessageRow
from config import ConfigError, load_config

PROMPT = "my locker code is PLAINTEXT-PROMPT-4711"
REPLY = "noted: PLAINTEXT-REPLY-0815"
SYSTEM = "You are PLAINTEXT-SYSTEM-2342."
PLAIN = (b"PLAINTEXT-PROMPT", b"PLAINTEXT-REPLY", b"PLAINTEXT-SYSTEM")
HASH_SECRET = "h" * 40  # production also needs the client-key hashing secret


def key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode("ascii")


HERE = "message:c1:1"


def test_the_first_key_encrypts_and_every_key_decrypts():
    old, new = key(), key()
    legacy = Cipher([old]).encrypt("hello", HERE)
    both = Cipher([new, old])
    assert both.decrypt(legacy, HERE) == "hello"
    token = both.encrypt("héllo ✓", HERE)
    assert Cipher([new]).decrypt(token, HERE) == "héllo ✓"
    with pytest.raises(Undecryptable):
        Cipher([old]).decrypt(token, HERE)
    assert Cipher([new]).decrypt(both.rotate(legacy, HERE), HERE) == "hello"


@pytest.mark.parametrize("elsewhere", ["message:c1:2", "message:c2:1", "system:c1", "message:c1:11", ""])
def test_a_text_opens_only_where_it_was_written(elsewhere):
    cipher = Cipher([key()])
    token = cipher.encrypt("the diagnosis", HERE)
    with pytest.raises(Undecryptable) as err:
        cipher.decrypt(token, elsewhere)
    assert "does not belong" in err.value.message and err.value.code == "undecryptable"
    with pytest.raises(Undecryptable):
        cipher.rotate(token, elsewhere)
    with pytest.raises(Undecryptable):  # an unbound (pre-0003) token is refused too
        cipher.decrypt(cipher.seal_raw(b"the diagnosis"), HERE)
    assert cipher.decrypt(token, HERE) == "the diagnosis"


@pytest.mark.parametrize("token", [b"", b"garbage", b"gAAAAAB" + b"A" * 80])
def test_a_token_no_key_opens_is_a_clear_error(token):
    with pytest.raises(Undecryptable) as err:
        Cipher([key()]).decrypt(token, HERE)
    assert err.value.status == 503 and err.value.code == "undecryptable"
    assert "DATA_ENCRYPTION_KEY" in err.value.message
    with pytest.raises(Undecryptable):
        Cipher([key()]).rotate(token, HERE)


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
        cipher.encrypt("x", HERE)


def test_testing_gets_a_fresh_key_per_app():
    cfg = load_config({"APP_ENV": "testing"})
    a, b = load_cipher(cfg, "/nonexistent"), load_cipher(cfg, "/nonexistent")
    with pytest.raises(Undecryptable):
        b.decrypt(a.encrypt("x", HERE), HERE)


def test_development_generates_one_private_key_and_reuses_it(tmp_path):
    cfg = load_config({"APP_ENV": "development"})
    first = load_cipher(cfg, str(tmp_path / "instance"))
    path = tmp_path / "instance" / "data-encryption.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_cipher(cfg, str(tmp_path / "instance")).decrypt(first.encrypt("kept", HERE), HERE) == "kept"


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


# --- each text bound to its row, and the migration that bound the old ones


def test_a_text_copied_into_another_clients_conversation_is_refused(db_app):
    app = identify_clients(db_app())
    store = app.extensions["chatgate"].conversations
    alice = store.open("alice", None, "alice's rules")
    store.append_turn(alice, "my diagnosis is private", "noted", model="m", finish_reason="stop", filter_action="none")
    mallory = store.open("mallory", None, "mallory's rules")
    store.append_turn(mallory, "hi", "hello", model="m", finish_reason="stop", filter_action="none")
    with app.extensions["chatgate"].database.engine.begin() as conn:
        # Someone with write access to the database, but not the key, moves ciphertext around.
        secret = conn.exec_driver_sql(f"SELECT content FROM messages WHERE conversation_id = '{alice.id}' "
                                      + "AND seq = 1").scalar()
        conn.execute(MessageRow.__table__.update().where(MessageRow.conversation_id == mallory.id,
                                                         MessageRow.seq == 1).values(content=secret))
        rules = conn.exec_driver_sql(f"SELECT system FROM conversations WHERE id = '{alice.id}'").scalar()
        conn.execute(ConversationRow.__table__.update().where(ConversationRow.id == mallory.id).values(system=rules))
    resp = app.test_client().get(f"/conversations/{mallory.id}", headers={"X-Test-Client": "mallory"})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "undecryptable"
    assert "diagnosis" not in resp.get_data(as_text=True) and "alice" not in resp.get_data(as_text=True)
    assert store.get("alice", alice.id)[1][0].content == "my diagnosis is private"


def test_a_message_moved_to_another_position_is_refused(db_app):
    app = db_app()
    store = app.extensions["chatgate"].conversations
    conv = store.open("alice", None, None)
    store.append_turn(conv, "first question", "first answer", model="m", finish_reason="stop", filter_action="none")
    with app.extensions["chatgate"].database.engine.begin() as conn:
        # Swap the question and the answer within one conversation.
        rows = {seq: content for seq, content in conn.exec_driver_sql(
            f"SELECT seq, content FROM messages WHERE conversation_id = '{conv.id}'")}
        for seq, other in ((1, 2), (2, 1)):
            conn.execute(MessageRow.__table__.update().where(MessageRow.conversation_id == conv.id,
                                                             MessageRow.seq == seq).values(content=rows[other]))
    with pytest.raises(Undecryptable):
        store.get("alice", conv.id)


def legacy_rows(app) -> str:
    """At revision 0002, write one conversation the way 0002-era code did (bare text sealed); returns its id."""
    database, cipher = app.extensions["chatgate"].database, app.extensions["chatgate"].cipher
    database.downgrade("0002", cipher)
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        conn.execute(ConversationRow.__table__.insert().values(
            id="legacy1", client_id="alice", system=cipher.seal_raw(SYSTEM.encode()), turns=1, created_at=now,
            updated_at=now))
        conn.execute(MessageRow.__table__.insert(), [
            {"conversation_id": "legacy1", "seq": 1, "role": "user", "content": cipher.seal_raw(PROMPT.encode()),
             "created_at": now},
            {"conversation_id": "legacy1", "seq": 2, "role": "assistant", "content": cipher.seal_raw(REPLY.encode()),
             "created_at": now}])
    return "legacy1"


def test_the_migration_binds_existing_rows_and_the_downgrade_frees_them(db_app):
    app = db_app()
    store, database = app.extensions["chatgate"].conversations, app.extensions["chatgate"].database
    conv = legacy_rows(app)
    database.upgrade("head", app.extensions["chatgate"].cipher)
    conversation, messages = store.get("alice", conv)
    assert conversation.system == SYSTEM and [m.content for m in messages] == [PROMPT, REPLY]
    database.upgrade("head", app.extensions["chatgate"].cipher)  # again: nothing to do, nothing broken
    assert store.get("alice", conv)[1][1].content == REPLY
    database.downgrade("0002", app.extensions["chatgate"].cipher)
    raw = raw_rows(app, "SELECT content FROM messages ORDER BY seq")
    assert [app.extensions["chatgate"].cipher.open_raw(c) for (c,) in raw] == [PROMPT.encode(), REPLY.encode()]
    database.upgrade("head", app.extensions["chatgate"].cipher)
    assert store.get("alice", conv)[0].system == SYSTEM
    out = app.test_cli_runner().invoke(args=["db", "rotate-key"])
    assert out.exit_code == 0 and "re-encrypted 3 rows" in out.output


def test_the_migration_needs_the_key_when_there_is_text_to_bind(db_app):
    app = db_app()
    legacy_rows(app)
    with pytest.raises(ConfigError, match="^DATA_ENCRYPTION_KEY: migration 0003_hardening re-encrypts stored text"):
        app.extensions["chatgate"].database.upgrade("head", None)
    out = app.test_cli_runner().invoke(args=["db", "upgrade"])  # the CLI passes the app's key: it works
    assert out.exit_code == 0, out.output
    assert app.extensions["chatgate"].conversations.get("alice", "legacy1")[1][0].content == PROMPT
