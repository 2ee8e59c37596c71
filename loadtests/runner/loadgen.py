"""The fast load generator (loadgen.c): built on first use, fed real credentials, read back
into the microsecond HDR histograms the analysis already reads.

Locust stays for what needs behaviour (logins, churn, logout, replicas, the web UI); this
is for saturation and fixed-rate latency, where Locust's one core is the limit before an
aiohttp server's is.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.load import LOGIN_REQUEST  # the name the analysis keeps out of the reads'
from loadtests.atomic import write_text
from loadtests.hdrfiles import (
    HIGHEST_US,
    LOWEST_US,
    new_histogram,
    write_histograms,
    write_timeline,
    write_window,
)
from loadtests.runner import native
from loadtests.runner.processes import ProcessError, spawn
from loadtests.runner.verify import log_in
from servers.variants.registry import SESSION_COOKIE

SOURCE = Path(__file__).with_name("loadgen.c")


def tens(rate: float) -> float:
    """A rate in whole tens: readable, and as good as any at this precision."""
    return float(round(rate / 10) * 10)


def build() -> Path:
    """The generator's binary, compiled from loadgen.c when missing or older than it."""
    return native.build(SOURCE, "authscale-loadgen", ("m", "crypto"),
                        "it signs tokens with OpenSSL: apt-get install libssl-dev")


# Logins at once while writing credentials: a login waits on its answer more than it
# works, and 1,000 of them one after the other took 1.4 s a server here.
LOGIN_THREADS = 8


def write_credentials(url: str, variant: str, users: Iterable[int], path: Path) -> int:
    """Log each user in (a few at a time) and write the header that carries its
    credential, one per line, in the users' order; the number of distinct credentials
    written."""
    with ThreadPoolExecutor(LOGIN_THREADS) as pool:
        logins = list(pool.map(lambda k: log_in(url, variant, k), users))
    lines = [login.credential.header_line.rstrip("\r\n") for login in logins]
    write_text(path, "\n".join(lines) + "\n")
    return len(set(lines))


# What the analysis names this generator's files and figures by.
NAME = "loadgen"


@dataclass
class LoadResult:
    sent: int
    answered: int
    errors: int  # answered with an error status, or lost with their connection
    late: int  # sent more than 1 ms after they were due
    unanswered: int  # due in the window, not answered by its end (in the latency histogram)
    served: int  # answers that arrived in the window, whenever due: the throughput
    seconds: float  # the measured window
    cpu_seconds: float  # the generator's own CPU time, warm-up included
    measure_from: float  # Unix seconds
    request: str  # "GET <path>": the name its histograms are filed under
    latency: HdrHistogram  # the reads'
    auth: HdrHistogram
    timeline: dict[int, HdrHistogram] = field(repr=False)
    logins: HdrHistogram | None = None  # the logins' latency, where it sent any (Logins)

    @property
    def achieved_rps(self) -> float:
        return self.served / self.seconds if self.seconds else 0.0

    def write(self, prefix: Path, started: float) -> None:
        """The measurement files the analysis reads (loadtests.hdrfiles), for a run of the
        generator spawned at `started` (Unix seconds)."""
        latency = {self.request: self.latency}
        if self.logins is not None:
            latency[LOGIN_REQUEST] = self.logins
        write_histograms(prefix, latency, {self.request: self.auth})
        write_window(prefix, started, self.measure_from, self.measure_from + self.seconds)
        write_timeline(prefix, self.timeline)


def filled(values: pd.Series) -> HdrHistogram:
    """An HDR histogram of these microsecond values, each distinct value recorded once with
    its count (tens of thousands of requests, a few thousand distinct values)."""
    histogram = new_histogram()
    for value, count in values.astype(int).value_counts().items():
        histogram.record_value(int(value), int(count))
    return histogram


@dataclass(frozen=True)
class Counts:
    """The generator's own totals for one run (its output's second line)."""

    sent: int
    answered: int
    errors: int
    late: int
    unanswered: int
    seconds: float
    cpu_seconds: float
    measure_from: float
    served: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_counts(path: Path) -> Counts:
    """The totals line of the generator's output, without reading every request."""
    with path.open() as fh:
        fh.readline()
        values = fh.readline().split()[1:10]
    if len(values) < 9:
        raise ProcessError(f"{path}: the load generator's totals are missing")
    ints = [int(v) for v in values[:5]]
    floats = [float(v) for v in values[5:8]]
    return Counts(*ints, *floats, int(values[8]))  # type: ignore[arg-type]


