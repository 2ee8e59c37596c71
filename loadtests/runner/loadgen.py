"""The fast load generator (loadgen.c): built on first use, fed real credentials, read back
into the microsecond HDR histograms the analysis already reads.

Locust stays for what needs behaviour (logins, churn, logout, replicas, the web UI); this
is for saturation and fixed-rate latency, where Locust's one core is the limit before an
aiohttp server's is.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from loadtests.atomic import write_text
from loadtests.runner.processes import REPO_ROOT, ProcessError, spawn
from loadtests.runner.verify import log_in

SOURCE = Path(__file__).with_name("loadgen.c")
BINARY = REPO_ROOT / "build" / "authscale-loadgen"
# 1 us to 60 s at 3 significant digits, as the Locust side records.
LOWEST_US, HIGHEST_US, DIGITS = 1, 60_000_000, 3


def build() -> Path:
    """The generator's binary, compiled from loadgen.c when missing or older than it."""
    if BINARY.exists() and BINARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return BINARY
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ProcessError("the fast load generator needs a C compiler: apt-get install gcc")
    BINARY.parent.mkdir(exist_ok=True)
    done = subprocess.run([compiler, "-O2", "-Wall", "-o", str(BINARY), str(SOURCE)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ProcessError(f"building {BINARY.name} failed: {done.stderr.strip()[-500:]}")
    return BINARY


def write_credentials(url: str, variant: str, users: Iterable[int], path: Path) -> int:
    """Log each user in and write the header that carries its credential, one per line;
    the number of distinct credentials written."""
    lines = [log_in(url, variant, k).credential.header_line.rstrip("\r\n") for k in users]
    write_text(path, "\n".join(lines) + "\n")
    return len(set(lines))


@dataclass
class LoadResult:
    sent: int
    answered: int
    errors: int
    late: int
    seconds: float  # the measured window
    cpu_seconds: float  # the generator's own CPU time, warm-up included
    latency: HdrHistogram
    per_second: pd.DataFrame = field(repr=False)

    @property
    def achieved_rps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def read_result(path: Path) -> LoadResult:
    """The generator's output: counts, then "<due ms> <latency us> <status>" per answer."""
    with path.open() as fh:
        fh.readline()
        sent, answered, errors, late, seconds, cpu = fh.readline().split()[1:7]
    frame = pd.read_csv(path, sep=" ", comment="#", header=None,
                        names=["due_ms", "latency_us", "status"])
    histogram = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
    for value in frame["latency_us"].clip(LOWEST_US, HIGHEST_US):
        histogram.record_value(int(value))
    per_second = frame.assign(second=(frame["due_ms"] // 1000).astype(int)).groupby(
        "second")["latency_us"].describe(percentiles=[0.5, 0.99])
    return LoadResult(int(sent), int(answered), int(errors), int(late), float(seconds),
                      float(cpu), histogram, per_second)


def run_load(port: int, credentials: Path, out: Path, *, rate: float = 0.0,
             connections: int = 32, duration: float = 10.0, warmup: float = 1.0,
             path: str = "/items", cpus: Iterable[int] | None = None) -> LoadResult:
    """One run of the generator against 127.0.0.1:port, pinned to `cpus`; its result."""
    argv = [str(build()), "--port", str(port), "--path", path, "--rate", str(rate),
            "--connections", str(connections), "--duration", str(duration),
            "--warmup", str(warmup), "--credentials", str(credentials), "--out", str(out)]
    child = spawn("loadgen", argv, out.with_suffix(".log"), cpus)
    try:
        code = child.popen.wait(timeout=warmup + duration + 30)
    finally:
        child.stop()
    if code != 0:
        raise ProcessError(f"the load generator exited with {code}: {child.log_tail(5)}")
    return read_result(out)
