"""chatgate's settings, for ``wsgi.py``, ``gunicorn.conf.py`` and operators' scripts.

The classes live in ``app/config`` (read from the environment and ``.env``
when the app is built, never at import time); see ``.env.example`` for every
variable.
"""
from app.config import (
                        Config,
                        ConfigError,
                        DevelopmentConfig,
                        ProductionConfig,
                        Secret,
                        TestingConfig,
                        load_api_key,
                        load_config,
                        parse_rate,
                        read_secrets_file,
                        write_secrets_file,
)

__all__ = ["Config", "ConfigError", "DevelopmentConfig", "ProductionConfig", "Secret", "TestingConfig",
           "load_api_key", "load_config", "parse_rate", "read_secrets_file", "write_secrets_file"]
