"""Read a run folder (as `make bench` writes it) into tidy pandas DataFrames.

The one place that knows the run folder's layout, and the shape of the measurement record
the runner writes beside each measurement (`MeasurementRecord`). Pure reading: nothing
here writes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.variants import Variants

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# What the figures are built from, and so what a packed copy of a run keeps (`python -m
# analysis pack`): the run-wide files, then each measurement's. The rest of a run folder
# (Locust's own CSVs, logs) is for whoever debugs that run.
RUN_FILES = ("manifest.json", "verify.json", "calibration.json", "raw/wire.csv",
             "raw/primitives.csv", "raw/population/population.csv", "raw/outage/outage.csv",
             "raw/overload/overload.csv", "raw/network/rtt.csv", "raw/network/forwarder.csv",
             "raw/store_ceiling/ceiling.csv")
# The experiments whose raw data is not one measurement.json per folder: the duet's windows
# (the declared pairs', and the population's steps with each side's histograms) and the
# instruction counts.
RUN_GLOBS = ("raw/duet/*/*/duet.json", "raw/duet/*/*/schedstat.csv",
             "raw/population/*/*/duet.json", "raw/population/*/*/schedstat.csv",
             "raw/population/*/*/[ab]/loadgen_hdr.json",
             "raw/instructions/*/*/instructions.json")
MEASUREMENT_FILES = ("measurement.json", "locust_hdr.json", "locust_window.json",
                     "locust_generator_cpu.csv", "locust_revocation.csv", "locust_timeline.csv",
                     "loadgen_hdr.json", "loadgen_window.json", "loadgen_timeline.csv",
                     "samples-*.csv")
# Runs made before manifests recorded their variants' facts get these.
LEGACY_VARIANTS = Path(__file__).with_name("legacy_variants.json")
# The requests that are "a protected read": what latency figures are about.
# The login's request name, the same from either generator (kept apart from the reads).
LOGIN_REQUEST = "POST /login"
WRITE_REQUESTS = (LOGIN_REQUEST, "POST /logout")


class RunFolderError(Exception):
    """A run folder that is missing a file the figures need, or holds one that cannot be
    read; the message names the file and is one line."""


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path}: not readable JSON ({one_line(exc)})") from None


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV of the run folder; an empty DataFrame when it is absent or empty."""
    if not path.exists() or not path.stat().st_size:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pandas' parser errors too
        raise RunFolderError(f"{path}: not a readable CSV ({one_line(exc)})") from None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def decode(encoded: str | None, where: Path | None = None) -> HdrHistogram | None:
    if not encoded:
        return None
    try:
        return HdrHistogram.decode(encoded.encode())
    except Exception as exc:  # hdrhistogram raises bare errors (zlib, base64, struct)
        raise RunFolderError(f"{where}: a histogram that cannot be decoded "
                             f"({type(exc).__name__})") from None


def merged(histograms: list[HdrHistogram | None]) -> HdrHistogram | None:
    present = [h for h in histograms if h is not None and h.get_total_count() > 0]
    if not present:
        return None
    total = HdrHistogram(present[0].lowest_trackable_value,
                         present[0].highest_trackable_value,
                         present[0].significant_figures)
    for histogram in present:
        total.add(histogram)
    return total


def read_histograms(path: Path) -> dict[tuple[str, str], HdrHistogram | None]:
    """Each (request name, latency|auth) histogram of a generator's `*_hdr.json`, decoded."""
    data = read_json(path)
    if not isinstance(data, dict) or "histograms" not in data:
        raise RunFolderError(f"{path}: no histograms in it")
    return {(name, kind): decode(entry.get(kind), path)
            for name, entry in data["histograms"].items() for kind in ("latency", "auth")}


def requests(decoded: dict[tuple[str, str], HdrHistogram | None], kind: str = "latency",
             reads_only: bool = True) -> HdrHistogram | None:
    """Every request of `decoded` (only protected reads by default), merged."""
    return merged([h for (name, k), h in decoded.items()
                   if k == kind and not (reads_only and name in WRITE_REQUESTS)])


