"""What Locust does not record for us, recorded in every Locust process and merged on the master.

- every response time at full precision (microseconds) in an HDR histogram per request name,
  beside the server's own auth time from `Server-Timing`;
- the reads (GET requests) second by second, in an HDR histogram per second of the measured
  window, so latency over time is read in microseconds too;
- the CPU of each Locust process once a second (a generator-bound run must be flagged);
- revocation observations (how long a logged-out credential kept working).

Workers ship their deltas with each stats report (`report_to_master`); the master merges them
(`worker_report`) and writes the files next to Locust's own CSVs when it quits.
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import gevent
import psutil
from hdrh.histogram import HdrHistogram
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.atomic import write_csv
from loadtests.hdrfiles import (
    HIGHEST_US,
    LOWEST_US,
    new_histogram,
    write_histograms,
    write_timeline,
    write_window,
)

_SERVER_TIMING = re.compile(r"auth;dur=([0-9.]+)")
CPU_SAMPLE_SECONDS = 1.0
WINDOW_MESSAGE = "authscale_window"
REVOCATION_COLUMNS = ("variant", "host", "logout_at", "window_s", "probes",
                      "refused_after_s", "resolution_s", "expires_after_s")


class Recorder:
    """One per Locust process; the master's (or a lone process's) writes the files."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.process_id = "local"
        self.latency: dict[str, HdrHistogram] = defaultdict(new_histogram)
        self.auth: dict[str, HdrHistogram] = defaultdict(new_histogram)
        # Reads, by whole second since measure_from.
        self.timeline: dict[int, HdrHistogram] = defaultdict(new_histogram)
        self.cpu_samples: list[tuple[float, str, int, float]] = []
        self.revocations: list[dict[str, Any]] = []
        self._sampler: gevent.Greenlet | None = None
        # Requests started before measure_from (the warm-up) are not recorded.
        self.test_start = 0.0
        self.measure_from = 0.0
        self.test_stop: float | None = None
        # Distributed: the master's measure_from, so every process measures one window
        # (workers on other machines need synchronised clocks for this to hold).
        self.master_measure_from: float | None = None
        events = environment.events
        events.request.add_listener(self.on_request)
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.report_to_master.add_listener(self.on_report_to_master)
        events.worker_report.add_listener(self.on_worker_report)
        events.quit.add_listener(self.on_quit)
        if isinstance(environment.runner, WorkerRunner):
            environment.runner.register_message(WINDOW_MESSAGE, self.on_window_message)

    def on_window_message(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.master_measure_from = float(msg.data["measure_from"])

    # -- recording, in every process that runs users
    def on_request(self, request_type: str, name: str, response_time: float,
                   response: Any = None, start_time: float | None = None, **_: Any) -> None:
        if start_time is not None and start_time < self.measure_from:
            return
        key = f"{request_type} {name}"
        latency_us = max(LOWEST_US, min(HIGHEST_US, round(response_time * 1000)))
        self.latency[key].record_value(latency_us)
        if request_type == "GET" and start_time is not None:
            self.timeline[int(start_time - self.measure_from)].record_value(latency_us)
        timing = response.headers.get("Server-Timing") if response is not None and \
            response.headers else None
        if timing:
            match = _SERVER_TIMING.search(timing)
            if match:
                us = round(float(match.group(1)) * 1000)
                self.auth[key].record_value(max(LOWEST_US, min(HIGHEST_US, us)))

    def record_revocation(self, observation: dict[str, Any]) -> None:
        self.revocations.append(observation)

    def on_test_start(self, environment: Environment, **_: Any) -> None:
        if isinstance(environment.runner, WorkerRunner):
            self.process_id = environment.runner.client_id
        elif isinstance(environment.runner, MasterRunner):
            self.process_id = "master"
        self.test_start = time.time()
        self.measure_from = self.test_start + getattr(environment.parsed_options, "warmup", 0.0)
        if isinstance(environment.runner, MasterRunner):
            # Sent before the workers are told to spawn, so they have it at their start.
            environment.runner.send_message(WINDOW_MESSAGE, {"measure_from": self.measure_from})
        elif self.master_measure_from is not None:
            self.measure_from = self.master_measure_from
            self.master_measure_from = None
        self.test_stop = None
        self.latency.clear()
        self.auth.clear()
        self.timeline.clear()
        self.cpu_samples.clear()
        self.revocations.clear()
        if self._sampler is None:
            self._sampler = gevent.spawn(self._sample_cpu)

    def on_test_stop(self, environment: Environment, **_: Any) -> None:
        # The window ends where the measurement was meant to (not when shutdown finished).
        duration = getattr(environment.parsed_options, "duration", 0.0)
        end = self.measure_from + duration if duration else time.time()
        self.test_stop = min(time.time(), end)
        if self._sampler is not None:
            self._sampler.kill(block=False)
            self._sampler = None

    def _sample_cpu(self) -> None:
        process = psutil.Process()
        process.cpu_percent(None)
        while True:
            gevent.sleep(CPU_SAMPLE_SECONDS)
            self.cpu_samples.append((time.time(), self.process_id, os.getpid(),
                                     process.cpu_percent(None)))

    # -- distributed: workers ship deltas, the master adds them up
    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data["authscale"] = {
            "latency": {k: h.encode().decode() for k, h in self.latency.items()},
            "auth": {k: h.encode().decode() for k, h in self.auth.items()},
            "timeline": {str(k): h.encode().decode() for k, h in self.timeline.items()},
            "cpu": self.cpu_samples,
            "revocations": self.revocations,
        }
        self.latency.clear()
        self.auth.clear()
        self.timeline.clear()
        self.cpu_samples = []
        self.revocations = []

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        shipped = data.get("authscale")
        if not shipped:
            return
        for target, kind in ((self.latency, "latency"), (self.auth, "auth")):
            for key, encoded in shipped[kind].items():
                target[key].add(HdrHistogram.decode(encoded.encode()))
        for second, encoded in shipped["timeline"].items():
            self.timeline[int(second)].add(HdrHistogram.decode(encoded.encode()))
        self.cpu_samples.extend(tuple(s) for s in shipped["cpu"])
        self.revocations.extend(shipped["revocations"])

    # -- output, by the master or a lone process
    def on_quit(self, exit_code: int, **_: Any) -> None:
        if isinstance(self.environment.runner, WorkerRunner):
            return
        prefix = getattr(self.environment.parsed_options, "csv_prefix", None)
        if prefix:
            self.write(Path(prefix))

    def write(self, prefix: Path) -> None:
        write_histograms(prefix, self.latency, self.auth)
        write_window(prefix, self.test_start, self.measure_from,
                     self.test_stop or time.time())
        cpu_columns = ("timestamp", "process", "pid", "cpu_percent")
        write_csv(Path(f"{prefix}_generator_cpu.csv"), cpu_columns,
                  (dict(zip(cpu_columns, s, strict=True)) for s in sorted(self.cpu_samples)))
        write_csv(Path(f"{prefix}_revocation.csv"), REVOCATION_COLUMNS, self.revocations)
        write_timeline(prefix, self.timeline)
