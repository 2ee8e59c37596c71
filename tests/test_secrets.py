"""No secret in the repository or in a run folder; secure defaults."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from loadtests.runner.processes import REPO_ROOT
from servers.settings import Settings, settings_from_args

SECRET_PATTERNS = [
    re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(rb"AUTHSCALE_(JWT|COOKIE|ADMIN)_(KEY|TOKEN)=[^\s$\"'{]"),
]


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True,
                            check=True).stdout.split(b"\0")
    return [REPO_ROOT / name.decode() for name in listed if name]


def test_no_private_key_or_secret_value_is_tracked() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        data = path.read_bytes()
        if any(p.search(data) for p in SECRET_PATTERNS):
            offenders.append(str(path.relative_to(REPO_ROOT)))
    assert not offenders


def test_secure_defaults() -> None:
    settings = settings_from_args(["--auth", "jwt-hs256"], environ={})
    assert settings.host == "127.0.0.1"  # not reachable from other machines unless asked
    assert settings.admin_token is None  # /admin/seed off unless a token is given
    assert settings.jwt_key is None  # generated at start-up, never a built-in default
    assert Settings(auth="none").cookie_secure is False  # a setting, documented in README
