"""Settings: strict parsing, one-line errors, key loading, secrecy."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from config import (Config, ConfigError, Secret, load_config, parse_rate, read_secrets_file,
                    write_secrets_file)

KEY = "sk-live-abcdefghijklmnopqrstuvwxyz0123456789"


def cfg(**env):
    return load_config({"APP_ENV": "testing", **env})


@pytest.mark.parametrize("name, value, says", [
    ("APP_ENV", "staging", "APP_ENV: expected one of development, production, testing"),
    ("OPENAI_BASE_URL", "ftp://x/v1", "OPENAI_BASE_URL: expected an http(s) URL"),
    ("OPENAI_BASE_URL", "not a url", "OPENAI_BASE_URL: expected an http(s) URL"),
    ("UPSTREAM_TIMEOUT", "soon", "UPSTREAM_TIMEOUT: expected a number"),
    ("UPSTREAM_TIMEOUT", "0", "UPSTREAM_TIMEOUT: expected a number from 0.1"),
    ("UPSTREAM_MAX_RETRIES", "2.5", "UPSTREAM_MAX_RETRIES: expected a whole number"),
    ("UPSTREAM_MAX_RETRIES", "99", "UPSTREAM_MAX_RETRIES: expected a whole number from 0 to 10"),
    ("MAX_PROMPT_CHARS", "-1", "MAX_PROMPT_CHARS"),
    ("MAX_CONTENT_LENGTH", "lots", "MAX_CONTENT_LENGTH: expected a whole number"),
    ("AUTH_MODE", "maybe", "AUTH_MODE: expected one of keys, open"),
    ("RATE_LIMIT", "fast", "RATE_LIMIT: expected a rate such as 60/minute"),
    ("RATE_LIMIT", "60/0 minute", "RATE_LIMIT: expected a rate such as 60/minute, with a count and a window of"),
    ("TOKEN_RATE_LIMIT", "0/minute", "TOKEN_RATE_LIMIT: expected a rate such as 60/minute, with a count"),
    ("AUTH_FAILURE_LIMIT", "20/0 hours", "AUTH_FAILURE_LIMIT: expected a rate such as 60/minute, with a count"),
    ("TRUSTED_PROXIES", "10.0.0.0/8,nginx", "TRUSTED_PROXIES: expected a comma list of addresses or CIDRs"),
    ("BODY_TIMEOUT", "0", "BODY_TIMEOUT: expected a number from 0.1 to 3600"),
    ("MAX_STREAM_DURATION", "0s", "MAX_STREAM_DURATION: expected a duration"),
    ("DB_STATEMENT_TIMEOUT", "never", "DB_STATEMENT_TIMEOUT: expected a number"),
    ("LIMITS_TABLE", "relative/path", "LIMITS_TABLE: expected an absolute path, or fd:N"),
    ("LIMITS_SLOTS", "10", "LIMITS_SLOTS: expected a whole number from 1024"),
    ("ALLOW_PLAINTEXT_UPSTREAM", "maybe", "ALLOW_PLAINTEXT_UPSTREAM: expected true or false"),
    ("OFFLINE_MODEL", "perhaps", "OFFLINE_MODEL: expected true or false"),
    ("PROMPT_REDACT", "card,shoe", "PROMPT_REDACT: unknown type 'shoe'"),
    ("MODERATION", "strict", "MODERATION: expected one of off, openai"),
    ("TLS_CERT_FILE", "/nonexistent.pem", "TLS_CERT_FILE: TLS_CERT_FILE and TLS_KEY_FILE must be set together"),
    ("OPENAI_API_KEY", "has spaces in it", "OPENAI_API_KEY: the key must be"),
    ("OPENAI_API_KEY_FILE", "/nonexistent/key", "OPENAI_API_KEY_FILE: no readable UTF-8 file"),
    ("SECRETS_FILE", "/nonexistent/file", "SECRETS_KEY: required to open SECRETS_FILE"),
])
def test_bad_values_stop_with_one_line_naming_the_variable(name, value, says):
    with pytest.raises(ConfigError) as err:
        cfg(**{name: value})
    message = str(err.value)
    assert message.startswith(says)
    assert "\n" not in message


def test_defaults_match_the_contract():
    c = load_config({})
    assert c.APP_ENV == "development" and c.AUTH_MODE == "open"
    assert c.OPENAI_BASE_URL == "https://api.openai.com/v1" and c.OPENAI_MODEL == "gpt-4o-mini"
    assert c.ALLOWED_MODELS == ("gpt-4o-mini",)
    assert (c.UPSTREAM_TIMEOUT, c.UPSTREAM_CONNECT_TIMEOUT, c.UPSTREAM_MAX_RETRIES) == (60, 5, 2)
    assert (c.MAX_PROMPT_CHARS, c.MAX_CONTENT_LENGTH) == (32000, 1048576)
    assert c.upstream_mode == "offline"
    assert load_config({"APP_ENV": "production"}).AUTH_MODE == "keys"


def test_values_are_parsed():
    c = cfg(ALLOWED_MODELS=" a , b ,", UPSTREAM_TIMEOUT="2.5", OPENAI_BASE_URL="http://localhost:11434/v1/",
            PROMPT_REDACT="none", LOG_LEVEL="debug")
    assert c.ALLOWED_MODELS == ("a", "b") and c.UPSTREAM_TIMEOUT == 2.5
    assert c.OPENAI_BASE_URL == "http://localhost:11434/v1"
    assert c.PROMPT_REDACT == () and c.LOG_LEVEL == "DEBUG"
    assert parse_rate("60/minute") == (60, 60) and parse_rate("5 per 10 seconds") == (5, 10)
    for zero in ("60/0 minute", "0/minute", "0 per 0 days"):
        with pytest.raises(ValueError):
            parse_rate(zero)
    nets = cfg(TRUSTED_PROXIES=" 10.0.0.0/8 , 192.168.1.7 ,::1").TRUSTED_PROXIES
    assert [str(n) for n in nets] == ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]
    assert [str(n) for n in cfg().TRUSTED_PROXIES] == ["127.0.0.1/32", "::1/128"]
    assert (cfg().BODY_TIMEOUT, cfg().MAX_STREAM_DURATION) == (30, 600)
    assert cfg(MAX_STREAM_DURATION="90s", BODY_TIMEOUT="2.5").MAX_STREAM_DURATION == 90


@pytest.mark.parametrize("env, mode", [
    ({}, "offline"),
    ({"OPENAI_API_KEY": KEY}, "remote"),
    ({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, "remote"),
    ({"OPENAI_API_KEY": KEY, "OFFLINE_MODEL": "true"}, "offline"),
    ({"APP_ENV": "production"}, "none"),
    ({"APP_ENV": "production", "OFFLINE_MODEL": "1"}, "offline"),
])
def test_upstream_mode(env, mode):
    assert cfg(**env).upstream_mode == mode


PROD = {"APP_ENV": "production", "KEY_HASH_SECRET": "k" * 32,
        "DATA_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def test_production_without_a_key_refuses_to_serve():
    with pytest.raises(ConfigError, match="^OPENAI_API_KEY: production needs an upstream key"):
        cfg(**PROD).check_serving()
    cfg(**PROD, OPENAI_API_KEY=KEY).check_serving()
    cfg(**PROD, OFFLINE_MODEL="true").check_serving()
    cfg().check_serving()


@pytest.mark.parametrize("missing", ["KEY_HASH_SECRET", "DATA_ENCRYPTION_KEY"])
def test_production_needs_its_secrets(missing):
    env = {**PROD, "OPENAI_API_KEY": KEY}
    del env[missing]
    with pytest.raises(ConfigError, match=f"^{missing}: production needs"):
        cfg(**env).check_serving()


def test_production_refuses_open_mode_with_one_line():
    with pytest.raises(ConfigError) as err:
        cfg(**PROD, OPENAI_API_KEY=KEY, AUTH_MODE="open").check_serving()
    assert err.value.problems == ("AUTH_MODE: open mode is for one developer (callers are told apart only by "
                                  + "address); production needs AUTH_MODE=keys",)
    cfg(AUTH_MODE="open").check_serving()  # development is where open mode belongs


def test_production_names_every_missing_or_invalid_setting_at_once():
    with pytest.raises(ConfigError) as err:
        cfg(APP_ENV="production", AUTH_MODE="open", RATE_LIMIT="fast", UPSTREAM_TIMEOUT="soon")
    assert [problem.split(":")[0] for problem in err.value.problems] == [
        "UPSTREAM_TIMEOUT", "RATE_LIMIT", "OPENAI_API_KEY", "AUTH_MODE", "DATA_ENCRYPTION_KEY"]
    assert str(err.value).count("\n") == 4
    with pytest.raises(ConfigError) as err:
        cfg(APP_ENV="production").check_serving()
    assert [problem.split(":")[0] for problem in err.value.problems] == [
        "OPENAI_API_KEY", "KEY_HASH_SECRET", "DATA_ENCRYPTION_KEY"]


def test_every_bad_value_is_named_outside_production_too():
    with pytest.raises(ConfigError) as err:
        cfg(RATE_LIMIT="fast", MAX_MESSAGES="many")
    assert [problem.split(":")[0] for problem in err.value.problems] == ["RATE_LIMIT", "MAX_MESSAGES"]


@pytest.mark.parametrize("base_url, plaintext", [
    ("http://10.0.0.5:8000/v1", True), ("http://llm.internal/v1", True), ("https://10.0.0.5/v1", False),
    ("http://127.0.0.1:11434/v1", False), ("http://localhost:11434/v1", False), ("http://[::1]:8000/v1", False),
])
def test_a_key_over_plain_http_to_another_host_is_warned_and_refused_in_production(base_url, plaintext):
    dev = cfg(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url)
    assert dev.plaintext_upstream is plaintext
    assert any("plain http://" in line for line in dev.banner("http://x")) is plaintext
    dev.check_serving()
    assert cfg(OPENAI_BASE_URL=base_url).plaintext_upstream is False  # no key, nothing to leak
    prod = {**PROD, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url}
    if plaintext:
        with pytest.raises(ConfigError, match="^OPENAI_BASE_URL: plain http:// to another host"):
            cfg(**prod).check_serving()
        cfg(**prod, ALLOW_PLAINTEXT_UPSTREAM="true").check_serving()
    else:
        cfg(**prod).check_serving()


def test_production_turns_limits_on():
    c = cfg(**PROD)
    assert (c.RATE_LIMIT, c.TOKEN_RATE_LIMIT, c.DAILY_TOKEN_QUOTA) == ("60/minute", "40000/minute", 1_000_000)
    assert cfg().RATE_LIMIT is None


def test_key_from_env_wins_and_is_hidden():
    c = cfg(OPENAI_API_KEY=KEY, OPENAI_API_KEY_FILE="/nonexistent")
    assert c.KEY_SOURCE == "env" and c.OPENAI_API_KEY.reveal() == KEY
    for text in (repr(c), repr(c.OPENAI_API_KEY), str(c.OPENAI_API_KEY), repr(c.as_mapping()),
                 "\n".join(c.banner("http://x"))):
        assert KEY not in text
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b") and hash(Secret("a")) == hash(Secret("a"))


def test_key_from_file(tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    c = cfg(OPENAI_API_KEY_FILE=str(path))
    assert c.KEY_SOURCE == "file" and c.OPENAI_API_KEY.reveal() == KEY
    path.write_text("  \n")
    with pytest.raises(ConfigError, match="^OPENAI_API_KEY_FILE: the file is empty"):
        cfg(OPENAI_API_KEY_FILE=str(path))


def test_key_from_encrypted_secrets_file(tmp_path):
    secrets_key = Fernet.generate_key().decode()
    path = tmp_path / "secrets.enc"
    write_secrets_file(str(path), secrets_key, {"OPENAI_API_KEY": KEY})
    assert KEY.encode() not in path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    c = cfg(SECRETS_FILE=str(path), SECRETS_KEY=secrets_key)
    assert c.KEY_SOURCE == "secrets-file" and c.OPENAI_API_KEY.reveal() == KEY
    with pytest.raises(ConfigError, match="^SECRETS_KEY: it does not open SECRETS_FILE"):
        cfg(SECRETS_FILE=str(path), SECRETS_KEY=Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="^SECRETS_KEY: expected a Fernet key"):
        cfg(SECRETS_FILE=str(path), SECRETS_KEY="short")


def test_secrets_file_without_the_key_or_with_junk(tmp_path):
    secrets_key = Fernet.generate_key().decode()
    path = tmp_path / "s.enc"
    write_secrets_file(str(path), secrets_key, {"OTHER": "x"})
    with pytest.raises(ConfigError, match="^SECRETS_FILE: the file holds no OPENAI_API_KEY"):
        cfg(SECRETS_FILE=str(path), SECRETS_KEY=secrets_key)
    path.write_bytes(Fernet(secrets_key.encode()).encrypt(b"[1, 2]"))
    with pytest.raises(ConfigError, match="^SECRETS_FILE: the decrypted content is not a JSON object"):
        read_secrets_file(str(path), secrets_key)
    path.write_bytes(Fernet(secrets_key.encode()).encrypt(b"{not json"))
    with pytest.raises(ConfigError, match="^SECRETS_FILE: the decrypted content is not a JSON object"):
        read_secrets_file(str(path), secrets_key)
    with pytest.raises(ConfigError, match="^SECRETS_FILE: no readable file"):
        read_secrets_file(str(tmp_path / "missing"), secrets_key)


def test_tls_files_must_exist(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="^TLS_KEY_FILE: no readable file"):
        cfg(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(tmp_path / "missing.pem"))
    assert cfg(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(cert)).tls


def test_nothing_reads_the_environment_at_import(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PATH": os.environ["PATH"], "UPSTREAM_TIMEOUT": "not a number", "PYTHONPATH": root}
    ok = subprocess.run([sys.executable, "-c", "import app, config, app.api.chat, app.core.gateway, app.services"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "chatgate: configuration error: UPSTREAM_TIMEOUT: expected a number"


def test_config_classes_only_change_defaults():
    assert issubclass(type(cfg()), Config)
    assert cfg().TESTING is True


def test_every_setting_is_documented_in_env_example():
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, ".env.example"), encoding="utf-8").read()
    names = list(Config.PARSERS) + ["APP_ENV", "OPENAI_API_KEY", "OPENAI_API_KEY_FILE", "SECRETS_FILE", "SECRETS_KEY"]
    assert [n for n in names if not re.search(rf"^#? ?{n}=", text, re.M)] == []


@pytest.mark.parametrize("raw, expected", [("US,GB", ("US", "GB")), (" fr , de ", ("FR", "DE")), ("IN", ("IN",))])
def test_phone_regions_are_region_codes(raw, expected):
    assert cfg(PHONE_REGIONS=raw).PHONE_REGIONS == expected


@pytest.mark.parametrize("raw", ["XX", "US,Narnia", ",", "USA"])
def test_unknown_phone_regions_stop_start_up_with_one_line(raw):
    with pytest.raises(ConfigError, match=r"^PHONE_REGIONS: expected a comma list of two-letter region codes"):
        cfg(PHONE_REGIONS=raw)


def test_phone_regions_reach_the_filter(make_app):
    us_only = make_app(PHONE_REGIONS="US").test_client()
    everywhere = make_app().test_client()
    german = "echo: ruf mich an unter 030 12345678"
    assert "[PHONE]" not in us_only.post("/chat", json={"prompt": german}).get_json()["reply"]
    assert "[PHONE]" in everywhere.post("/chat", json={"prompt": german}).get_json()["reply"]


@pytest.mark.parametrize("raw, seconds", [("0", 0), ("0s", 0), ("90s", 90), ("10m", 600), ("1h", 3600),
                                          ("1d", 86400), ("3600", 3600), (" 2H ", 7200)])
def test_cache_ttl_is_off_or_a_duration(raw, seconds):
    assert cfg(CACHE_TTL=raw).CACHE_TTL == seconds


def test_the_cache_is_off_and_per_key_by_default():
    settings = cfg()
    assert (settings.CACHE_TTL, settings.CACHE_SCOPE, settings.CACHE_MAX_ENTRIES) == (0, "key", 10_000)
    assert cfg(CACHE_SCOPE="SHARED").CACHE_SCOPE == "shared"


@pytest.mark.parametrize("name, value, says", [
    ("CACHE_TTL", "soon", "CACHE_TTL: expected 0 (off) or a duration such as 90s, 10m, 1h or 1d"),
    ("CACHE_TTL", "-5m", "CACHE_TTL: expected 0 (off) or a duration"),
    ("CACHE_TTL", "1w", "CACHE_TTL: expected 0 (off) or a duration"),
    ("CACHE_SCOPE", "tenant", "CACHE_SCOPE: expected one of key, shared"),
    ("CACHE_MAX_ENTRIES", "0", "CACHE_MAX_ENTRIES: expected a whole number from 1 to 10000000"),
    ("CACHE_MAX_ENTRIES", "lots", "CACHE_MAX_ENTRIES: expected a whole number"),
])
def test_a_bad_cache_setting_stops_start_up_with_one_line(name, value, says):
    with pytest.raises(ConfigError) as err:
        cfg(**{name: value})
    assert str(err.value).startswith(says) and "\n" not in str(err.value)


def test_the_banner_says_where_the_cache_lives():
    assert not any("response cache" in line for line in cfg().banner("http://x"))
    assert "  response cache: 600 s, shared scope, at most 50 entries in Redis" in cfg(
        CACHE_TTL="10m", CACHE_SCOPE="shared", CACHE_MAX_ENTRIES="50", REDIS_URL="redis://127.0.0.1:6379/3"
    ).banner("http://x")


def test_admin_token_comes_from_the_environment_a_file_or_the_secrets_file(tmp_path):
    from cryptography.fernet import Fernet

    from app.config import write_secrets_file

    token = "admin-" + "a" * 30
    assert cfg().ADMIN_TOKEN is None
    assert cfg(ADMIN_TOKEN=token).ADMIN_TOKEN.reveal() == token
    path = tmp_path / "admin"
    path.write_text(token + "\n", encoding="utf-8")
    assert cfg(ADMIN_TOKEN_FILE=str(path)).ADMIN_TOKEN.reveal() == token
    key = Fernet.generate_key().decode()
    write_secrets_file(str(tmp_path / "s.enc"), key, {"OPENAI_API_KEY": "sk-" + "k" * 30, "ADMIN_TOKEN": token})
    found = cfg(SECRETS_FILE=str(tmp_path / "s.enc"), SECRETS_KEY=key)
    assert found.ADMIN_TOKEN.reveal() == token and token in found.secret_values()
    assert token not in repr(found.ADMIN_TOKEN)


@pytest.mark.parametrize("env, says", [
    ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN: expected 16 to 512"),
    ({"ADMIN_TOKEN": "cg-" + "a" * 43}, "ADMIN_TOKEN: must not look like a client key"),
    ({"ADMIN_TOKEN_FILE": "/nonexistent/admin"}, "ADMIN_TOKEN_FILE: no readable"),
])
def test_a_bad_admin_token_stops_start_up_naming_it(env, says):
    with pytest.raises(ConfigError) as err:
        cfg(**env)
    assert says in str(err.value) and "a" * 20 not in str(err.value)
