"""The container engine and the images docker-compose.yml needs: Docker where its daemon
answers, else podman driven through its Docker-compatible socket (`podman system
service`), with compose/containers.conf (runc, and default ulimits within this kind of
machine's hard limits). docker-compose.yml takes its base images from
AUTHSCALE_PYTHON_IMAGE and AUTHSCALE_REDIS_IMAGE (the official images by default); where
those cannot be pulled (no registry reachable), one base image is built from Debian
packages with debootstrap (Python, venv and redis-server), cached under its tag, and said
so. `make compose-images` builds them; the compose smoke (loadtests.stack) runs on them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.compose import COMPOSE_FILE
from loadtests.runner.processes import REPO_ROOT

CONTAINERS_CONF = REPO_ROOT / "compose" / "containers.conf"
OFFICIAL = {"python": "python:3.11.7-slim-bookworm", "redis": "redis:7.0-alpine"}
LOCAL_BASE = "localhost/authscale-base:bookworm"
APP_IMAGE = "authscale:latest"
# The Debian packages of the local base image: Python with venv (the servers, Locust), and
# redis-server with redis-cli (the compose file's Redis and its health check).
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd",
                 "redis-server", "redis-tools")
# The compose project every container of the smoke belongs to.
PROJECT = "authscale-smoke"


class StackError(Exception):
    """The stack cannot run here; the message is one line saying why."""


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split())[-400:]
        raise StackError(f"{' '.join(argv[:3])} failed ({done.returncode}): {tail}")
    return done


@dataclass
class Engine:
    """The container engine and how to call it and docker-compose."""

    name: str  # docker or podman
    cli: list[str]
    env: dict[str, str]
    service: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    socket_dir: Path | None = None

    def __call__(self, *args: str, timeout: float = 600, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        return run([*self.cli, *args], env=self.env, timeout=timeout, check=check)

    def compose_argv(self) -> list[str]:
        return [*compose_command(), "-p", PROJECT, "-f", str(COMPOSE_FILE)]

    def compose(self, *args: str, timeout: float = 600, check: bool = True
                ) -> subprocess.CompletedProcess[str]:
        return run([*self.compose_argv(), *args], env=self.env, timeout=timeout, check=check)

    def version(self) -> str:
        done = self("version", "--format", "{{.Client.Version}}", check=False)
        return done.stdout.strip() or "unknown"

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version(),
                "compose": " ".join(compose_command())}

    def close(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.service.wait(timeout=10)
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and run(["docker", "compose", "version"], check=False
                                      ).returncode == 0:
        return ["docker", "compose"]
    raise StackError("no docker-compose: apt-get install docker-compose (or Docker's compose "
                     "plugin)")


@contextlib.contextmanager
def engine() -> Iterator[Engine]:
    """Docker if its daemon answers, else podman behind a private Docker-compatible socket,
    stopped on the way out."""
    env = {**os.environ}
    if shutil.which("docker") and run(["docker", "info"], check=False, timeout=30
                                      ).returncode == 0:
        yield Engine("docker", ["docker"], env)
        return
    if not shutil.which("podman"):
        raise StackError("no container engine: neither a Docker daemon nor podman "
                         "(apt-get install podman runc)")
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    socket_dir = Path(tempfile.mkdtemp(prefix="authscale-podman-"))
    socket = socket_dir / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket}"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    current = Engine("podman", ["podman"], {**env, "DOCKER_HOST": f"unix://{socket}"},
                     service, socket_dir)
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                error = service.stderr.read().decode() if service.stderr else ""
                raise StackError("podman's Docker-compatible service did not start: "
                                 + " ".join(error.split())[-300:])
            time.sleep(0.1)
        probe = current("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
        if probe.returncode != 0:
            raise StackError("podman cannot run here: "
                             + " ".join(probe.stderr.split())[-300:])
        yield current
    finally:
        current.close()


# -- images

def image_exists(eng: Engine, image: str) -> bool:
    return eng("image", "inspect", image, check=False, timeout=60).returncode == 0


def image_id(eng: Engine, image: str) -> str:
    return eng("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()[:19]


def pulled(eng: Engine, image: str) -> bool:
    return image_exists(eng, image) or eng("pull", image, check=False,
                                           timeout=120).returncode == 0


def build_local_base(eng: Engine) -> None:
    """A Debian bookworm base image from Debian's packages (debootstrap), with this
    machine's CA bundle (pip inside the build may need it to reach the package index)."""
    if not shutil.which("debootstrap"):
        raise StackError("the official images cannot be pulled and debootstrap is missing: "
                         "apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="authscale-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             "bookworm", str(root), debian_mirror()], timeout=900)
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if bundle.exists():
            shutil.copy(bundle, root / "etc/ssl/certs/ca-certificates.crt")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        tarball = Path(tmp) / "rootfs.tar"
        run(["tar", "-C", str(root), "-cf", str(tarball), "."], timeout=300)
        eng("import", "--change", "CMD [\"/bin/bash\"]", str(tarball), LOCAL_BASE, timeout=300)


def debian_mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror this machine's apt uses (deb.debian.org when none is found)."""
    if sources is None:
        sources = [Path("/etc/apt/sources.list"),
                   *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
                   *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in sources:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                words = line.split()
                if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                    return words[1]
                if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[-2]:
                    return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


@dataclass
class Images:
    python: str
    redis: str
    why: str
    ids: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"AUTHSCALE_PYTHON_IMAGE": self.python, "AUTHSCALE_REDIS_IMAGE": self.redis}


def ensure_images(eng: Engine) -> Images:
    """The official base images where they can be pulled, else the local Debian one (built
    once, then reused); then the project's image on that base."""
    wanted = {k: os.environ.get(f"AUTHSCALE_{k.upper()}_IMAGE", v) for k, v in OFFICIAL.items()}
    if all(pulled(eng, image) for image in wanted.values()):
        images = Images(wanted["python"], wanted["redis"], "pulled from a registry")
    else:
        cached = image_exists(eng, LOCAL_BASE)
        if not cached:
            print(f"images: {', '.join(wanted.values())} cannot be pulled here; building "
                  f"{LOCAL_BASE} from Debian packages (debootstrap, about a minute)",
                  flush=True)
            build_local_base(eng)
        images = Images(LOCAL_BASE, LOCAL_BASE,
                        f"the official images could not be pulled; {LOCAL_BASE} built from "
                        f"Debian bookworm packages" + (" (cached)" if cached else ""))
    print(f"images: Python base {images.python}, Redis {images.redis}: {images.why}",
          flush=True)
    build = ["build", "--build-arg", f"PYTHON_IMAGE={images.python}", "-t", APP_IMAGE,
             str(REPO_ROOT)]
    if eng.name == "podman":
        build[1:1] = ["--network", "host"]
    eng(*build, timeout=1200)
    images.ids = {name: image_id(eng, image) for name, image in
                  (("python", images.python), ("redis", images.redis), ("app", APP_IMAGE))}
    return images
