"""Instructions per request, counted by valgrind's callgrind: a figure that compares across
days and machines running the same software, where time does not (rustc-perf tracks
`instructions:u` for that reason; this VM has no hardware counters, so callgrind counts
them by emulation, whatever else the machine is doing).

A server (and, for the Redis variants, its Redis) runs under callgrind with counting off
from the start (`--instr-atstart=no`), address randomisation off (`setarch -R`) and
`PYTHONHASHSEED` fixed. After a warm-up, counting is switched on and zeroed
(`callgrind_control -i on`, `-z`); then windows follow one another, each a fixed number of
requests sent one at a time on one keep-alive connection and the totals read (`-e Ir`): a
window is the difference of two readings. Counting goes off after the last.

Before zeroing and before reading, every counted process must have been off the CPU for a
while (`settle`): a server goes on working after its answer has left (the handler's end,
freeing the request), and a command that lands in that tail cuts a request in two. Two
fresh session-memory processes side by side (windows of 40 and 160 requests, 8 pairs each
way, 4 December 2026) differed by a median 0.18% and at most 0.48% without it, a median
0.06% and at most 0.29% with it.

What is left is time's share, its timers (Redis's cron: about 1,200,000 instructions a
second under callgrind; session-memory's sweep: about 23,000): `idle_rates` measures them
after the windows, and `per_request` takes them off each window for its length.

Short windows of n1 requests and long ones of n2, taken in turn, give
(median c2 - median c1) / (n2 - n1): what one more request costs, without what reading
costs. Medians of three, because a window now and then counts some hundreds of thousands
of instructions more or fewer than its neighbours: in the full run of 4 December 2026, with
one window of each length, a variant's 160-request windows were up to 1.7% apart between
processes (927,544 instructions), its 40-request ones up to 1.1% (205,141), and two
processes 1.8% apart per request failed CI that day. With three rounds, two processes side
by side differed by at most 0.27% in 8 pairs (median 0.05%).

No library does this; it is a few calls of valgrind's own control tool.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from loadtests.runner.duet import cpu_ns

CALLGRIND = ("valgrind", "--tool=callgrind", "--instr-atstart=no")
HASH_SEED = "0"
CONTROL_TIMEOUT_S = 30
# Under callgrind a server starts in seconds, not a fraction of one.
START_TIMEOUT_S = 120
# Settled: no CPU time spent for this long. Under valgrind a request's tail takes a few
# milliseconds; an idle session-memory server wakes once a second (its sweep), Redis ten
# times (its cron).
QUIET_S = 0.05
SETTLE_TIMEOUT_S = 10
# The idle window that gives each process's timers' instructions a second.
IDLE_S = 2.0


class CallgrindError(RuntimeError):
    """callgrind could not count: the message says why, in one line."""


def missing() -> str | None:
    """Why instructions cannot be counted on this machine, or None when they can."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install valgrind)"
    return None


def version() -> str | None:
    try:
        done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True,
                              timeout=10)
    except OSError:
        return None
    return done.stdout.strip() or None


def prefix(out_file: str) -> list[str]:
    """What goes before a command to run it under callgrind, counting off, with address
    randomisation off where `setarch` can turn it off."""
    argv = [*CALLGRIND, f"--callgrind-out-file={out_file}"]
    return (["setarch", "-R", *argv] if shutil.which("setarch") else argv)


_THREAD_TOTAL = re.compile(r"^\s*Th\s+\d+\s+([\d,]+)\s*$", re.MULTILINE)


def parse_totals(output: str) -> int:
    """The instructions (Ir) callgrind_control -e reports, summed over the threads.

        PID 6076: python -m servers ...

          Totals:        Ir
           Th 1  74,277,083
    """
    if "instrumentation is switched off" in output:
        raise CallgrindError("callgrind had counting switched off when asked for its totals")
    if "Totals:" not in output:
        raise CallgrindError(f"no totals in callgrind_control's answer: {output.strip()[:200]}")
    counts = _THREAD_TOTAL.findall(output.split("Totals:", 1)[1])
    if not counts:
        raise CallgrindError(f"no per-thread totals: {output.strip()[:200]}")
    return sum(int(c.replace(",", "")) for c in counts)


def control(pid: int, *args: str) -> str:
    """One callgrind_control command to a process under callgrind; its answer."""
    try:
        done = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True,
                              text=True, timeout=CONTROL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CallgrindError(f"callgrind_control {' '.join(args)} {pid} did not answer "
                             f"within {CONTROL_TIMEOUT_S} s") from None
    if done.returncode != 0 or "Error" in done.stdout:
        raise CallgrindError(f"callgrind_control {' '.join(args)} {pid} failed: "
                             f"{(done.stdout + done.stderr).strip()[:200]}")
    return done.stdout


