"""The latency files a measurement leaves for the analysis (analysis/load.py reads them),
written the same way whichever generator measured: Locust (loadtests.swarm.recorder) or the
fast generator (loadtests.runner.loadgen).

- `<prefix>_hdr.json`: per request name, an HDR histogram of latency and one of the server's
  auth time (Server-Timing), in microseconds;
- `<prefix>_window.json`: when the generator started, and the measured window (Unix seconds);
- `<prefix>_timeline.csv`: the reads, second by second of the window.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from hdrh.histogram import HdrHistogram

from loadtests.atomic import write_csv, write_text

# 1 us to 60 s at 3 significant digits: 0.1% precision over the whole range.
LOWEST_US, HIGHEST_US, DIGITS = 1, 60_000_000, 3
TIMELINE_COLUMNS = ("second", "count", "p50_us", "p90_us", "p99_us", "max_us")


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def write_histograms(prefix: Path, latency: Mapping[str, HdrHistogram],
                     auth: Mapping[str, HdrHistogram]) -> None:
    def encoded(histograms: Mapping[str, HdrHistogram], name: str) -> tuple[int, str | None]:
        if name not in histograms:
            return 0, None
        return histograms[name].get_total_count(), histograms[name].encode().decode()

    entries = {}
    for name in sorted(set(latency) | set(auth)):
        count, latency_encoded = encoded(latency, name)
        auth_count, auth_encoded = encoded(auth, name)
        entries[name] = {"count": count, "latency": latency_encoded,
                         "auth_count": auth_count, "auth": auth_encoded}
    hdr = {"unit": "microseconds", "significant_digits": DIGITS, "histograms": entries}
    write_text(Path(f"{prefix}_hdr.json"), json.dumps(hdr, indent=1))


def write_window(prefix: Path, test_start: float, measure_from: float, test_stop: float) -> None:
    window = {"test_start": test_start, "measure_from": measure_from, "test_stop": test_stop}
    write_text(Path(f"{prefix}_window.json"), json.dumps(window))


def write_timeline(prefix: Path, timeline: Mapping[int, HdrHistogram]) -> None:
    write_csv(Path(f"{prefix}_timeline.csv"), TIMELINE_COLUMNS, (
        {"second": second, "count": h.get_total_count(),
         "p50_us": h.get_value_at_percentile(50), "p90_us": h.get_value_at_percentile(90),
         "p99_us": h.get_value_at_percentile(99), "max_us": h.get_max_value()}
        for second, h in sorted(timeline.items()) if second >= 0))
