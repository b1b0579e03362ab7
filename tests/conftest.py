"""Fixtures built from the app factory, with the network mocked or local."""
from __future__ import annotations

import pytest

from app import create_app, start
from app.upstream import retry
from dbfixtures import database_url, db_app  # noqa: F401  (SQLite and PostgreSQL, see tests/dbfixtures.py)
from redisfixtures import _session_redis, private_redis, redis_url  # noqa: F401  (private Redis, tests/redisfixtures.py)

UPSTREAM = "https://upstream.test/v1"
UPSTREAM_KEY = "sk-test-upstream-key-0123456789abcdefghij"


def pytest_collection_modifyitems(items):
    """Everything under tests/e2e is the end-to-end tier (`make test-unit` leaves it out)."""
    for item in items:
        if "e2e" in item.path.parent.parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def make_app():
    """Build an app from environment-style settings on top of the testing defaults."""
    def factory(**env):
        return start(create_app({"APP_ENV": "testing", **{k: str(v) for k, v in env.items()}}))
    return factory


@pytest.fixture
def app(make_app):
    """The testing app, replying from the offline model."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client for the offline app."""
    return app.test_client()


@pytest.fixture
def remote_app(make_app):
    """An app pointed at a mocked upstream (use with `responses`)."""
    return make_app(OPENAI_API_KEY=UPSTREAM_KEY, OPENAI_BASE_URL=UPSTREAM, ALLOWED_MODELS="gpt-4o-mini,gpt-4o")


@pytest.fixture
def remote(remote_app):
    """A test client for the app behind the mocked upstream."""
    return remote_app.test_client()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """Retry delays are recorded, never slept."""
    recorded: list[float] = []
    monkeypatch.setattr(retry, "sleep", recorded.append)
    return recorded

