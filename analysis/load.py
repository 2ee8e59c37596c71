"""Read a run folder (as `make bench` writes it) into tidy pandas DataFrames.

The one place that knows the run folder's layout. Pure reading: nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# The requests that are "a protected read": what latency figures are about.
WRITE_REQUESTS = ("POST /login", "POST /logout")


def decode(encoded: str | None) -> HdrHistogram | None:
    return HdrHistogram.decode(encoded.encode()) if encoded else None


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


def percentiles_us(histogram: HdrHistogram | None) -> dict[str, float]:
    if histogram is None:
        return {f"p{p:g}": np.nan for p in PERCENTILES}
    return {f"p{p:g}": float(histogram.get_value_at_percentile(p)) for p in PERCENTILES}


@dataclass
class Measurement:
    """One Locust run of a run folder: its record and its raw files."""

    folder: Path
    record: dict[str, Any]

    def path(self, suffix: str) -> Path:
        return self.folder / f"locust_{suffix}"

    @cached_property
    def hdr(self) -> dict[str, dict[str, Any]]:
        path = self.path("hdr.json")
        return json.loads(path.read_text())["histograms"] if path.exists() else {}

    @cached_property
    def decoded(self) -> dict[tuple[str, str], HdrHistogram | None]:
        """Each (request name, latency|auth) histogram, decoded once."""
        return {(name, kind): decode(entry[kind]) for name, entry in self.hdr.items()
                for kind in ("latency", "auth")}

    def histogram(self, kind: str = "latency", reads_only: bool = True) -> HdrHistogram | None:
        """Every recorded request (only protected reads by default), merged."""
        return merged([h for (name, k), h in self.decoded.items()
                       if k == kind and not (reads_only and name in WRITE_REQUESTS)])

    @cached_property
    def window(self) -> tuple[float, float]:
        path = self.path("window.json")
        if not path.exists():
            return (np.nan, np.nan)
        data = json.loads(path.read_text())
        return float(data["measure_from"]), float(data["test_stop"])

    @cached_property
    def samples(self) -> pd.DataFrame:
        frames = []
        for path in sorted(self.folder.glob("samples-*.csv")):
            frame = pd.read_csv(path)
            frame["replica"] = int(path.stem.split("-")[1])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @cached_property
    def generator_cpu(self) -> pd.DataFrame:
        path = self.path("generator_cpu.csv")
        return pd.read_csv(path) if path.exists() else pd.DataFrame()

    def server_cpu_seconds(self) -> float:
        """Server CPU time spent inside the measured window (interpolated, replica 0)."""
        samples = self.samples
        if samples.empty or "server_cpu_seconds" not in samples:
            return np.nan
        first = samples[samples["replica"] == 0].dropna(subset=["server_cpu_seconds"])
        start, stop = self.window
        if len(first) < 2 or np.isnan(start):
            return np.nan
        cpu = np.interp([start, stop], first["timestamp"], first["server_cpu_seconds"])
        return float(cpu[1] - cpu[0])

    def row(self, run_path: Path) -> dict[str, Any]:
        """Its latency, auth, throughput and CPU figures (one row of Run.table)."""
        record = self.record
        latency = self.histogram("latency")
        auth = self.histogram("auth")
        start, stop = self.window
        seconds = stop - start if not np.isnan(start) else np.nan
        count = latency.get_total_count() if latency is not None else 0
        cpu_seconds = self.server_cpu_seconds()
        all_requests = self.histogram("latency", reads_only=False)
        total = all_requests.get_total_count() if all_requests is not None else 0
        generator = self.generator_cpu
        row = {
            "experiment": record["experiment"], "variant": record["variant"],
            "label": record["label"], "repetition": record["repetition"],
            "status": record.get("status"), "target_rps": record.get("target_rps"),
            "population": record.get("population"), "routing": record.get("routing"),
            "requests": record.get("requests", 0), "failures": record.get("failures", 0),
            "measured_requests": count,
            "achieved_rps": total / seconds if seconds and seconds > 0 else np.nan,
            "window_s": seconds,
            **{f"latency_us_{k}": v for k, v in percentiles_us(latency).items()},
            **{f"auth_us_{k}": v for k, v in percentiles_us(auth).items()},
            "auth_us_mean": auth.get_mean_value() if auth is not None else np.nan,
            "server_cpu_us_per_request": (cpu_seconds * 1e6 / total if total else np.nan),
            "server_cpu_percent": (cpu_seconds * 100 / seconds
                                   if seconds and seconds > 0 else np.nan),
            "generator_cpu_max": (generator.groupby("timestamp")["cpu_percent"].sum().max()
                                  if not generator.empty else np.nan),
            "folder": str(self.folder.relative_to(run_path)),
        }
        row["error_rate"] = (row["failures"] / row["requests"]) if row["requests"] else np.nan
        return row


class Run:
    """A run folder: manifest, measurements and the experiment-wide raw files."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        if not (self.path / "manifest.json").exists():
            raise FileNotFoundError(f"{path} is not a run folder (no manifest.json)")

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())  # type: ignore[no-any-return]

    @cached_property
    def verify(self) -> dict[str, Any]:
        path = self.path / "verify.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @cached_property
    def measurement_list(self) -> list[Measurement]:
        found = []
        for path in sorted(self.path.glob("raw/*/*/*/measurement.json")):
            found.append(Measurement(path.parent, json.loads(path.read_text())))
        return found

    def measurements(self, experiment: str | None = None) -> list[Measurement]:
        return [m for m in self.measurement_list
                if experiment is None or m.record["experiment"] == experiment]

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per measurement, with its latency, auth, throughput and CPU figures."""
        return pd.DataFrame([m.row(self.path) for m in self.measurement_list])

    def csv(self, relative: str) -> pd.DataFrame:
        path = self.path / relative
        return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()

    @cached_property
    def population(self) -> pd.DataFrame:
        return self.csv("raw/population/population.csv")

    @cached_property
    def wire(self) -> pd.DataFrame:
        return self.csv("raw/wire.csv")

    @cached_property
    def revocations(self) -> pd.DataFrame:
        frames = []
        for m in self.measurements("revocation"):
            path = m.path("revocation.csv")
            if path.exists() and path.stat().st_size:
                frame = pd.read_csv(path)
                frame["repetition"] = m.record["repetition"]
                frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def samples(self, experiment: str) -> pd.DataFrame:
        frames = []
        for m in self.measurements(experiment):
            frame = m.samples.copy()
            if frame.empty:
                continue
            frame["label"] = m.record["label"]
            frame["repetition"] = m.record["repetition"]
            frame["t"] = frame["timestamp"] - m.window[0]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
