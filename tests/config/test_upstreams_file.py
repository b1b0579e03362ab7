"""UPSTREAMS_FILE: its shape, one line per bad entry, keys kept secret, and how it meets the other settings."""
from __future__ import annotations

import pytest

from config import ConfigError, load_config

KEY = "sk-" + "primary-abcdefghijklmnopqrstuvwxyz012345"
FULL = '''
deadline = "90s"

[breaker]
failure_rate = 0.25
min_requests = 10
window = "2m"
cooldown = 15

[upstreams.primary]
base_url = "https://api.openai.com/v1"
api_key_env = "PRIMARY_KEY"
timeout = 30
max_retries = 1

[upstreams.azure]
base_url = "https://example.openai.azure.com/openai/deployments/mini"
api_key_file = "{key_file}"
auth = "api-key"
query = { "api-version" = "2024-10-21" }
developer_role = "system"
breaker = { cooldown = "2m" }

[upstreams.local]
base_url = "http://127.0.0.1:11434/v1"

[upstreams.demo]
kind = "offline"

[models."gpt-4o-mini"]
targets = ["primary", "azure:gpt-4o-mini-deploy", "local:qwen2.5:7b", "demo"]

[models."fast"]
targets = ["local:llama3.2:3b", "primary:gpt-4o-mini"]
strategy = "weighted"
weights = [3, 1]

[models."text-embedding-3-small"]
targets = ["primary", "azure:embedding-deploy"]
'''


def write(tmp_path, text: str) -> str:
    path = tmp_path / "upstreams.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def cfg(tmp_path, text: str, **env):
    return load_config({"APP_ENV": "testing", "UPSTREAMS_FILE": write(tmp_path, text), **env})


@pytest.fixture
def full(tmp_path):
    key_file = tmp_path / "azure.key"
    key_file.write_text("azure-key-0123456789abcdef\n", encoding="utf-8")
    return cfg(tmp_path, FULL.replace("{key_file}", str(key_file)), PRIMARY_KEY=KEY)


def test_the_whole_shape_is_read(full):
    routing = full.routing
    assert routing.source == "file" and routing.deadline == 90
    primary, azure, local, demo = (routing.upstreams[n] for n in ("primary", "azure", "local", "demo"))
    assert (primary.api_key.reveal(), primary.key_source, primary.timeout, primary.max_retries) == (
        KEY, "env PRIMARY_KEY", 30, 1)
    assert primary.connect_timeout == 5 and local.timeout == 60 and local.max_retries == 2  # UPSTREAM_* defaults
    assert primary.breaker.failure_rate == 0.25 and primary.breaker.window == 120 and primary.breaker.cooldown == 15
    assert azure.breaker.cooldown == 120 and azure.breaker.min_requests == 10  # its own, over the file's
    assert (azure.auth, azure.query, azure.developer_role) == ("api-key", (("api-version", "2024-10-21"),), "system")
    assert azure.api_key.reveal() == "azure-key-0123456789abcdef" and local.api_key is None
    assert demo.kind == "offline" and demo.base_url == ""
    route = routing.routes["gpt-4o-mini"]
    assert [(t.upstream, t.model) for t in route.targets] == [
        ("primary", "gpt-4o-mini"), ("azure", "gpt-4o-mini-deploy"), ("local", "qwen2.5:7b"), ("demo", "gpt-4o-mini")]
    assert routing.routes["fast"].strategy == "weighted" and routing.routes["fast"].weights == (3.0, 1.0)


def test_routes_are_the_public_model_names(full):
    assert full.ALLOWED_MODELS == ("gpt-4o-mini", "fast")  # an embedding model's route is not a chat model
    assert full.OPENAI_MODEL == "gpt-4o-mini" and full.upstream_mode == "remote" and not full.offline


def test_keys_never_show_and_are_scrubbed(full):
    text = repr(full) + repr(full.routing) + repr(full.as_mapping()) + "\n".join(full.banner("http://x"))
    assert KEY not in text and "azure-key-0123456789abcdef" not in text
    assert {KEY, "azure-key-0123456789abcdef"} <= set(full.secret_values())


def test_the_banner_lists_upstreams_and_routes(full):
    banner = "\n".join(full.banner("http://x"))
    assert "primary: https://api.openai.com/v1 (key from env PRIMARY_KEY)" in banner
    assert "azure: https://example.openai.azure.com/openai/deployments/mini (key from file" in banner
    assert "api-key header" in banner and "demo: embedded offline model" in banner
    assert "gpt-4o-mini -> primary, azure:gpt-4o-mini-deploy, local:qwen2.5:7b, demo (fallback)" in banner
    assert "fast -> local:llama3.2:3b x3, primary:gpt-4o-mini x1 (weighted)" in banner
    assert "routes (deadline 90s a call)" in banner