def percentiles_us(histogram: HdrHistogram | None) -> dict[str, float]:
    if histogram is None:
        return {f"p{p:g}": np.nan for p in PERCENTILES}
    return {f"p{p:g}": float(histogram.get_value_at_percentile(p)) for p in PERCENTILES}


def peak_rss(samples: pd.DataFrame, before: float | None = None) -> int:
    """The server's highest RSS in a measurement's samples (those taken before `before`)."""
    if "server_rss_bytes" not in samples:
        return 0
    if before is not None:
        samples = samples[samples["timestamp"] < before]
    rss = samples["server_rss_bytes"].dropna()
    return int(rss.max()) if len(rss) else 0


def longest_full_pause_ms(samples: pd.DataFrame) -> float:
    """The longest full collection between a server's first and last sample, in ms (0 for
    none): between two samples (half a second apart) with one full collection, its pause
    exactly; with more (never seen: each waits for the store to grow by a quarter), their
    sum, an upper bound."""
    count = samples["gc_full_pauses"].astype(float).diff().iloc[1:]
    seconds = samples["gc_full_pause_seconds"].astype(float).diff().iloc[1:]
    met = seconds[count > 0]
    return float(met.max()) * 1e3 if len(met) else 0.0


@dataclass
class MeasurementRecord:
    """What was asked of one measurement and how it went: its `measurement.json`.

    Stored flat: the experiment's own details (`info`: population size, routing, ...) sit
    beside the common fields, as every run so far has written them.
    """

    experiment: str
    variant: str
    label: str
    repetition: int
    scenario: str = ""
    target_rps: float = 0.0
    rate_model: str = ""
    users: int = 0
    warmup_s: float = 0.0
    duration_s: float = 0.0
    hosts: list[str] = field(default_factory=list)
    pinning: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    folder: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    ended_at: str | None = None
    # "locust", or "loadgen" (the fast generator); runs before it were all Locust's.
    generator: str = "locust"
    generator_exit_code: int | None = None
    error: str | None = None
    requests: int = 0
    failures: int = 0
    # "running" until the generator's results are read: "ok", or "failed".
    status: str = "running"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasurementRecord:
        known = {f.name for f in fields(cls)} - {"info"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   info={k: v for k, v in data.items() if k not in known})

    def as_dict(self) -> dict[str, Any]:
        flat = asdict(self)
        info = flat.pop("info")
        return {**{k: v for k, v in flat.items() if v is not None}, **info}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Measurement:
    """One measurement of a run folder: its record and its raw files (named after the
    generator that made them)."""

    folder: Path
    record: MeasurementRecord

    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.record.generator}_{suffix}"

    @cached_property
    def decoded(self) -> dict[tuple[str, str], HdrHistogram | None]:
        """Each (request name, latency|auth) histogram, decoded once."""
        path = self.path("hdr.json")
        if not path.exists():
            if self.record.ok:
                raise RunFolderError(f"{path}: missing (its measurement.json says it completed)")
            return {}
        return read_histograms(path)

    def histogram(self, kind: str = "latency", reads_only: bool = True) -> HdrHistogram | None:
        """Every recorded request (only protected reads by default), merged."""
        return requests(self.decoded, kind, reads_only)

    @cached_property
    def window(self) -> tuple[float, float]:
        path = self.path("window.json")
        if not path.exists():
            return (np.nan, np.nan)
        data = read_json(path)
        try:
            return float(data["measure_from"]), float(data["test_stop"])
        except (KeyError, TypeError, ValueError):
            raise RunFolderError(f"{path}: no measured window in it") from None

    @cached_property
    def samples(self) -> pd.DataFrame:
        frames = []
        for path in sorted(self.folder.glob("samples-*.csv")):
            frame = read_csv(path)
            frame["replica"] = int(path.stem.split("-")[1])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @cached_property
    def generator_cpu(self) -> pd.DataFrame:
        path = self.path("generator_cpu.csv")
        return read_csv(path)

    @cached_property
    def timeline(self) -> pd.DataFrame:
        """Reads second by second in microseconds, the whole seconds of the measured window
        only (requests sent while Locust was stopping are not the service's)."""
        frame = read_csv(self.path("timeline.csv"))
        start, stop = self.window
        if frame.empty or np.isnan(start):
            return frame
        return frame[frame["second"] < int(stop - start)]

    def cpu_seconds(self, column: str) -> float:
        """CPU time spent inside the measured window, interpolated from the samples of
        replica 0: the server's (`server_cpu_seconds`) or its Redis's (`redis_cpu_seconds`)."""
        samples = self.samples
        if samples.empty or column not in samples:
            return np.nan
        first = samples[samples["replica"] == 0].dropna(subset=[column])
        start, stop = self.window
        if len(first) < 2 or np.isnan(start):
            return np.nan
        cpu = np.interp([start, stop], first["timestamp"], first[column])
        return float(cpu[1] - cpu[0])

    def generator_cpu_max(self) -> float:
        """The generator's busiest second, percent of one core: Locust's own samples (all
        its processes), else the runner's samples of the fast generator."""
        generator = self.generator_cpu
        if not generator.empty:
            return float(generator.groupby("timestamp")["cpu_percent"].sum().max())
        samples = self.samples
        start, stop = self.window
        if samples.empty or "generator_cpu_percent" not in samples or np.isnan(start):
            return np.nan
        # A sample covers the time since the one before it: those ending inside the window
        # (or just after it, for a window shorter than the sampling interval).
        inside = samples[(samples["timestamp"] > start) & (samples["timestamp"] <= stop + 0.5)]
        return float(inside["generator_cpu_percent"].max()) if len(inside) else np.nan

    def gc_pauses(self) -> dict[str, float]:
        """The server's garbage-collector pauses over the measurement (warm-up included),
        from its /metrics (replica 0): how many, how long in all, how many full ones and
        how long they took, and the longest, when the longest the server has ever had came
        during it (NaN when an earlier one, a seeding say, was longer); that longest ever,
        seeding included; and the longest so far while serving (seeding left out; runs
        before 2 December 2026 lack it)."""
        figures = {"gc_pauses": np.nan, "gc_pause_ms": np.nan, "gc_full_pauses": np.nan,
                   "gc_full_pause_ms": np.nan, "gc_full_longest_ms": np.nan,
                   "gc_longest_pause_ms": np.nan, "gc_longest_ever_ms": np.nan,
                   "gc_service_longest_ms": np.nan}
        samples = self.samples
        if samples.empty or "gc_pauses" not in samples:
            return figures
        first = samples[samples["replica"] == 0].dropna(subset=["gc_pauses"])
        if len(first) < 2:
            return figures
        start, end = first.iloc[0], first.iloc[-1]
        figures["gc_pauses"] = float(end["gc_pauses"] - start["gc_pauses"])
        figures["gc_pause_ms"] = float(end["gc_pause_seconds"] - start["gc_pause_seconds"]) * 1e3
        figures["gc_full_pauses"] = float(end["gc_full_pauses"] - start["gc_full_pauses"])
        figures["gc_full_pause_ms"] = float(
            end["gc_full_pause_seconds"] - start["gc_full_pause_seconds"]) * 1e3
        figures["gc_full_longest_ms"] = longest_full_pause_ms(first)
        if end["gc_longest_pause_seconds"] > start["gc_longest_pause_seconds"]:
            figures["gc_longest_pause_ms"] = float(end["gc_longest_pause_seconds"]) * 1e3
        figures["gc_longest_ever_ms"] = float(end["gc_longest_pause_seconds"]) * 1e3
        if "gc_service_longest_seconds" in first and pd.notna(end["gc_service_longest_seconds"]):
            figures["gc_service_longest_ms"] = float(end["gc_service_longest_seconds"]) * 1e3
        return figures

    def login_figures(self) -> dict[str, float]:
        """The logins' latency in this measurement: count, p99 and longest (µs)."""
        logins = self.decoded.get((LOGIN_REQUEST, "latency"))
        if logins is None or not logins.get_total_count():
            return {"login_requests": 0, "login_us_p99": np.nan, "login_us_max": np.nan}
        return {"login_requests": logins.get_total_count(),
                "login_us_p99": float(logins.get_value_at_percentile(99)),
                "login_us_max": float(logins.get_max_value())}

    def row(self, run_path: Path) -> dict[str, Any]:
        """Its latency, auth, throughput and CPU figures (one row of Run.table)."""
        record = self.record
        latency = self.histogram("latency")
        auth = self.histogram("auth")
        start, stop = self.window
        seconds = stop - start if not np.isnan(start) else np.nan
        count = latency.get_total_count() if latency is not None else 0
        cpu_seconds = self.cpu_seconds("server_cpu_seconds")
        redis_cpu_seconds = self.cpu_seconds("redis_cpu_seconds")
        steal_seconds = self.cpu_seconds("server_core_steal_seconds")
        all_requests = self.histogram("latency", reads_only=False)
        # Served in the window: the fast generator counts the answers that arrived in it,
        # whenever due (`served`); for Locust, the requests recorded in it.
        total = int(record.info.get("served", all_requests.get_total_count()
                                    if all_requests is not None else 0))
        row = {
            "experiment": record.experiment, "variant": record.variant,
            "label": record.label, "repetition": record.repetition,
            "status": record.status, "target_rps": record.target_rps,
            "population": record.info.get("population"), "routing": record.info.get("routing"),
            # The latency experiment's phases (loadtests/experiments/latency.py): saturation,
            # common (equal rates for all) or knee; runs before phases were all common.
            "phase": record.info.get("phase", "common" if record.experiment == "latency"
                                     else None),
            "fraction": record.info.get("fraction"),
            # The population experiment's: over whose credentials its requests went, and
            # the remedy its server ran with, if any.
            "distribution": record.info.get("distribution"),
            "remedy": record.info.get("remedy", ""),
            # The connections experiment's: how many open at once.
            "connections": record.info.get("connections"),
            # ... and whether each served a read before the warm-up (runs from 4 December
            # 2026 on; before, a short cell left most of them unused).
            "primed": bool(record.info.get("primed", False)),
            # The network experiment's: the round trip added to each Redis call (ms).
            "rtt_ms": record.info.get("rtt_ms"),
            "server_rss_peak_bytes": peak_rss(self.samples),
            "capacity_rps": record.info.get("capacity_rps"),
            "requests": record.requests, "failures": record.failures,
            "unanswered": int(record.info.get("unanswered", 0)),
            "measured_requests": count,
            "achieved_rps": total / seconds if seconds and seconds > 0 else np.nan,
            "window_s": seconds,
            **{f"latency_us_{k}": v for k, v in percentiles_us(latency).items()},
            "latency_us_max": float(latency.get_max_value()) if count else np.nan,
            **{f"auth_us_{k}": v for k, v in percentiles_us(auth).items()},
            "server_cpu_us_per_request": (cpu_seconds * 1e6 / total if total else np.nan),
            "redis_cpu_us_per_request": (redis_cpu_seconds * 1e6 / total if total else np.nan),
            # All the CPU a request costs where it is measured: the server's and its Redis's.
            "cpu_total_us_per_request": ((cpu_seconds + np.nan_to_num(redis_cpu_seconds)) * 1e6
                                         / total if total else np.nan),
            "server_cpu_percent": (cpu_seconds * 100 / seconds
                                   if seconds and seconds > 0 else np.nan),
            # The server's core(s) taken by the hypervisor in the window (steal), percent.
            "server_core_steal_percent": (steal_seconds * 100 / seconds
                                          if seconds and seconds > 0 else np.nan),
            # Logins beside the reads (the population's churn; Locust's login scenarios):
            # how many were measured, their p99 and the longest.
            **self.login_figures(),
            "generator": record.generator,
            "generator_cpu_max": self.generator_cpu_max(),
            "folder": str(self.folder.relative_to(run_path)),
            **self.gc_pauses(),
        }
        row["error_rate"] = (row["failures"] / row["requests"]) if row["requests"] else np.nan
        return row


