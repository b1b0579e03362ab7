"""The conversation store and usage ledger, on SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from dbfixtures import raw_rows

from app.storage import database as dbmod
from app.storage import migrate
from app.errors import InvalidRequest, NotFound, ServiceUnavailable
from app.storage.conversations import ID_PATTERN, encode_cursor
from app.core.turns import ChatTurns
from config import ConfigError, load_config


@pytest.fixture
def app(db_app):
    """A testing app on the parametrised database."""
    return db_app()


@pytest.fixture
def store(app):
    """That app's conversation store."""
    return app.extensions["chatgate"].conversations


def history(store, conversation, budget):
    """What /chat would send upstream of ``conversation`` within ``budget`` tokens."""
    return ChatTurns(None, store, history_budget=budget).history(conversation)


def turn(store, conversation, n, **kw):
    """Append turn ``n`` with recognisable texts."""
    store.append_turn(conversation, f"question {n}", f"answer {n}", model=kw.get("model", "gpt-4o-mini"),
                      finish_reason="stop", filter_action="none")


def age(app, conversation_id, days):
    """Make a conversation look idle for ``days`` days, straight in the table."""
    when = datetime.now(timezone.utc) - timedelta(days=days)
    with app.extensions["chatgate"].database.session(write=True) as session:
        from app.storage.tables import ConversationRow

        session.get(ConversationRow, conversation_id).updated_at = when


# --- open, ownership, expiry


def test_open_creates_then_loads_a_conversation(store):
    new = store.open("alice", None, "Be brief.")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", new.id) and ID_PATTERN.fullmatch(new.id)
    assert (new.client_id, new.system, new.turns) == ("alice", "Be brief.", 0)
    again = store.open("alice", new.id, None)
    assert (again.id, again.system, again.created_at) == (new.id, "Be brief.", new.created_at)
    assert store.open("alice", None, None).id != new.id


@pytest.mark.parametrize("conversation_id", ["nope", "x" * 64, "bad id!", "../etc", "x" * 65, ""])
def test_unknown_or_malformed_ids_are_not_found(store, conversation_id):
    with pytest.raises(NotFound) as err:
        store.open("alice", conversation_id, None)
    assert (err.value.status, err.value.code, err.value.param) == (404, "conversation_not_found", "conversation_id")


def test_another_clients_conversation_is_not_found_everywhere(store):
    mine = store.open("alice", None, "secret system")
    turn(store, mine, 1)
    for action in (lambda: store.open("mallory", mine.id, None), lambda: store.open("mallory", mine.id, "x"),
                   lambda: store.get("mallory", mine.id), lambda: store.delete("mallory", mine.id)):
        with pytest.raises(NotFound):
            action()
    assert store.list("mallory").items == []
    _, messages = store.get("alice", mine.id)
    assert [m.content for m in messages] == ["question 1", "answer 1"]
    assert store.open("alice", mine.id, None).system == "secret system"


def test_a_new_system_prompt_replaces_the_old_one(store):
    conv = store.open("alice", None, "old rules")
    turn(store, conv, 1)
    updated = store.open("alice", conv.id, "new rules")
    assert updated.system == "new rules"
    assert history(store, updated, 1000)[0] == {"role": "system", "content": "new rules"}
    assert store.open("alice", conv.id, None).system == "new rules"
    assert store.get("alice", conv.id)[0].turns == 1


def test_expired_conversations_are_not_found_and_purged(app, store):
    old, fresh = store.open("alice", None, "s"), store.open("alice", None, "s")
    turn(store, old, 1)
    age(app, old.id, 31)
    with pytest.raises(NotFound):
        store.open("alice", old.id, None)
    with pytest.raises(NotFound):
        store.get("alice", old.id)
    assert [c.id for c in store.list("alice").items] == [fresh.id]
    assert store.purge_expired() == 1
    assert raw_rows(app, f"SELECT id FROM conversations WHERE id = '{old.id}'") == []
    assert raw_rows(app, f"SELECT seq FROM messages WHERE conversation_id = '{old.id}'") == []
    assert store.purge_expired() == 0
    assert store.get("alice", fresh.id)[0].id == fresh.id


def test_the_purge_command_and_a_short_ttl(db_app):
    app = db_app(CONVERSATION_TTL="1h")
    store = app.extensions["chatgate"].conversations
    conv = store.open("alice", None, None)
    age(app, conv.id, 1 / 12)  # two hours
    out = app.test_cli_runner().invoke(args=["db", "purge-expired"])
    assert out.exit_code == 0 and "purged 1 expired conversation" in out.output
    assert raw_rows(app, "SELECT id FROM conversations") == []