ONE = '[upstreams.a]\nbase_url = "https://a.test/v1"\n[models."m"]\ntargets = ["a"]\n'


@pytest.mark.parametrize("text, says", [
    ("[upstreams.a\n", "UPSTREAMS_FILE: not valid TOML"),
    ('[upstreams.a]\nbase_url = "ftp://x"\n[models."m"]\ntargets = ["a"]\n',
     "UPSTREAMS_FILE: [upstreams.a] base_url: expected an http(s) URL"),
    ('[upstreams.a]\n[models."m"]\ntargets = ["a"]\n', "UPSTREAMS_FILE: [upstreams.a] base_url: expected"),
    (ONE.replace('v1"', 'v1"\ntimeout = 0'), "UPSTREAMS_FILE: [upstreams.a] timeout: expected seconds"),
    (ONE.replace('v1"', 'v1"\ntimeout = "soon"'), "UPSTREAMS_FILE: [upstreams.a] timeout: expected a duration"),
    (ONE.replace('v1"', 'v1"\nmax_retries = 99'), "UPSTREAMS_FILE: [upstreams.a] max_retries: expected a whole"),
    (ONE.replace('v1"', 'v1"\nauth = "basic"'), 'UPSTREAMS_FILE: [upstreams.a] auth: expected one of "bearer"'),
    (ONE.replace('v1"', 'v1"\ndeveloper_role = "user"'), "UPSTREAMS_FILE: [upstreams.a] developer_role: expected"),
    (ONE.replace('v1"', 'v1"\nkind = "ollama"'), 'UPSTREAMS_FILE: [upstreams.a] kind: expected one of "openai"'),
    (ONE.replace('v1"', 'v1"\nquery = { v = 1 }'), "UPSTREAMS_FILE: [upstreams.a] query: expected a table of"),
    (ONE.replace('v1"', 'v1"\napi_base = "x"'), "UPSTREAMS_FILE: [upstreams.a] unknown key 'api_base'"),
    (ONE.replace('v1"', 'v1"\napi_key_env = "NOPE_UNSET"'), "UPSTREAMS_FILE: [upstreams.a] api_key_env: NOPE_UNSET "
                                                            + "is not set"),
    (ONE.replace('v1"', 'v1"\napi_key_file = "/nonexistent/key"'), "UPSTREAMS_FILE: [upstreams.a] api_key_file: "
                                                                   + "no readable"),
    (ONE.replace('v1"', 'v1"\napi_key_env = "X"\napi_key_file = "/k"'), "UPSTREAMS_FILE: [upstreams.a] api_key_env "
                                                                        + "and api_key_file: set one"),
    (ONE.replace('v1"', 'v1"\nbreaker = { failure_rate = 2 }'), "UPSTREAMS_FILE: [upstreams.a] breaker "
                                                                + "failure_rate: expected a number above 0"),
    (ONE.replace('v1"', 'v1"\nbreaker = { cooldown = "forever" }'), "UPSTREAMS_FILE: [upstreams.a] breaker "
                                                                    + "cooldown: expected a duration"),
    ('[upstreams."a b"]\nbase_url = "https://a.test/v1"\n', "UPSTREAMS_FILE: [upstreams.a b] the name must be"),
    ('[upstreams.a]\nkind = "offline"\nbase_url = "https://a.test/v1"\n[models."m"]\ntargets = ["a"]\n',
     "UPSTREAMS_FILE: [upstreams.a] base_url: an offline upstream has no base_url"),
    (ONE.replace('["a"]', '["b"]'), "UPSTREAMS_FILE: [models.\"m\"] targets: 'b' is not an [upstreams.NAME] entry"),
    (ONE.replace('["a"]', '[]'), 'UPSTREAMS_FILE: [models."m"] targets: expected a list'),
    (ONE.replace('["a"]', '["a", "a"]'), 'UPSTREAMS_FILE: [models."m"] targets: each target may appear once'),
    (ONE.replace('["a"]', '["a"]\nstrategy = "random"'), 'UPSTREAMS_FILE: [models."m"] strategy: expected one of'),
    (ONE.replace('["a"]', '["a"]\nweights = [1]'), 'UPSTREAMS_FILE: [models."m"] weights: only a "weighted" route'),
    (ONE.replace('["a"]', '["a"]\nstrategy = "weighted"\nweights = [1, 2]'),
     'UPSTREAMS_FILE: [models."m"] weights: expected one positive number per target'),
    (ONE.replace('["a"]', '["a"]\nstrategy = "weighted"\nweights = [0]'), 'weights: expected one positive'),
    ("deadline = 0\n" + ONE, "UPSTREAMS_FILE: deadline: expected seconds"),
    ("timeout = 3\n" + ONE, "UPSTREAMS_FILE: unknown key 'timeout'"),
    ('[upstreams.a]\nbase_url = "https://a.test/v1"\n', "UPSTREAMS_FILE: no [models.\"NAME\"] route"),
])
def test_a_bad_entry_stops_start_up_with_one_line_naming_it(tmp_path, text, says):
    with pytest.raises(ConfigError) as raised:
        cfg(tmp_path, text)
    assert any(p.startswith(says) or says in p for p in raised.value.problems), raised.value.problems
    assert all("\n" not in p for p in raised.value.problems)


