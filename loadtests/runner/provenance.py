"""What a run's manifest records about where and with what it ran."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from loadtests.runner.processes import REPO_ROOT, find_redis_server

PACKAGES = ("aiohttp", "aiohttp-session", "locust", "pyjwt", "oxyjwt", "joserfc", "redis",
            "hiredis", "cryptography", "uvloop", "prometheus-client", "hdrhistogram", "pandas",
            "matplotlib")


def git_state(repo: Path = REPO_ROOT) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain")) if commit
            else None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
    }


def redis_server_version() -> str | None:
    try:
        done = subprocess.run([find_redis_server(), "--version"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, RuntimeError):
        return None
    for part in done.stdout.split():
        if part.startswith("v="):
            return part[2:]
    return done.stdout.strip() or None


def versions() -> dict[str, Any]:
    found: dict[str, Any] = {"python": sys.version.split()[0],
                             "redis_server": redis_server_version(),
                             "redis_server_binary": None}
    with contextlib.suppress(RuntimeError):
        found["redis_server_binary"] = find_redis_server()
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found
