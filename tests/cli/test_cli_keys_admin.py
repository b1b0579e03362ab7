"""keys update/rotate/list through the service the admin API uses: expiry, state, metadata, audit rows."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.storage.tables import ClientKeyRow


@pytest.fixture
def keyed(make_app):
    return make_app(AUTH_MODE="keys")


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def chat(app, key):
    return app.test_client().post("/chat", json={"prompt": "hi"}, headers={"Authorization": f"Bearer {key}"})


def line_of(app, name):
    return next(line for line in cli(app, "keys", "list").output.splitlines() if line.startswith(name + " "))


def test_create_with_expiry_and_metadata_then_list_shows_expiry_and_state(keyed):
    out = cli(keyed, "keys", "create", "mobile", "--expires-at", "2031-02-03T04:05:06Z", "--metadata", "user=42",
              "--max-streams", "2")
    assert out.exit_code == 0, out.output
    line = line_of(keyed, "mobile")
    assert "2031-02-03 04:05:06" in line and " active " in line and "streams=2" in line and "[user=42]" in line
    assert "expires" in cli(keyed, "keys", "list").output.splitlines()[0]
    with keyed.extensions["chatgate"].database.session(write=True) as session:
        session.execute(update(ClientKeyRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert " expired " in line_of(keyed, "mobile")
    cli(keyed, "keys", "revoke", "mobile")
    assert " revoked " in line_of(keyed, "mobile")


def test_update_changes_expiry_limits_and_metadata_and_none_clears(keyed):
    key = cli(keyed, "keys", "create", "web", "--rate-limit", "5/minute").output.strip().splitlines()[-1]
    out = cli(keyed, "keys", "update", "web", "--rate-limit", "none", "--expires-at", "2032-01-01T00:00:00+00:00",
              "--metadata", "team=a", "--metadata", "user=7")
    assert out.exit_code == 0, out.output
    assert "rate_limit=default" in out.output and "metadata=team=a,user=7" in out.output
    line = line_of(keyed, "web")
    assert "2032-01-01 00:00:00" in line and "defaults" in line and "[team=a user=7]" in line
    assert cli(keyed, "keys", "update", "web", "--metadata", "none", "--expires-at", "none").exit_code == 0
    assert "[" not in line_of(keyed, "web") and chat(keyed, key).status_code == 200
    bad = cli(keyed, "keys", "update", "web", "--expires-at", "2001-01-01T00:00:00Z")
    assert bad.exit_code != 0 and "expires_at must be in the future" in bad.output


def test_rotate_prints_a_new_key_and_keeps_the_old_one_only_for_its_grace(keyed):
    old = cli(keyed, "keys", "create", "svc").output.strip().splitlines()[-1]
    out = cli(keyed, "keys", "rotate", "svc", "--grace-seconds", "300")
    assert out.exit_code == 0, out.output
    new = out.output.strip().splitlines()[-1]
    assert new.startswith("cg-") and new != old and "stops working at" in out.output
    assert chat(keyed, old).status_code == 200 and chat(keyed, new).status_code == 200
    newest = cli(keyed, "keys", "rotate", "svc").output.strip().splitlines()[-1]
    refused = chat(keyed, new)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "key_expired"
    assert chat(keyed, newest).status_code == 200
    assert cli(keyed, "keys", "rotate", "svc", "--grace-seconds", "999999").exit_code != 0
    assert "no active key named 'ghost'" in cli(keyed, "keys", "rotate", "ghost").output


def test_cli_actions_are_audited_as_cli(keyed):
    cli(keyed, "keys", "create", "a")
    cli(keyed, "keys", "update", "a", "--max-streams", "4")
    cli(keyed, "keys", "rotate", "a")
    cli(keyed, "keys", "revoke", "a")
    rows = keyed.extensions["chatgate"].key_admin.audit().items
    assert [(r.action, r.actor, r.address) for r in rows] == [("create", "cli", None), ("update", "cli", None),
                                                              ("rotate", "cli", None), ("revoke", "cli", None)]
