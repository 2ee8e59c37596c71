"""`python -m servers` as a user runs it: clear one-line errors, and every variant serves."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from loadtests.runner.processes import RedisHandle, free_port, start_server
from servers.variants.registry import NAMES as VARIANTS


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servers", *args], capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize(("args", "message"), [
    (["--auth", "jwt-hs512"], "invalid choice"),
    ([], "required: --auth"),
    (["--auth", "none", "--users", "0"], "--users must be at least 1"),
    (["--auth", "none", "--port", "70000"], "--port must be between"),
    (["--auth", "none", "--admin-token", "short"], "at least 16 characters"),
    (["--auth", "jwt-rs256", "--jwt-key-file", "/nonexistent/key.pem"], "cannot read JWT key"),
])
def test_bad_options_exit_with_one_clear_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("variant", ["session-redis", "jwt-hs256-revocable"])
def test_unreachable_redis_exits_at_once(variant: str) -> None:
    port = free_port()  # nothing listens there
    result = run_cli("--auth", variant, "--port", str(free_port()),
                     "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert result.returncode == 1
    assert "needs Redis" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line(redis_server: RedisHandle) -> None:
    result = run_cli("--auth", "none", "--port", str(redis_server.port))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_serves(variant: str, redis_server: RedisHandle) -> None:
    server = start_server(variant, redis_url=redis_server.url)
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as resp:
            assert json.load(resp) == {"status": "ok", "variant": variant}
        req = urllib.request.Request(server.url + "/login", method="POST",
                                     data=b'{"username": "user9", "password": "pw-9"}',
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
    finally:
        assert server.stop_and_wait() == 0  # a clean exit on SIGTERM
