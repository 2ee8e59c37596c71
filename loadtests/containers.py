"""The runner's servers and Redis in containers: a Supervisor that starts them through
docker-compose instead of as local processes, so every experiment, the sampler and the
report run unchanged on a containerised stack (`make bench-compose`).

Each server or Redis is a one-off container of its compose service (`docker-compose run`:
the service's image, network, CPU set and limits), named after its host port, its port
published on the host's loopback, run attached so that its output is the log the native
runner keeps. The load generators (the fast one and Locust) stay on the host, pinned to
the generator's core as in native runs; the compose smoke runs Locust's master and a worker
in containers as well. CPU and memory are read from each container's main process on the
host (its PID from the engine), as for a native server.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from loadtests.compose import REDIS_LIMITS, SERVER_LIMITS, SERVER_PORT, service_name
from loadtests.images import Engine
from loadtests.runner.processes import (
    STOP_GRACE_SECONDS,
    Child,
    ProcessError,
    RedisHandle,
    ServerHandle,
    Supervisor,
    free_port,
    http_ok,
    server_command,
    spawn,
    wait_until,
)
from servers.variants.registry import ENV_ADMIN_TOKEN
from servers.variants.registry import variant as spec_of

REDIS_PORT = 6379
# Where a private key lives inside a server's container (mounted read-only from the host).
KEY_IN_CONTAINER = "/run/authscale/jwt-key.pem"


class ContainerChild(Child):
    """A container run attached by docker-compose: alive while it runs, its PID the
    container's main process on the host, stopped through the engine (its exit code is
    the container's: 0 for a clean SIGTERM shutdown)."""

    def __init__(self, child: Child, engine: Engine, container: str) -> None:
        super().__init__(child.name, child.popen, child.log_path, child.cpus)
        self.engine = engine
        self.container = container
        self.host_pid = 0

    @property
    def pid(self) -> int:
        if not self.host_pid:
            raise ProcessError(f"container {self.container} has no process yet")
        return self.host_pid

    def running_pid(self) -> int:
        """The main process's host PID once the container runs, else 0."""
        done = self.engine("inspect", "--format", "{{.State.Running}} {{.State.Pid}}",
                           self.container, check=False, timeout=30)
        running, _, pid = done.stdout.strip().partition(" ")
        if done.returncode == 0 and running == "true" and pid.isdigit():
            self.host_pid = int(pid)
        return self.host_pid

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.popen.poll() is None:
            self.engine("stop", "-t", str(int(STOP_GRACE_SECONDS)), self.container,
                        check=False, timeout=STOP_GRACE_SECONDS + 30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(STOP_GRACE_SECONDS)
        code = super().stop(sig)  # the compose client, if it lingers
        self.engine("rm", "-f", self.container, check=False, timeout=60)
        return code


class ContainerSupervisor(Supervisor):
    """Servers and Redis as one-off containers of the compose file's services; everything
    else (generators, the primitives' timing) as local processes, as the native runner."""

    def __init__(self, log_dir: Path, engine: Engine, images: dict[str, Any]) -> None:
        super().__init__(log_dir)
        self.engine = engine
        self.images = images
        # Host-side Redis URL -> the name the servers reach it by on the compose network.
        self.redis_names: dict[str, str] = {}
        # Each service's limits as the engine reports them, read from its first container.
        self.limits: dict[str, dict[str, Any]] = {}

    def placement(self) -> dict[str, Any]:
        return {"servers": "containers", "engine": self.engine.describe(),
                "images": self.images, "limits": self.limits,
                "generators": "local processes on the generator's core"}

    def run_container(self, name: str, service: str, command: Sequence[str], *,
                      publish: str, env: dict[str, str] | None = None,
                      secrets: Sequence[str] = (), volumes: Sequence[str] = (),
                      log_path: Path) -> ContainerChild:
        """`docker-compose run` of one service as container `name`, attached (its output
        goes to log_path), its port published as `publish`; the secrets' values are
        passed by name from `env`, never on a command line."""
        argv = [*self.engine.compose_argv(), "run", "--rm", "-T", "--no-deps", "--name", name,
                "--publish", publish]
        for key in secrets:
            argv += ["-e", key]
        for volume in volumes:
            argv += ["-v", volume]
        argv += [service, *command]
        child = ContainerChild(spawn(name, argv, log_path, env={**self.engine.env,
                                                                 **(env or {})}),
                               self.engine, name)
        self._track(child)
        try:
            wait_until(lambda: bool(child.running_pid()), child, 60, name)
            if service not in self.limits:
                self.limits[service] = limits_of(inspect(self.engine, name))
        except BaseException:
            self.stop(child)
            raise
        return child

    def redis(self, cpus: Iterable[int] | None = None, port: int | None = None) -> RedisHandle:
        port = port or free_port()
        name = f"authscale-redis-{port}"
        child = self.run_container(
            name, "redis", ["redis-server", "--save", "", "--appendonly", "no",
                            "--protected-mode", "no"],
            publish=f"127.0.0.1:{port}:{REDIS_PORT}", log_path=self.log_dir / f"{name}.log")
        handle = RedisHandle(f"redis://127.0.0.1:{port}/0", child)

        def answers_ping() -> bool:
            with contextlib.suppress(Exception):
                return bool(handle.client().ping())
            return False

        try:
            wait_until(answers_ping, child, 60, name)
        except BaseException:
            self.stop_redis(handle)
            raise
        self.redis_names[handle.url] = f"redis://{name}:{REDIS_PORT}/0"
        return handle

    def server(self, variant: str, redis_url: str | None, cpus: Iterable[int] | None,
               env: dict[str, str] | None = None, extra: Sequence[str] = ()) -> ServerHandle:
        port = free_port()
        name = f"authscale-{variant}-{port}"
        env = dict(env or {})
        spec = spec_of(variant)
        secrets = [ENV_ADMIN_TOKEN] if ENV_ADMIN_TOKEN in env else []
        volumes: list[str] = []
        if spec.secret_env is not None and spec.secret_env in env:
            secrets.append(spec.secret_env)
            if spec.secret == "jwt_private_key":  # a path on the host: mounted
                volumes.append(f"{env[spec.secret_env]}:{KEY_IN_CONTAINER}:ro")
                env[spec.secret_env] = KEY_IN_CONTAINER
        inside = self.redis_names.get(redis_url or "", redis_url)
        command = server_command(variant, SERVER_PORT, inside, extra, host="0.0.0.0",
                                 python="python")
        child = self.run_container(name, service_name(variant), command,
                                   publish=f"127.0.0.1:{port}:{SERVER_PORT}", env=env,
                                   secrets=secrets, volumes=volumes,
                                   log_path=self.log_dir / f"{name}.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: http_ok(url + "/healthz"), child, 60, name)
        except BaseException:
            self.stop(child)
            raise
        return ServerHandle(variant, url, child)

    def stop_redis(self, handle: RedisHandle) -> None:
        self.redis_names.pop(handle.url, None)
        super().stop_redis(handle)


def check_pinning(server_cpus: Iterable[int], redis_cpus: Iterable[int]) -> None:
    """The compose file's CPU sets are the native runner's pinning, or figures would not
    compare: say so rather than run on other cores."""
    for what, cpus, limits in (("servers", server_cpus, SERVER_LIMITS),
                               ("Redis", redis_cpus, REDIS_LIMITS)):
        wanted = ",".join(str(c) for c in sorted(cpus))
        if limits["cpuset"] != wanted:
            raise ProcessError(f"docker-compose.yml pins the {what} to CPU "
                               f"{limits['cpuset']}, the runner to CPU {wanted}")


def inspect(engine: Engine, container: str) -> dict[str, Any]:
    """What the engine says of a container (`inspect`)."""
    return json.loads(engine("inspect", container).stdout)[0]  # type: ignore[no-any-return]


def limits_of(inspected: dict[str, Any]) -> dict[str, Any]:
    """The CPU quota, CPU set and memory limit the engine applied to a container."""
    host = inspected["HostConfig"]
    return {"cpus": (host.get("NanoCpus") or 0) / 1e9 or None,
            "cpuset": host.get("CpusetCpus") or None,
            "memory_bytes": host.get("Memory") or None}