class Run:
    """A run folder: manifest, measurements and the experiment-wide raw files."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        if not (self.path / "manifest.json").exists():
            raise RunFolderError(f"{path} is not a run folder (no manifest.json)")

    @cached_property
    def manifest(self) -> dict[str, Any]:
        manifest = read_json(self.path / "manifest.json")
        if not isinstance(manifest, dict):
            raise RunFolderError(f"{self.path / 'manifest.json'}: not a run manifest")
        return manifest

    @cached_property
    def variants(self) -> Variants:
        facts = self.manifest.get("variants")
        if facts is None:
            facts = json.loads(LEGACY_VARIANTS.read_text())["variants"]
        return Variants(facts)

    @cached_property
    def verify(self) -> dict[str, Any]:
        path = self.path / "verify.json"
        return read_json(path) if path.exists() else {}

    @cached_property
    def measurement_list(self) -> list[Measurement]:
        found = []
        for path in sorted(self.path.glob("raw/*/*/*/measurement.json")):
            data = read_json(path)
            try:
                record = MeasurementRecord.from_dict(data)
            except (TypeError, AttributeError):
                raise RunFolderError(f"{path}: not a measurement record (experiment, variant, "
                                     f"label and repetition are required)") from None
            found.append(Measurement(path.parent, record))
        return found

    def require_data(self) -> None:
        """A run folder with nothing measured in it is an error, not an empty report."""
        if not self.measurement_list and self.population.empty and self.wire.empty:
            raise RunFolderError(f"{self.path}: nothing measured in it (no raw/*/*/*/"
                                 f"measurement.json, population.csv or wire.csv)")

    def measurements(self, experiment: str | None = None) -> list[Measurement]:
        return [m for m in self.measurement_list
                if experiment is None or m.record.experiment == experiment]

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per measurement, with its latency, auth, throughput and CPU figures."""
        return pd.DataFrame([m.row(self.path) for m in self.measurement_list])

    def csv(self, relative: str) -> pd.DataFrame:
        path = self.path / relative
        return read_csv(path)

    @cached_property
    def population(self) -> pd.DataFrame:
        """Memory against live users, one row per step of each grown server (runs before 3
        December 2026 had remedy rows too, kept out: the same sessions, out of the
        collector's reach, are compared by their pauses, not their memory)."""
        frame = self.csv("raw/population/population.csv")
        if "remedy" in frame:
            plain = frame["remedy"].isna() | (frame["remedy"].astype(str) == "")
            frame = frame[plain].drop(columns="remedy")
        return frame

    @cached_property
    def wire(self) -> pd.DataFrame:
        return self.csv("raw/wire.csv")

    @cached_property
    def revocations(self) -> pd.DataFrame:
        frames = []
        for m in self.measurements("revocation"):
            path = m.path("revocation.csv")
            if path.exists() and path.stat().st_size:
                frame = read_csv(path)
                frame["repetition"] = m.record.repetition
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def samples(self, experiment: str) -> pd.DataFrame:
        frames = []
        for m in self.measurements(experiment):
            frame = m.samples.copy()
            if frame.empty:
                continue
            frame["label"] = m.record.label
            frame["repetition"] = m.record.repetition
            frame["t"] = frame["timestamp"] - m.window[0]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
