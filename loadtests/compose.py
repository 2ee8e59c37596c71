"""docker-compose.yml, generated from the native runner's own commands so the two cannot drift.

    python -m loadtests.compose            # rewrite docker-compose.yml
    python -m loadtests.compose --check    # exit 1 if docker-compose.yml is out of date

Every server service runs `server_command()` and every Locust service `locust_command()`,
the functions the runner and `make ui` use, with the settings of the quick profile.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from loadtests.experiments import load_profile
from loadtests.runner.processes import REPO_ROOT, locust_command, server_command
from servers.variants.registry import ENV_ADMIN_TOKEN, NAMES, variant

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SERVER_PORT = 8000
REDIS_URL = "redis://redis:6379/0"
# Limits that keep measurements comparable between services and with the native runner's
# one-core server.
# Cores as in native runs: the servers on CPU 0, Redis and the load generators on CPU 1.
SERVER_LIMITS = {"cpus": "1.0", "cpuset": "0", "mem_limit": "4g"}
REDIS_LIMITS = {"cpus": "1.0", "cpuset": "1", "mem_limit": "4g"}
LOCUST_LIMITS = {"cpus": "1.0", "cpuset": "1", "mem_limit": "1g"}
# The base images, swappable: official ones by default, local ones where no registry is
# reachable (python -m loadtests.stack images builds them from Debian packages).
PYTHON_IMAGE = "${AUTHSCALE_PYTHON_IMAGE:-python:3.11.7-slim-bookworm}"
REDIS_IMAGE = "${AUTHSCALE_REDIS_IMAGE:-redis:7.0-alpine}"
BUILD = {"context": ".", "args": {"PYTHON_IMAGE": PYTHON_IMAGE}}
HEALTHZ = ("python -c \"import urllib.request,sys; "
           f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{SERVER_PORT}/healthz')"
           ".status != 200)\"")


def service_name(variant: str) -> str:
    return f"server-{variant}"


def secrets_for(name: str) -> dict[str, str]:
    """Secrets come from the environment (or an .env file), never from this file; empty
    means generated at start-up, fine for one server (replicas must share theirs). A
    private key goes in a file, which this file does not mount: those variants generate
    theirs."""
    env = {ENV_ADMIN_TOKEN: f"${{{ENV_ADMIN_TOKEN}:-}}"}
    spec = variant(name)
    if spec.secret_env is not None and spec.secret != "jwt_private_key":
        env[spec.secret_env] = f"${{{spec.secret_env}:-}}"
    return env


def server_service(name: str, login_users: int) -> dict[str, Any]:
    needs_redis = variant(name).needs_redis
    command = server_command(name, SERVER_PORT, REDIS_URL if needs_redis else None,
                             extra=("--users", str(login_users)), host="0.0.0.0",
                             python="python")
    service: dict[str, Any] = {
        "build": BUILD,
        "image": "authscale:latest",
        "command": command,
        "environment": secrets_for(name),
        # A free port on the host's loopback, for the runner and its generator
        # (`docker-compose port` tells which).
        "ports": [f"127.0.0.1::{SERVER_PORT}"],
        "healthcheck": {"test": ["CMD-SHELL", HEALTHZ], "interval": "2s", "timeout": "2s",
                        "retries": 15},
        **SERVER_LIMITS,
    }
    if needs_redis:
        service["depends_on"] = {"redis": {"condition": "service_healthy"}}
    return service


def compose_document() -> dict[str, Any]:
    profile = load_profile("quick")
    target = service_name("session-redis")
    locust_env = {"AUTHSCALE_LOAD_HOSTS": ",".join(service_name(v) for v in NAMES)}
    master = locust_command(f"http://{target}:{SERVER_PORT}", headless=False,
                            python="python", locustfile="loadtests/swarm/locustfile.py",
                            extra=["--login-users", str(profile.login_users), "--master",
                                   "--class-picker", "--web-host", "0.0.0.0"])
    worker = ["python", "-m", "locust", "-f", "loadtests/swarm/locustfile.py", "--worker",
              "--master-host", "locust-master"]
    services: dict[str, Any] = {
        "redis": {
            "image": REDIS_IMAGE,
            # Reached from the servers' containers without a password: not protected mode
            # (the official image's entrypoint says so too; Debian's redis-server does not).
            "command": ["redis-server", "--save", "", "--appendonly", "no",
                        "--maxmemory", "3gb", "--protected-mode", "no"],
            "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "2s",
                            "timeout": "2s", "retries": 15},
            **REDIS_LIMITS,
        },
        **{service_name(v): server_service(v, profile.login_users) for v in NAMES},
        "locust-master": {
            "image": "authscale:latest",
            "build": BUILD,
            "command": master,
            "ports": ["127.0.0.1:8089:8089"],
            "environment": locust_env,
            "depends_on": {target: {"condition": "service_healthy"}},
            **LOCUST_LIMITS,
        },
        "locust-worker": {
            "image": "authscale:latest",
            "build": BUILD,
            "command": worker,
            "environment": locust_env,
            "depends_on": {"locust-master": {"condition": "service_started"}},
            **LOCUST_LIMITS,
        },
    }
    return {"services": services}


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML for the plain dicts, lists and scalars above.

    Written here rather than adding PyYAML for one generated file: every scalar is emitted
    as a JSON string or number, which YAML reads as is.
    """
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                body = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {body}")
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
    return "\n".join(lines)


HEADER = """\
# Generated by `python -m loadtests.compose` from the runner's own commands: edit that, not
# this file (a test fails when the two differ).
#
#   docker compose build
#   docker compose up redis server-session-redis locust-master locust-worker --scale locust-worker=4
#   open http://127.0.0.1:8089
#
# Base images: AUTHSCALE_PYTHON_IMAGE and AUTHSCALE_REDIS_IMAGE (the official ones by
# default). Where no registry is reachable, `make compose-images` builds local ones from
# Debian packages; `make bench-compose` runs the stack with podman or Docker, and CI runs it.
"""


def render() -> str:
    return HEADER + to_yaml(compose_document()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.compose", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docker-compose.yml differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = COMPOSE_FILE.read_text() if COMPOSE_FILE.exists() else ""
        if current != text:
            print("docker-compose.yml is out of date: run python -m loadtests.compose",
                  file=sys.stderr)
            return 1
        return 0
    COMPOSE_FILE.write_text(text)
    print(f"wrote {COMPOSE_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
