"""The key service behind the admin API and the keys commands, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.access import keys as keys_module
from app.access.key_admin import CLI_ACTOR
from app.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, RateLimited
from app.storage.tables import ClientKeyRow


@pytest.fixture
def found(db_app):
    return db_app(AUTH_MODE="keys").extensions["chatgate"]


def bearer(key):
    return f"Bearer {key}"


def set_row(found, key_id, **values):
    """Change a key row behind the service's back (e.g. an expiry already past), and forget cached keys."""
    with found.database.session(write=True) as session:
        session.execute(update(ClientKeyRow).where(ClientKeyRow.id == key_id).values(**values))
    found.keyring.forget()


def refusal(found, key):
    with pytest.raises(AuthenticationFailed) as err:
        found.keyring.authenticate(bearer(key))
    return err.value.code


def test_unknown_expired_and_revoked_keys_get_three_different_codes(found):
    key, view = found.key_admin.create({"name": "a"}, actor=CLI_ACTOR)
    assert found.keyring.authenticate(bearer(key)).id == f"key:{view.row.id}"
    set_row(found, view.row.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert refusal(found, key) == "key_expired"
    assert found.key_admin.get(view.row.id).state == "expired"
    found.key_admin.revoke(view.row.id, actor=CLI_ACTOR)
    assert refusal(found, key) == "key_revoked"
    assert refusal(found, "cg-" + "x" * 43) == "invalid_api_key"


def test_a_cached_key_is_never_trusted_past_its_expiry(found, monkeypatch):
    key, view = found.key_admin.create({"name": "a"}, actor=CLI_ACTOR)
    set_row(found, view.row.id, expires_at=datetime.now(UTC) + timedelta(milliseconds=300))
    found.keyring.authenticate(bearer(key))  # cached, but only until the expiry
    clock = [keys_module.time.monotonic() + 1.0]
    monkeypatch.setattr(keys_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(keys_module, "_now", lambda: datetime.now(UTC) + timedelta(seconds=1))
    assert refusal(found, key) == "key_expired"


def test_rotation_keeps_the_id_and_the_old_key_lives_through_its_grace_only(found):
    old, view = found.key_admin.create({"name": "a", "rate_limit": "7/minute"}, actor=CLI_ACTOR)
    before = found.keyring.authenticate(bearer(old))
    new, rotated = found.key_admin.rotate(view.row.id, 60, actor=CLI_ACTOR)
    assert new != old and rotated.row.prefix == new[:10]
    for key in (old, new):
        caller = found.keyring.authenticate(bearer(key))
        assert (caller.id, caller.limit_key, caller.rate_limit) == (before.id, before.limit_key, "7/minute")
    set_row(found, view.row.id, previous_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert refusal(found, old) == "key_expired"
    assert found.keyring.authenticate(bearer(new)).id == before.id
    # With no grace the old key stops at once.
    newer, _ = found.key_admin.rotate(view.row.id, actor=CLI_ACTOR)
    assert refusal(found, new) == "key_expired"
    assert found.keyring.authenticate(bearer(newer)).id == before.id


def test_changes_reach_the_next_authentication_and_null_clears(found):
    key, view = found.key_admin.create({"name": "a", "rate_limit": "5/minute", "metadata": {"user": "1"}},
                                       actor=CLI_ACTOR)
    assert found.keyring.authenticate(bearer(key)).rate_limit == "5/minute"
    changed = found.key_admin.update(view.row.id, {"rate_limit": None, "max_streams": 3, "budget_usd_month": "2.5",
                                                   "metadata": None}, actor=CLI_ACTOR)
    assert (changed.row.rate_limit, changed.row.max_streams, changed.row.budget_month_micros) == (None, 3, 2_500_000)
    assert changed.metadata == {}
    caller = found.keyring.authenticate(bearer(key))
    assert (caller.rate_limit, caller.max_streams, caller.budget_month_micros) == (None, 3, 2_500_000)


def test_a_keys_max_streams_caps_its_open_streams(found):
    key, view = found.key_admin.create({"name": "a", "max_streams": 1}, actor=CLI_ACTOR)
    caller = found.keyring.authenticate(bearer(key))
    lease = found.limiter.open_stream(caller)
    with pytest.raises(RateLimited) as err:
        found.limiter.open_stream(caller)
    assert err.value.code == "too_many_streams" and "at most 1" in err.value.message
    found.limiter.close_stream(lease)
    found.limiter.close_stream(found.limiter.open_stream(caller))


def test_lists_filter_by_every_metadata_entry_given(found):
    for i, meta in enumerate(({"user": "1", "plan": "pro"}, {"user": "1"}, {"user": "2", "plan": "pro"})):
        found.key_admin.create({"name": f"k{i}", "metadata": meta}, actor=CLI_ACTOR)
    names = lambda **meta: [v.row.name for v in found.key_admin.keys(metadata=meta).items]  # noqa: E731
    assert names(user="1") == ["k0", "k1"]
    assert names(plan="pro") == ["k0", "k2"]
    assert names(user="1", plan="pro") == ["k0"]
    assert names(user="3") == []


def test_errors_name_the_field_and_unknown_ids_are_not_found(found):
    with pytest.raises(InvalidRequest) as err:
        found.key_admin.create({"expires_at": "2020-01-01T00:00:00Z"}, actor=CLI_ACTOR)
    assert err.value.param == "expires_at"
    with pytest.raises(InvalidRequest) as err:
        found.key_admin.create({"colour": "red"}, actor=CLI_ACTOR)
    assert err.value.param == "colour"
    for call in (lambda: found.key_admin.get(42), lambda: found.key_admin.rotate(42, actor=CLI_ACTOR),
                 lambda: found.key_admin.update(42, {"max_streams": 1}, actor=CLI_ACTOR),
                 lambda: found.key_admin.revoke(42, actor=CLI_ACTOR), lambda: found.key_admin.find("ghost")):
        with pytest.raises(NotFound):
            call()
    found.key_admin.create({"name": "taken"}, actor=CLI_ACTOR)
    with pytest.raises(Conflict):
        found.key_admin.create({"name": "taken"}, actor=CLI_ACTOR)
    assert [r.action for r in found.key_admin.audit().items] == ["create"]  # refused actions leave no row


def test_the_audit_trail_pages_and_holds_no_key(found):
    key, view = found.key_admin.create({"name": "a"}, actor="admin:0123456789ab", address="203.0.113.9")
    new, _ = found.key_admin.rotate(view.row.id, 5, actor=CLI_ACTOR)
    found.key_admin.revoke(view.row.id, actor=CLI_ACTOR)
    first = found.key_admin.audit(limit=2)
    assert [r.action for r in first.items] == ["create", "rotate"] and first.next_after == first.items[-1].id
    rest = found.key_admin.audit(after=first.next_after)
    assert [r.action for r in rest.items] == ["revoke"] and rest.next_after is None
    row = first.items[0]
    assert (row.actor, row.address, row.key_id) == ("admin:0123456789ab", "203.0.113.9", view.row.id)
    assert first.items[1].detail == "grace_seconds=5"
    text = repr([vars(r) for r in first.items + rest.items])
    assert key not in text and new not in text


def test_the_fingerprint_is_stable_and_not_the_token(found):
    token = "admin-token-" + "z" * 20
    mark = found.key_admin.fingerprint(token)
    assert mark == found.key_admin.fingerprint(token) != found.key_admin.fingerprint(token + "x")
    assert mark.startswith("admin:") and len(mark) == 18 and "z" * 4 not in mark
