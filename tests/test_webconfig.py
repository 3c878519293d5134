"""--web.config.file: TLS with a real TLS client, client certificates, and basic auth with
right and wrong passwords, against the exporter's real command line."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml

from tests.conftest import TOKEN, free_port

EXPORTER = [sys.executable, "-m", "exporter"]
PASSWORD = "correct horse battery staple"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a stranger's."""
    d = tmp_path_factory.mktemp("pki")

    def self_signed(name: str) -> None:
        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )

    self_signed("ca")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, extra in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            *extra,
            cwd=d,
        )
    self_signed("stranger")
    return d


class Running:
    def __init__(self, simulator, tmp_path, web_config: dict) -> None:
        self.port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "northflank": {"api_url": simulator.base_url, "token": TOKEN},
                    "rate_limit": {"requests_per_hour": 100000, "reserve": 0},
                }
            )
        )
        web = tmp_path / "web.yaml"
        web.write_text(yaml.safe_dump(web_config))
        self.args = [
            *EXPORTER,
            "--config.file",
            str(config),
            "--web.config.file",
            str(web),
            "--web.listen-address",
            f"127.0.0.1:{self.port}",
        ]

    def __enter__(self):
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)


def wait_listening(port: int, **client) -> None:
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"https://127.0.0.1:{port}/-/healthy", **client)
            return
        except (httpx.ConnectError, httpx.RemoteProtocolError):
            time.sleep(0.05)
        except httpx.HTTPError:
            return
    raise AssertionError("not listening")


def trusting(pki, client: str | None = None, maximum=None) -> ssl.SSLContext:
    """A client TLS context that trusts the test CA, with a client certificate if named."""
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if client:
        context.load_cert_chain(str(pki / f"{client}.crt"), str(pki / f"{client}.key"))
    if maximum:
        context.maximum_version = maximum
    return context


def tls(pki, **extra):
    return {
        "tls_server_config": {
            "cert_file": str(pki / "server.crt"),
            "key_file": str(pki / "server.key"),
            **extra,
        }
    }


def test_tls_with_a_real_client(simulator, tmp_path, pki):
    with Running(simulator, tmp_path, tls(pki)) as running:
        wait_listening(running.port, verify=trusting(pki))
        response = httpx.get(f"https://127.0.0.1:{running.port}/metrics", verify=trusting(pki))
        assert response.status_code == 200
        assert "northflank_exporter_build_info" in response.text
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{running.port}/metrics", timeout=3)  # plain HTTP
        with pytest.raises(httpx.ConnectError):  # a client that does not trust our CA
            httpx.get(f"https://127.0.0.1:{running.port}/metrics")


def test_client_certificates_are_required_and_verified(simulator, tmp_path, pki):
    config = tls(
        pki, client_ca_file=str(pki / "ca.crt"), client_auth_type="RequireAndVerifyClientCert"
    )
    with Running(simulator, tmp_path, config) as running:
        wait_listening(running.port, verify=trusting(pki, "client"))
        url = f"https://127.0.0.1:{running.port}/metrics"
        assert httpx.get(url, verify=trusting(pki, "client")).status_code == 200
        for client in (None, "stranger"):
            with pytest.raises(httpx.HTTPError):
                httpx.get(url, verify=trusting(pki, client))


def test_min_version_refuses_older_clients(simulator, tmp_path, pki):
    with Running(simulator, tmp_path, tls(pki, min_version="TLS13")) as running:
        wait_listening(running.port, verify=trusting(pki))
        old = trusting(pki, maximum=ssl.TLSVersion.TLSv1_2)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{running.port}/metrics", verify=old)


def test_basic_auth_right_and_wrong_passwords(simulator, tmp_path, pki):
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd_style = "$2y$" + hashed[4:]  # what `htpasswd -B` writes
    config = {**tls(pki), "basic_auth_users": {"prometheus": hashed, "grafana": htpasswd_style}}
    verify = trusting(pki)
    with Running(simulator, tmp_path, config) as running:
        wait_listening(running.port, verify=verify)
        url = f"https://127.0.0.1:{running.port}/metrics"
        assert httpx.get(url, verify=verify, auth=("prometheus", PASSWORD)).status_code == 200
        assert httpx.get(url, verify=verify, auth=("grafana", PASSWORD)).status_code == 200
        for auth in (None, ("prometheus", "wrong"), ("nobody", PASSWORD)):
            response = httpx.get(url, verify=verify, auth=auth)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Basic ")
            assert "northflank" not in response.text


def demo_with_web_config(tmp_path, web_config) -> tuple[str, subprocess.CompletedProcess]:
    web = tmp_path / "web.yaml"
    web.write_text(yaml.safe_dump(web_config))
    result = subprocess.run(
        [*EXPORTER, "--demo", "--web.config.file", str(web)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return str(web), result


@pytest.mark.parametrize(
    ("web_config", "message"),
    [
        ({"tls_server_config": {"cert_file": "a"}}, "tls_server_config.key_file: required"),
        ({"tls": {}}, "tls: unknown key"),
        (
            {"tls_server_config": {"cert_file": "/nope.crt", "key_file": "/nope.key"}},
            "tls_server_config.cert_file: cannot load",
        ),
        ({"basic_auth_users": {"alice": "plaintext"}}, "basic_auth_users.alice: expected a bcrypt"),
        ({"basic_auth_users": {"alice": "$2b$10$short"}}, "basic_auth_users.alice: not a valid"),
        (
            {"http_server_config": {"headers": {"Server": "x"}}},
            "http_server_config.headers.Server: not one of",
        ),
        ({"http_server_config": {"http3": True}}, "http_server_config.http3: unknown key"),
    ],
)
def test_a_bad_web_config_exits_2_naming_the_key(tmp_path, web_config, message):
    web, result = demo_with_web_config(tmp_path, web_config)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{web}: {message}" in result.stderr


def test_client_auth_types_python_cannot_do_are_refused(tmp_path, pki):
    _, result = demo_with_web_config(tmp_path, tls(pki, client_auth_type="RequireAnyClientCert"))
    assert result.returncode == 2
    assert "RequireAnyClientCert is not supported" in result.stderr