def test_every_bad_entry_is_named_at_once(tmp_path):
    text = ONE.replace('v1"', 'v1"\ntimeout = -1\nauth = "basic"') + '[models."n"]\ntargets = ["zzz"]\n'
    with pytest.raises(ConfigError) as raised:
        cfg(tmp_path, text)
    assert len(raised.value.problems) == 3


def test_a_key_with_a_bad_character_is_refused_without_showing_it(tmp_path):
    with pytest.raises(ConfigError) as raised:
        cfg(tmp_path, ONE.replace('v1"', 'v1"\napi_key_env = "K"'), K="sk-secret value-0123456789")
    assert "sk-secret" not in str(raised.value) and "api_key_env: the key must be" in str(raised.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^UPSTREAMS_FILE: no readable file at the given path$"):
        load_config({"APP_ENV": "testing", "UPSTREAMS_FILE": str(tmp_path / "nope.toml")})


def test_allowed_models_may_only_narrow_the_routes(tmp_path, full):
    text = ONE + '[models."n"]\ntargets = ["a"]\n'
    assert cfg(tmp_path, text, ALLOWED_MODELS="n").ALLOWED_MODELS == ("n",)
    with pytest.raises(ConfigError, match=r"^ALLOWED_MODELS: 'gpt-4o' is not a route of UPSTREAMS_FILE"):
        cfg(tmp_path, text, ALLOWED_MODELS="m,gpt-4o")


def test_the_default_model_is_a_route(tmp_path):
    text = ONE + '[models."n"]\ntargets = ["a"]\n'
    assert cfg(tmp_path, text).OPENAI_MODEL == "m"  # gpt-4o-mini is not a route here: the first route
    assert cfg(tmp_path, text, OPENAI_MODEL="n").OPENAI_MODEL == "n"
    with pytest.raises(ConfigError, match=r"^OPENAI_MODEL: 'gpt-4o-mini' is not one of the chat routes"):
        cfg(tmp_path, text, OPENAI_MODEL="gpt-4o-mini")


def test_the_file_and_offline_model_do_not_mix(tmp_path):
    with pytest.raises(ConfigError, match='kind = "offline" instead'):
        cfg(tmp_path, ONE, OFFLINE_MODEL="true")


def test_production_refuses_a_key_in_clear_naming_the_upstream(tmp_path):
    text = '[upstreams.far]\nbase_url = "http://10.0.0.5:8000/v1"\napi_key_env = "K"\n[models."m"]\ntargets = ["far"]\n'
    prod = {"APP_ENV": "production", "AUTH_MODE": "keys", "KEY_HASH_SECRET": "k" * 40,
            "DATA_ENCRYPTION_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=", "K": KEY,
            "UPSTREAMS_FILE": write(tmp_path, text)}
    with pytest.raises(ConfigError, match=r"^UPSTREAMS_FILE: \[upstreams.far\] plain http:// to another host"):
        load_config(prod).check_serving()
    load_config({**prod, "ALLOW_PLAINTEXT_UPSTREAM": "true"}).check_serving()
    assert "its key goes in clear" in "\n".join(load_config({**prod, "APP_ENV": "development"}).banner("http://x"))


def test_production_serves_a_file_of_keyless_local_upstreams(tmp_path):
    text = '[upstreams.local]\nbase_url = "http://127.0.0.1:11434/v1"\n[models."m"]\ntargets = ["local"]\n'
    prod = {"APP_ENV": "production", "AUTH_MODE": "keys", "KEY_HASH_SECRET": "k" * 40,
            "DATA_ENCRYPTION_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
            "UPSTREAMS_FILE": write(tmp_path, text)}
    load_config(prod).check_serving()  # no OPENAI_API_KEY needed: the file names the upstreams


def test_without_the_file_one_upstream_is_made_from_the_settings():
    from app.config.routing import from_settings

    c = load_config({"APP_ENV": "testing", "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "https://u.test/v1",
                     "ALLOWED_MODELS": "gpt-4o-mini,gpt-4o"})
    routing = from_settings(c)
    assert c.routing is None and routing.source == "settings" and routing.deadline is None
    (spec,) = routing.upstreams.values()
    assert (spec.name, spec.base_url, spec.breaker.enabled) == ("default", "https://u.test/v1", False)
    assert set(routing.routes) == {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}
    assert list(from_settings(load_config({"APP_ENV": "testing"})).upstreams) == ["offline"]