def test_append_to_an_erased_conversation_is_not_found(store):
    conv = store.open("alice", None, None)
    store.delete("alice", conv.id)
    with pytest.raises(NotFound):
        turn(store, conv, 1)


# --- concurrency


def test_concurrent_turns_are_never_lost_or_interleaved(db_app):
    # Two apps (two pools, like two workers) and two threads each, all on one conversation.
    apps = [db_app(), db_app()]
    conv = apps[0].extensions["chatgate"].conversations.open("alice", None, "s")
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(store, name):
        start.wait()
        try:
            for n in range(15):
                store.append_turn(conv, f"{name}-{n}-user", f"{name}-{n}-assistant", model="m",
                                  finish_reason="stop", filter_action="none")
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(apps[i % 2].extensions["chatgate"].conversations, f"w{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conversation, messages = apps[1].extensions["chatgate"].conversations.get("alice", conv.id)
    assert conversation.turns == 60 and len(messages) == 120
    seqs = raw_rows(apps[0], f"SELECT seq FROM messages WHERE conversation_id = '{conv.id}' ORDER BY seq")
    assert [s for (s,) in seqs] == list(range(1, 121))
    for user, assistant in zip(messages[::2], messages[1::2]):
        assert user.role == "user" and assistant.role == "assistant"
        assert user.content.removesuffix("-user") == assistant.content.removesuffix("-assistant")
    assert len({m.content for m in messages}) == 120


# --- listing


def test_list_is_newest_first_and_pages_with_a_cursor(store):
    made = []
    for n in range(5):
        conv = store.open("alice", None, None)
        turn(store, conv, n)
        made.append(conv.id)
    store.open("bob", None, None)
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list("alice", 2, cursor)
        pages += 1
        seen += [c.id for c in page.items]
        assert len(page.items) <= 2
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3 and seen == made[::-1]
    first = store.list("alice", 1).items[0]
    assert (first.turns, first.title) == (1, "question 4")
    # Continuing an old conversation moves it to the front.
    turn(store, store.open("alice", made[0], None), 9)
    assert store.list("alice", 1).items[0].id == made[0]


@pytest.mark.parametrize("cursor", ["", "nonsense", "!!!", encode_cursor(datetime.now(timezone.utc), "x")[:-3],
                                    "MjAyNS0wMS0wMXxhYmM"])
def test_a_bad_cursor_is_a_400(store, cursor):
    with pytest.raises(InvalidRequest) as err:
        store.list("alice", 5, cursor)
    assert err.value.param == "cursor" and err.value.code == "invalid_cursor"


def test_titles_are_short_and_single_line(store):
    conv = store.open("alice", None, None)
    store.append_turn(conv, "word  \n" * 40, "ok", model="m", finish_reason="stop", filter_action="none")
    title = store.list("alice").items[0].title
    assert len(title) <= 60 and "\n" not in title and title.endswith("…")


# --- erasure


def test_delete_removes_the_rows(app, store):
    keep, gone = store.open("alice", None, "keep me"), store.open("alice", None, "erase me")
    turn(store, keep, 1)
    turn(store, gone, 2)
    store.delete("alice", gone.id)
    assert raw_rows(app, f"SELECT id FROM conversations WHERE id = '{gone.id}'") == []
    assert raw_rows(app, f"SELECT seq FROM messages WHERE conversation_id = '{gone.id}'") == []
    assert len(raw_rows(app, f"SELECT seq FROM messages WHERE conversation_id = '{keep.id}'")) == 2
    with pytest.raises(NotFound):
        store.delete("alice", gone.id)
    with pytest.raises(NotFound):
        store.delete("alice", "not an id")


# --- usage ledger


def test_usage_totals_by_day_and_model(app):
    ledger = app.extensions["chatgate"].ledger
    for model, prompt, completion, cost in (("gpt-4o-mini", 10, 5, 5), ("gpt-4o-mini", 7, 3, 3),
                                            ("gpt-4o", 100, 50, 750)):
        ledger.record(client_id="alice", model=model, prompt_tokens=prompt, completion_tokens=completion,
                      latency_ms=12.5, status=200, filter_action="none", endpoint="/chat", stream=False,
                      cost_micros=cost)
    ledger.record(client_id="bob", model="gpt-4o", prompt_tokens=1, completion_tokens=1, latency_ms=1,
                  status=502, filter_action="none", endpoint="/v1/chat/completions", stream=True)
    old_day = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d")
    with app.extensions["chatgate"].database.session(write=True) as session:
        from app.storage.tables import LedgerRow as UsageRow

        session.add(UsageRow(client_id="alice", day=old_day, model="gpt-4o", endpoint="/chat", stream=True,
                             status=200, filter_action="redacted", prompt_tokens=1, completion_tokens=2,
                             latency_ms=3.0, created_at=datetime.now(timezone.utc) - timedelta(days=3)))
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert ledger.totals("alice", 1) == [
        {"day": today, "model": "gpt-4o", "requests": 1, "prompt_tokens": 100, "completion_tokens": 50,
         "total_tokens": 150, "cost_usd": 0.00075, "cached": 0},
        {"day": today, "model": "gpt-4o-mini", "requests": 2, "prompt_tokens": 17, "completion_tokens": 8,
         "total_tokens": 25, "cost_usd": 0.000008, "cached": 0}]
    week = ledger.totals("alice", 7)
    assert [(r["day"], r["model"]) for r in week] == [(old_day, "gpt-4o"), (today, "gpt-4o"), (today, "gpt-4o-mini")]
    assert ledger.totals("carol", 30) == []
    columns = {c for (c,) in raw_rows(app, "SELECT model FROM usage")}
    assert columns == {"gpt-4o", "gpt-4o-mini"}


# --- engine, schema and settings


def test_migrations_from_empty_through_the_cli(db_app):
    app = db_app(DB_AUTO_MIGRATE="false")
    store, client = app.extensions["chatgate"].conversations, app.test_client()
    with pytest.raises(ServiceUnavailable) as err:
        store.open("alice", None, None)
    assert err.value.code == "schema_outdated"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["database"] == "schema_outdated"
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "current"]).exit_code != 0
    out = runner.invoke(args=["db", "upgrade"])
    assert out.exit_code == 0 and f"database schema at {migrate.head()}" in out.output
    assert runner.invoke(args=["db", "current"]).exit_code == 0
    assert client.get("/readyz").get_json()["checks"]["database"] == "ok"
    assert store.open("alice", None, None).turns == 0
    out = runner.invoke(args=["db", "downgrade", "base"])
    assert out.exit_code == 0 and "database schema at base" in out.output
    tables = app.extensions["chatgate"].database.engine.dialect.get_table_names
    with app.extensions["chatgate"].database.engine.connect() as conn:
        assert set(tables(conn)) <= {"alembic_version"}


