"""nginx (Debian's nginx-light) as the trivial server: one worker, answering 200 "ok" from
memory, many times faster than any Python server here. Against it the fast generator's own
limit and floor show: `make generator-ceiling`, and the floor beside every run's latency
at the common rate."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtests.atomic import write_text
from loadtests.runner.processes import (
    Child,
    ProcessError,
    Supervisor,
    free_port,
    http_ok,
    wait_until,
)

CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok"; }}
  }}
}}
"""
# A request the size of a jwt-hs256 one: its Authorization header, about 200 bytes.
CREDENTIAL = "Authorization: Bearer " + "x" * 180


def binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


@dataclass(frozen=True)
class Nginx:
    port: int
    child: Child
    credentials: Path  # one token-sized header line, for the generator

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running(supervisor: Supervisor, cpus: Iterable[int]) -> Iterator[Nginx]:
    """nginx on a free loopback port, pinned to `cpus`, until the block ends."""
    found = binary()
    if found is None:
        raise ProcessError("nginx is not installed (Debian: apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="authscale-nginx-") as tmp:
        folder = Path(tmp)
        port = free_port()
        write_text(folder / "nginx.conf", CONF.format(dir=folder, port=port))
        write_text(folder / "credentials.txt", CREDENTIAL + "\n")
        child = supervisor.spawn("nginx", [found, "-c", str(folder / "nginx.conf"), "-p",
                                           str(folder)], folder / "nginx.log", cpus)
        try:
            wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), child, 10, "nginx")
            yield Nginx(port, child, folder / "credentials.txt")
        finally:
            supervisor.stop(child)
