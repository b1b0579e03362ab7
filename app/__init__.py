"""chatgate: a Flask JSON gateway for OpenAI-compatible chat completions."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from flask import Flask

if TYPE_CHECKING:
    from config import Config


def create_app(config: "Config | Mapping[str, str] | None" = None) -> Flask:
    """Build the app: each part wires itself; nothing here calls the network."""
    # Imported here, not at the top: config builds on app.settings, so the package must load first.
    from config import load_config

    if config is None or isinstance(config, Mapping):
        config = load_config(config)
    app = Flask(__name__, instance_path=None)
    app.config.from_mapping(config.as_mapping())
    app.config["SETTINGS"] = config
    app.json.sort_keys = False
    app.json.compact = True

    from . import (auth, chat, cli, conversations, db, dbcli, errors, health, http, limits, logs, openai_api,
                   openapi, pages, pipeline)

    logs.init_logging(config.LOG_LEVEL, config.secret_values())
    errors.register_error_handlers(app)
    http.init_app(app)
    db.init_app(app, config)
    auth.init_app(app, config)
    limits.init_app(app, config)
    pipeline.init_app(app, config)
    app.register_blueprint(health.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(conversations.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(pages.bp)
    cli.init_app(app)
    dbcli.init_app(app)
    return app