def test_readyz_reports_the_database(app, make_app):
    body = app.test_client().get("/readyz")
    assert body.status_code == 200 and body.get_json()["checks"]["database"] == "ok"
    down = make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none", DB_AUTO_MIGRATE="false")
    resp = down.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["checks"]["database"] == "unavailable"
    err = down.test_client().get("/conversations")
    assert err.status_code == 503 and err.get_json()["error"]["code"] == "database_unavailable"


def test_an_unreachable_database_at_start_up_is_one_config_line(make_app):
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: cannot reach the database"):
        make_app(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_sqlite_is_tuned_for_concurrent_writers(tmp_path):
    engine = dbmod.make_engine(dbmod.database_url("sqlite:///instance/x.db", str(tmp_path)), pool_size=7)
    with engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert (pragma("journal_mode"), pragma("synchronous"), pragma("busy_timeout")) == ("wal", 1, 30000)
        assert pragma("foreign_keys") == 1
    assert engine.pool.size() == 7 and (tmp_path / "instance" / "x.db").exists()
    engine.dispose()


def test_relative_sqlite_paths_are_relative_to_the_project(tmp_path):
    url = dbmod.database_url("sqlite:///instance/chatgate.db", "/srv/chatgate")
    assert url.database == "/srv/chatgate/instance/chatgate.db"
    assert dbmod.database_url("sqlite:////abs/x.db", "/srv").database == "/abs/x.db"
    assert dbmod.database_url("sqlite://", "/srv").database is None
    assert dbmod.database_url("postgresql://u@h/d", "/srv").drivername == "postgresql+psycopg"


def test_the_pool_is_sized_by_settings(db_app):
    app = db_app(DB_POOL_SIZE=4, DB_MAX_OVERFLOW=2)
    pool = app.extensions["chatgate"].database.engine.pool
    assert pool.size() == 4 and pool._max_overflow == 2


@pytest.mark.parametrize("name, raw, expected", [
    ("CONVERSATION_TTL", "30d", 30 * 86400), ("CONVERSATION_TTL", "12h", 43200), ("CONVERSATION_TTL", "90", 90),
    ("CONVERSATION_TTL", "15m", 900), ("HISTORY_TOKEN_BUDGET", "500", 500), ("DB_POOL_SIZE", "25", 25),
    ("DB_AUTO_MIGRATE", "false", False), ("DATABASE_URL", " postgres://u@h/d ", "postgres://u@h/d"),
])
def test_storage_settings_parse(name, raw, expected):
    assert getattr(load_config({"APP_ENV": "testing", name: raw}), name) == expected


def test_storage_defaults():
    dev, prod = load_config({}), load_config({"APP_ENV": "production"})
    assert (dev.DATABASE_URL, dev.HISTORY_TOKEN_BUDGET, dev.CONVERSATION_TTL) == (
        "sqlite:///instance/chatgate.db", 3000, 30 * 86400)
    assert (dev.DB_POOL_SIZE, dev.DB_AUTO_MIGRATE, prod.DB_AUTO_MIGRATE) == (10, True, False)


@pytest.mark.parametrize("name, raw", [
    ("CONVERSATION_TTL", "0"), ("CONVERSATION_TTL", "30 days"), ("CONVERSATION_TTL", "-5"),
    ("HISTORY_TOKEN_BUDGET", "lots"), ("DB_POOL_SIZE", "0"), ("DB_MAX_OVERFLOW", "-1"),
    ("DATABASE_URL", "mysql://u@h/d"), ("DATABASE_URL", "instance/chatgate.db"), ("DB_AUTO_MIGRATE", "maybe"),
])
def test_bad_storage_settings_are_one_line_naming_the_variable(name, raw):
    with pytest.raises(ConfigError) as err:
        load_config({"APP_ENV": "testing", name: raw})
    assert str(err.value).startswith(f"{name}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("url, message", [
    ("postgresql://u@h:port/d", "DATABASE_URL: expected a SQLAlchemy URL"),
    ("postgresql+psycopg2://u@h/d", "DATABASE_URL: cannot use the postgresql+psycopg2 driver"),
])
def test_an_unusable_database_url_is_one_config_line(make_app, url, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        make_app(DATABASE_URL=url)


def test_the_same_system_prompt_is_not_rewritten(app, store):
    conv = store.open("alice", None, "same")
    token = raw_rows(app, "SELECT system FROM conversations")[0][0]
    assert store.open("alice", conv.id, "same").system == "same"
    assert raw_rows(app, "SELECT system FROM conversations")[0][0] == token
    assert store.open("alice", conv.id, "").system is None


def test_utc_columns_refuse_naive_datetimes_and_pass_none():
    from app.storage.tables import UTCDateTime

    column = UTCDateTime()
    with pytest.raises(ValueError):
        column.process_bind_param(datetime(2025, 1, 1), None)
    assert column.process_bind_param(None, None) is None and column.process_result_value(None, None) is None


def test_the_models_match_the_migrations(db_app, tmp_path, monkeypatch):
    import shutil

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from app.storage.tables import Base

    app = db_app()
    with app.extensions["chatgate"].database.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    # `db revision --autogenerate` writes an empty migration when nothing changed (into a scratch copy).
    scratch = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, scratch, ignore=shutil.ignore_patterns("__pycache__"))
    shipped = set(os.listdir(scratch / "versions"))
    monkeypatch.setattr(migrate, "MIGRATIONS", str(scratch))
    out = app.test_cli_runner().invoke(args=["db", "revision", "-m", "nothing new", "--autogenerate"])
    assert out.exit_code == 0, out.output
    [script] = [p for p in (scratch / "versions").glob("*.py") if p.name not in shipped]
    text = script.read_text()
    assert f"down_revision = '{migrate.head()}'" in text and "op." not in text


def test_the_operator_command_migrates_from_any_directory(tmp_path):
    import subprocess
    import sys

    from support import ROOT, server_env

    db_file = tmp_path / "fresh.db"
    env = server_env(APP_ENV="production", OFFLINE_MODEL="true", DATABASE_URL=f"sqlite:///{db_file}",
                     KEY_HASH_SECRET="h" * 40)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "flask", "--app", f"{ROOT}/wsgi.py", "db", *args], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120)
    upgraded = run("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    head = migrate.head()
    assert f"database schema at {head}" in upgraded.stdout
    current = run("current")
    assert current.returncode == 0 and f"database: {head}  release: {head}" in current.stdout
    assert not (tmp_path / "instance").exists()


def test_a_newer_schema_still_serves_during_a_rolling_deploy(db_app):
    db_app()  # migrates to this release's head
    app = db_app(DB_AUTO_MIGRATE="false")
    with app.extensions["chatgate"].database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'fffffffffff1'")
    assert app.test_client().get("/readyz").get_json()["checks"]["database"] == "ok"
    assert app.extensions["chatgate"].conversations.open("alice", None, None).turns == 0
    out = app.test_cli_runner().invoke(args=["db", "current"])
    assert out.exit_code == 0 and "newer than this release" in out.output
