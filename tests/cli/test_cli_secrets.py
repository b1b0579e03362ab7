"""Operator commands, through Flask's CLI runner."""
from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.fernet import Fernet

from app.ops.tls import server_context
from config import load_config, read_secrets_file

KEY = "sk-proj-cli-test-0123456789abcdef"


def test_generate_key_prints_a_fernet_key(app):
    out = app.test_cli_runner().invoke(args=["secrets", "generate-key"])
    assert out.exit_code == 0
    Fernet(out.output.strip().encode())


def test_write_encrypts_the_key_without_echoing_it(app, tmp_path, monkeypatch):
    secrets_key = Fernet.generate_key().decode()
    path = tmp_path / "secrets.enc"
    monkeypatch.setenv("SECRETS_KEY", secrets_key)
    out = app.test_cli_runner().invoke(args=["secrets", "write", "--file", str(path)], input=KEY + "\n")
    assert out.exit_code == 0, out.output
    assert KEY not in out.output
    assert read_secrets_file(str(path), secrets_key) == {"OPENAI_API_KEY": KEY}
    cfg = load_config({"APP_ENV": "testing", "SECRETS_FILE": str(path), "SECRETS_KEY": secrets_key})
    assert cfg.OPENAI_API_KEY.reveal() == KEY


def test_write_adds_the_admin_token_beside_the_upstream_key(app, tmp_path, monkeypatch):
    secrets_key = Fernet.generate_key().decode()
    path = tmp_path / "secrets.enc"
    monkeypatch.setenv("SECRETS_KEY", secrets_key)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["secrets", "write", "--file", str(path)], input=KEY + "\n").exit_code == 0
    token = "admin-token-" + "x" * 24
    out = runner.invoke(args=["secrets", "write", "--file", str(path), "--name", "ADMIN_TOKEN"], input=token + "\n")
    assert out.exit_code == 0, out.output
    assert token not in out.output
    assert read_secrets_file(str(path), secrets_key) == {"OPENAI_API_KEY": KEY, "ADMIN_TOKEN": token}
    cfg = load_config({"APP_ENV": "testing", "SECRETS_FILE": str(path), "SECRETS_KEY": secrets_key})
    assert cfg.ADMIN_TOKEN.reveal() == token and cfg.OPENAI_API_KEY.reveal() == KEY


def test_write_needs_secrets_key(app, tmp_path, monkeypatch):
    monkeypatch.delenv("SECRETS_KEY", raising=False)
    out = app.test_cli_runner().invoke(args=["secrets", "write", "--file", str(tmp_path / "s")], input=KEY + "\n")
    assert out.exit_code != 0 and "SECRETS_KEY" in out.output


def test_write_with_the_wrong_key_refuses_to_overwrite(app, tmp_path, monkeypatch):
    path = tmp_path / "s.enc"
    monkeypatch.setenv("SECRETS_KEY", Fernet.generate_key().decode())
    runner = app.test_cli_runner()
    assert runner.invoke(args=["secrets", "write", "--file", str(path)], input=KEY + "\n").exit_code == 0
    before = path.read_bytes()
    monkeypatch.setenv("SECRETS_KEY", Fernet.generate_key().decode())
    out = runner.invoke(args=["secrets", "write", "--file", str(path)], input=KEY + "\n")
    assert out.exit_code != 0 and "does not open" in out.output
    assert path.read_bytes() == before


def test_make_cert_has_the_right_names_and_loads(app, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    out = app.test_cli_runner().invoke(args=["tls", "make-cert", "--cert", str(cert), "--key", str(key),
                                             "--days", "2"])
    assert out.exit_code == 0, out.output
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ctx = server_context(str(cert), str(key))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