def read_result(path: Path, request: str = "GET /items") -> LoadResult:
    """The generator's output: counts, then "<due ms> <latency us> <status> <auth us>
    <login>" per request due in the window (status 0: unanswered at its end; login 1 for a
    login, 0 for a read). The reads make the latency, auth and timeline figures; the logins
    their own histogram."""
    c = read_counts(path)
    sent, answered, errors, late, unanswered = (c.sent, c.answered, c.errors, c.late,
                                                c.unanswered)
    seconds, cpu, measure_from, served = c.seconds, c.cpu_seconds, c.measure_from, c.served
    requests = pd.read_csv(path, sep=" ", comment="#", header=None,
                           names=["due_ms", "latency_us", "status", "auth_us", "login"])
    is_login = requests["login"] == 1
    frame = requests[~is_login]
    clipped = frame["latency_us"].clip(LOWEST_US, HIGHEST_US).astype(int)
    latency = filled(clipped)
    auth = filled(frame.loc[frame["auth_us"] >= 0, "auth_us"].clip(LOWEST_US, HIGHEST_US))
    seconds_due = (frame["due_ms"] // 1000).astype(int)
    timeline = {int(second): filled(values) for second, values in clipped.groupby(seconds_due)}
    logins = filled(requests.loc[is_login, "latency_us"].clip(LOWEST_US, HIGHEST_US)) \
        if is_login.any() else None
    return LoadResult(sent, answered, errors, late, unanswered, served, seconds, cpu,
                      measure_from, request, latency, auth, timeline, logins)


class DrawnUsers:
    """Users numbered first to last, each request's drawn uniformly, or with `zipf` > 0
    from a power law over the ranks (a hot set)."""

    first: int
    last: int
    zipf: float

    @property
    def users(self) -> int:
        return self.last - self.first + 1

    def drawn_argv(self) -> list[str]:
        return ["--first", str(self.first), "--last", str(self.last), "--zipf", str(self.zipf)]


@dataclass(frozen=True)
class Derived(DrawnUsers):
    """Credentials the generator derives instead of reading: `template` with "{id}" replaced
    by the user's number in 16 hex digits (seeded session ids are a salt and that)."""

    template: str
    first: int
    last: int
    zipf: float = 0.0

    @classmethod
    def seeded_sessions(cls, ids: dict[str, Any], zipf: float = 0.0) -> Derived:
        """Every session a server seeded, from the `seeded_ids` its /admin/seed gave (a
        salt, then each session's number: docs/api.md), in the session cookie."""
        return cls(f"Cookie: {SESSION_COOKIE}={ids['salt']}{{id}}", int(ids["first"]),
                   int(ids["last"]), zipf)

    def argv(self) -> list[str]:
        return ["--template", self.template, *self.drawn_argv()]


@dataclass(frozen=True)
class Minted(DrawnUsers):
    """Credentials the generator makes per request, one user each, with the secret in
    `key_file` as the server reads it: HS256 tokens (`hs256`), or session cookies encrypted
    with the Fernet key as aiohttp-session's EncryptedCookieStorage writes them (`fernet`).
    Millions of distinct issued credentials, no file of them."""

    key_file: Path
    first: int
    last: int
    zipf: float = 0.0
    kind: str = "hs256"

    KINDS: ClassVar[tuple[str, ...]] = ("hs256", "fernet")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"the generator mints {' or '.join(self.KINDS)}, not {self.kind!r}")

    def argv(self) -> list[str]:
        if self.kind == "fernet":
            return ["--mint-fernet", str(self.key_file), "--cookie", SESSION_COOKIE,
                    *self.drawn_argv()]
        return ["--mint-hs256", str(self.key_file), *self.drawn_argv()]


@dataclass(frozen=True)
class PerConnection:
    """Each connection its own user: connection i always sends the i-th credential (of the
    file, or of the derived ids from `first`) instead of taking them in turn."""

    credentials: Path | Derived | Minted


Credentials = Path | Derived | Minted | PerConnection


@dataclass(frozen=True)
class Logins:
    """Login churn beside the reads: every `every`-th request a login (POST /login as
    user1..user`users` in turn), so the server's store grows while it serves."""

    every: int
    users: int

    @classmethod
    def at_share(cls, share: float, users: int) -> Logins | None:
        """Logins at about `share` of the requests (None for none)."""
        return cls(max(2, round(1 / share)), users) if share > 0 else None

    @property
    def share(self) -> float:
        return 1 / self.every

    def argv(self) -> list[str]:
        return ["--login-every", str(self.every), "--login-users", str(self.users)]


def command(port: int, credentials: Credentials, out: Path, *, rate: float = 0.0,
            connections: int = 32, duration: float = 10.0, warmup: float = 1.0,
            path: str = "/items", logins: Logins | None = None,
            start_at: float | None = None) -> list[str]:
    """The generator's command line against 127.0.0.1:port (closed loop at rate 0), with
    credentials from a file (one header line each, in turn) or derived, or either bound
    to the connections; with login churn if `logins` is given; its warm-up starting at the
    wall-clock time `start_at` (Unix seconds) if given."""
    bound = isinstance(credentials, PerConnection)
    source = credentials.credentials if isinstance(credentials, PerConnection) else credentials
    given = ["--credentials", str(source)] if isinstance(source, Path) else source.argv()
    if bound:
        given += ["--per-connection", "1"]
    if logins is not None:
        given += logins.argv()
    if start_at is not None:
        given += ["--start-at", f"{start_at:.6f}"]
    return [str(build()), "--port", str(port), "--path", path, "--rate", str(rate),
            "--connections", str(connections), "--duration", str(duration),
            "--warmup", str(warmup), *given, "--out", str(out)]


def run_load(port: int, credentials: Credentials, out: Path, *, rate: float = 0.0,
             connections: int = 32, duration: float = 10.0, warmup: float = 1.0,
             path: str = "/items", cpus: Iterable[int] | None = None,
             logins: Logins | None = None) -> LoadResult:
    """One run of the generator, pinned to `cpus`, waited for; its result."""
    argv = command(port, credentials, out, rate=rate, connections=connections,
                   duration=duration, warmup=warmup, path=path, logins=logins)
    child = spawn(NAME, argv, out.with_suffix(".log"), cpus)
    try:
        code = child.popen.wait(timeout=warmup + duration + 30)
    finally:
        child.stop()
    if code != 0:
        raise ProcessError(f"the load generator exited with {code}: {child.log_tail(5)}")
    return read_result(out, f"GET {path}")
