"""Settings: strict parsers, the per-environment Config classes, the upstream key and the secrets file.

Nothing here reads the environment at import time; ``load_config()`` does,
when the app is built.
"""
from ..errors import ConfigError
from .parsers import Secret, parse_rate
from .secrets_file import read_secrets_file, write_secrets_file
from .settings import Config, DevelopmentConfig, ProductionConfig, TestingConfig, load_config
from .upstream_key import load_api_key

__all__ = ["Config", "ConfigError", "DevelopmentConfig", "ProductionConfig", "Secret", "TestingConfig",
           "load_api_key", "load_config", "parse_rate", "read_secrets_file", "write_secrets_file"]