@dataclass(frozen=True)
class Window:
    requests: int
    counts: dict[int, int]  # pid -> instructions counted in the window
    # pid -> seconds from its zeroing to its reading (what its timers ran for)
    seconds: dict[int, float]


class Client:
    """One keep-alive connection sending GET /items, one request at a time, each with the
    next of `headers` in turn; any answer but 200 is an error."""

    def __init__(self, port: int, headers: Sequence[dict[str, str]]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = list(headers) or [{}]
        self.sent = 0

    def send(self, count: int) -> None:
        for _ in range(count):
            self.connection.request("GET", "/items",
                                    headers=self.headers[self.sent % len(self.headers)])
            answer = self.connection.getresponse()
            answer.read()
            self.sent += 1
            if answer.status != 200:
                raise CallgrindError(f"GET /items answered {answer.status} under callgrind")

    def close(self) -> None:
        self.connection.close()


def settle(pids: Sequence[int], timeout: float = SETTLE_TIMEOUT_S) -> None:
    """Until no process in `pids` has run for QUIET_S: each is back waiting for input."""
    deadline = time.monotonic() + timeout
    before = [cpu_ns(pid) for pid in pids]
    while True:
        time.sleep(QUIET_S)
        after = [cpu_ns(pid) for pid in pids]
        if None in after:
            raise CallgrindError(f"a counted process ended: {list(pids)}")
        if after == before:
            return
        if time.monotonic() > deadline:
            raise CallgrindError(f"processes {list(pids)} did not settle (no CPU for "
                                 f"{QUIET_S * 1000:.0f} ms) within {timeout} s")
        before = after


@contextlib.contextmanager
def counting(pids: Sequence[int]) -> Iterator[dict[int, float]]:
    """Counting on for every process, each settled, then zeroed: gives when each was
    zeroed; counting off at the end."""
    for pid in pids:
        control(pid, "-i", "on")
    try:
        settle(pids)
        zeroed: dict[int, float] = {}
        for pid in pids:
            control(pid, "-z")
            zeroed[pid] = time.monotonic()
        yield zeroed
    finally:
        for pid in pids:
            control(pid, "-i", "off")


def read_totals(pids: Sequence[int], zeroed: dict[int, float]
                ) -> tuple[dict[int, int], dict[int, float]]:
    """Each process's instructions since it was zeroed, and the seconds since."""
    counts: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for pid in pids:
        seconds[pid] = time.monotonic() - zeroed[pid]
        counts[pid] = parse_totals(control(pid, "-e", "Ir"))
    return counts, seconds


def count_windows(client: Client, pids: Sequence[int], lengths: Sequence[int], repeats: int
                  ) -> dict[int, list[Window]]:
    """`repeats` rounds of one window of each length in turn, in one stretch of counting:
    every process settled, then its totals read, after each window; a window is the
    difference of two readings. The windows by length.

    One reading a window, where zeroing and switching counting on and off for each took four
    calls of callgrind_control (about 0.2 s each here): three rounds cost what one did."""
    windows: dict[int, list[Window]] = {n: [] for n in lengths}
    with counting(pids) as zeroed:
        before = {pid: 0 for pid in pids}
        since = {pid: 0.0 for pid in pids}
        for _ in range(repeats):
            for n in lengths:
                client.send(n)
                settle(pids)
                counts, seconds = read_totals(pids, zeroed)
                windows[n].append(Window(n, {p: counts[p] - before[p] for p in pids},
                                         {p: seconds[p] - since[p] for p in pids}))
                before, since = counts, seconds
    return windows


def idle_rates(pids: Sequence[int], seconds: float = IDLE_S) -> dict[int, float]:
    """Instructions a second each process spends with no request to serve: its timers
    (Redis's cron, ten times a second; session-memory's sweep, once)."""
    with counting(pids) as zeroed:
        time.sleep(seconds)
        counts, spans = read_totals(pids, zeroed)
    return {pid: counts[pid] / spans[pid] for pid in pids}


def per_request(shorts: Sequence[Window], longs: Sequence[Window], pid: int,
                idle_rate: float = 0.0) -> float:
    """What one more request cost a process: the median of the long windows' counts less
    the median of the short ones', over the difference of their lengths, with what its
    timers ran in each (`idle_rate` times the window's seconds) taken off. Medians, because
    a window now and then counts some hundreds of thousands of instructions more or fewer
    than its neighbours; one such window among three of a length does not move the figure."""
    for windows in (shorts, longs):
        if not windows or len({w.requests for w in windows}) != 1:
            raise ValueError("the short and the long windows: at least one each, each of "
                             "one length")
    if longs[0].requests <= shorts[0].requests:
        raise ValueError("the long windows must be longer than the short ones")

    def busy(windows: Sequence[Window]) -> float:
        return statistics.median(w.counts[pid] - idle_rate * w.seconds[pid] for w in windows)

    return (busy(longs) - busy(shorts)) / (longs[0].requests - shorts[0].requests)
