"""HTTPS end to end: a generated certificate, verified by the client, on both servers."""
from __future__ import annotations

import socket
import ssl
import warnings

import pytest
import requests
from support import LiveServer, run_cli


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    out = run_cli("tls", "make-cert", "--cert", str(cert), "--key", str(key))
    assert out.returncode == 0, out.stderr
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    return str(cert), str(key)


@pytest.mark.parametrize("dev", [False, True], ids=["gunicorn", "wsgi.py"])
def test_https_with_certificate_verification(cert, dev):
    cert_file, key_file = cert
    with LiveServer(dev=dev, scheme="https", verify=cert_file,
                    TLS_CERT_FILE=cert_file, TLS_KEY_FILE=key_file) as server:
        for host in ("127.0.0.1", "localhost"):
            url = f"https://{host}:{server.port}"
            resp = requests.post(url + "/chat", json={"prompt": "Hello"}, verify=cert_file, timeout=10)
            assert resp.status_code == 200 and resp.json()["reply"]
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.url + "/healthz", timeout=10)  # not trusted without the cert
        ctx = ssl.create_default_context(cafile=cert_file)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(cert_file)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is what we are proving we refuse
            old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
                with old.wrap_socket(raw, server_hostname="localhost"):
                    pass  # pragma: no cover - the handshake must fail
