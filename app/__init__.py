"""chatgate: a Flask JSON gateway for OpenAI-compatible chat completions.

The package's folders follow a request (README, "How it is built"): ``api``
(the doors) → ``access`` (who, how much) → ``core`` (bounds, guard, gateway,
reply streams, turns) → ``upstream`` and ``filter`` → ``storage``; ``config``,
``errors`` and ``ops`` underneath everything, ``openapi`` and ``cli`` on top.
"""
from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from .config import Config, load_config


def create_app(config: Config | Mapping[str, str] | None = None) -> Flask:
    """Build the app: settings, services, then each room wires itself; nothing here calls the network."""
    if config is None or isinstance(config, Mapping):
        config = load_config(config)
    app = Flask(__name__, instance_path=None)
    app.config.from_mapping(config.as_mapping())
    app.config["SETTINGS"] = config
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]

    from . import api, cli, openapi, services
    from .ops import logs

    logs.init_logging(config.LOG_LEVEL, config.LOG_FORMAT, config.secret_values())
    app.extensions["chatgate"] = services.build(config, app.instance_path)
    api.init_app(app)
    openapi.init_app(app)
    cli.init_app(app)
    return app


def start(app: Flask) -> Flask:
    """Start-up work that reaches outside the process: with DB_AUTO_MIGRATE, bring the schema up to date."""
    if app.config["DB_AUTO_MIGRATE"]:
        found = app.extensions["chatgate"]
        found.database.upgrade_at_start(found.cipher)
    return app
