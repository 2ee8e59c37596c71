"""The report built from a small real run recorded under tests/data/run."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from analysis import instructions, plan
from analysis.__main__ import build
from analysis.__main__ import main as analysis_main
from analysis.compare import compare
from analysis.figures import memory_fits
from analysis.load import Measurement, Run, merged, percentiles_us
from analysis.report.appendix import placement_sentence, timers_words, windows_words
from analysis.report.users import primed_words
from analysis.summary import summarize

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DATA = Path(__file__).resolve().parent.parent / "data" / "run"


@pytest.fixture(scope="module")
def data_run() -> Run:
    """The recorded run, read once for the tests that only read it."""
    return Run(DATA)


@pytest.fixture(scope="module")
def data_summary(data_run: Run) -> dict[str, Any]:
    return summarize(data_run)


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    """A writable copy of the recorded run (the report is written into the run folder)."""
    target = tmp_path / DATA.name
    shutil.copytree(DATA, target)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the recorded run with its report built, once, for the tests that read it."""
    target = tmp_path_factory.mktemp("built") / DATA.name
    shutil.copytree(DATA, target)
    build(target, users=1e6, rps=1e4, requests_per_day=1e8)
    return target


def test_recorded_run_is_real_and_complete(data_run: Run) -> None:
    run = data_run
    assert run.manifest["status"] == "complete"
    table = run.table
    assert set(table["experiment"]) == {"latency", "network", "population", "connections",
                                        "churn", "replicas", "revocation"}
    assert (table["status"] == "ok").all()
    assert (table["measured_requests"] > 0).all()
    # The generator's floor ran beside the variants at the common rate, and the duet and
    # the instruction counts are there too.
    assert "nginx" in set(table["variant"]) and "nginx" not in run.variants.facts
    assert {p.parent.parent.name for p in run.path.glob("raw/duet/*/*/duet.json")} == {
        "session-memory__session-memory", "session-memory__jwt-hs256",
        "session-redis__jwt-hs256"}
    assert len(list(run.path.glob("raw/instructions/*/*/instructions.json"))) == 6


def test_percentiles_from_histograms_by_hand() -> None:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in range(100, 1001, 100):  # 100, 200, ..., 1000 µs
        histogram.record_value(value)
    p = percentiles_us(histogram)
    assert p["p50"] == 500  # the 5th of 10 values
    assert p["p90"] == 900
    assert p["p99"] == pytest.approx(1000, rel=1e-3)
    assert merged([histogram, histogram]).get_total_count() == 20
    assert np.isnan(percentiles_us(None)["p50"])


def test_run_percentiles_match_the_raw_histograms(data_run: Run) -> None:
    """Locust's reads (GET /me and GET /items, merged) and the fast generator's (GET
    /items), each read back from the files its generator wrote."""
    run = data_run
    churn = run.measurements("churn")[0]
    raw = json.loads((churn.folder / "locust_hdr.json").read_text())["histograms"]
    reads = [HdrHistogram.decode(raw[name]["latency"].encode()) for name in ("GET /me",
                                                                              "GET /items")]
    both = merged(reads)
    assert row_of(run, churn)["latency_us_p50"] == both.get_value_at_percentile(50)
    assert row_of(run, churn)["measured_requests"] == sum(h.get_total_count() for h in reads)
    fast = next(m for m in run.measurements("latency") if m.record.generator == "loadgen")
    items = HdrHistogram.decode(json.loads((fast.folder / "loadgen_hdr.json").read_text())[
        "histograms"]["GET /items"]["latency"].encode())
    assert row_of(run, fast)["latency_us_p99"] == items.get_value_at_percentile(99)
    assert row_of(run, fast)["generator"] == "loadgen"


def row_of(run: Run, m: Measurement) -> Any:
    return run.table[run.table["folder"] == str(m.folder.relative_to(run.path))].iloc[0]


def test_bytes_per_session_is_the_least_squares_slope(data_run: Run) -> None:
    run = data_run
    population = run.population
    rows = population[population["variant"] == "session-memory"]
    x = rows["live_sessions"].to_numpy(dtype=float)
    y = rows["server_rss_bytes"].to_numpy(dtype=float)
    # By hand: slope = sum((x - xbar)(y - ybar)) / sum((x - xbar)^2).
    expected = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    fit = memory_fits(run)["session-memory"]["total"]
    assert fit is not None
    assert fit.slope == pytest.approx(expected)
    assert 200 < fit.slope < 5000  # a Python dict entry per session: hundreds of bytes
    stateless = memory_fits(run)["jwt-hs256"]["total"]
    assert stateless is not None and abs(stateless.slope) < fit.slope / 4


def test_summary_has_every_promised_figure(data_summary: dict[str, Any]) -> None:
    summary = data_summary
    for variant, figures in summary["variants"].items():
        for key in ("bytes_per_session", "auth_us_p50", "auth_us_p99", "latency_ms_p50",
                    "latency_ms_p99", "rps", "error_rate", "header_bytes", "logout_revokes"):
            assert key in figures, (variant, key)
    assert summary["variants"]["session-redis"]["logout_revokes"] is True
    assert summary["variants"]["jwt-hs256"]["logout_revokes"] is False
    assert summary["variants"]["none"]["logout_revokes"] is None
    axes = {a["axis"] for a in summary["verdict"]["axes"]}
    assert "memory per live user" in axes and "bytes on the wire per request" in axes
    # A small run: three windows a step leave the growth axis's A/A wide, and a 3 s storm
    # meets no full collection; both axes say so, and the conclusion lists them undecided.
    conclusion = summary["verdict"]["conclusion"]
    assert conclusion.startswith("Overall: ")
    assert "Not decided: service as live users grow (undetermined (" in conclusion
    assert "the collector's pauses as live users grow (undetermined (session-memory's storm " \
           "at 30,000 live users met no full collection" in conclusion
    assert {(r["variant"], r["remedy"]) for r in summary["storms"]} == {
        ("session-memory", ""), ("session-memory", "gc.freeze"), ("none", ""),
        ("jwt-hs256", "")}
    steps = {(r["variant"], r["population"]) for r in summary["growth"]["steps"]}
    assert steps == {(v, n) for v in ("none", "session-memory", "session-redis", "jwt-hs256")
                     for n in (1000, 10_000, 30_000)}


@pytest.mark.slow
def test_report_files_and_charts(built: Path) -> None:
    summary = json.loads((built / "summary.json").read_text())
    assert summary["variants"]
    charts = sorted((built / "charts").glob("*.png"))
    assert len(charts) == 11
    for chart in charts:
        assert chart.stat().st_size > 5_000, chart
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (built / "report.md").read_text()
    for chart in charts:
        assert f"charts/{chart.name}" in markdown
    assert "## The answer" in markdown and "Threats to validity" in markdown
    assert "auth µs p50, alone" not in markdown  # no calibration in the run: none shown
    appendices = [line.split(".")[0] for line in markdown.splitlines()
                  if line.startswith("## Appendix ")]
    assert appendices == [f"## Appendix {c}" for c in "ABCDEFGHI"[:len(appendices)]]
    html = (built / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 11
    assert "src=\"charts/" not in html  # self-contained


@pytest.mark.slow
def test_report_shows_the_calibration_the_run_used(run_copy: Path) -> None:
    # Without one, none is shown (test_report_files_and_charts). A real calibration
    # (`make calibrate` on the reference machine, run 20261127T222752Z-calibrate), kept in
    # the run folder as bench does.
    shutil.copy(DATA.parent / "calibration.json", run_copy)
    build(run_copy, users=1e6, rps=1e4, requests_per_day=1e8)
    markdown = (run_copy / "report.md").read_text()
    assert "| variant | auth µs p50, alone | capacity req/s | limited by |" in markdown
    assert "| jwt-hs256 | auth p50 / PyJWT decode HS256 |" in markdown


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed "
                    "(.ci/run installs it; apt-get install chromium)")
@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(built: Path, tmp_path: Path) -> None:
    # A copy of the page with a probe appended: it titles the page with how many images
    # decoded, so --dump-dom tells us without a driver.
    page = (built / "report.html").read_text()
    probe = ("<script>window.addEventListener('load',()=>{const i=[...document.images];"
             "document.title='decoded:'+i.filter(x=>x.complete&&x.naturalWidth>0).length+"
             "'/'+i.length;});</script>")
    target = tmp_path / "probe.html"
    target.write_text(page.replace("</body>", probe + "</body>"))
    done = subprocess.run(
        [str(chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=5000", "--dump-dom", target.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    charts = page.count("data:image/png;base64,")
    assert charts == len(list((built / "charts").glob("*.png"))) > 0
    assert f"<title>decoded:{charts}/{charts}</title>" in done.stdout
    console_errors = [line for line in done.stderr.splitlines()
                      if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)]
    assert not console_errors


def test_compare_finds_a_planted_change_and_not_noise(data_summary: dict[str, Any]) -> None:
    base = data_summary
    assert all(r["verdict"] == "no measurable difference" for r in compare(base, base))
    noisy = json.loads(json.dumps(base))
    for figures in noisy["variants"].values():  # jitter inside every interval: noise
        for key, value in list(figures.items()):
            interval = figures.get(f"{key}_interval")
            if isinstance(value, float) and interval and None not in interval:
                figures[key] = (interval[0] + interval[1]) / 2
    assert all(r["verdict"] == "no measurable difference" for r in compare(base, noisy))
    planted = json.loads(json.dumps(base))
    slow = planted["variants"]["jwt-hs256"]
    _, high = slow["auth_us_p50_interval"]
    slow["auth_us_p50"] *= 3
    slow["auth_us_p50_interval"] = [high * 2, high * 4]
    moved = [r for r in compare(base, planted) if r["verdict"] != "no measurable difference"]
    assert [(r["variant"], r["figure"], r["verdict"]) for r in moved] == [
        ("jwt-hs256", "auth_us_p50", "worse")]


@pytest.mark.slow
def test_cli_rebuilds_from_raw_data_alone(run_copy: Path, data_summary: dict[str, Any]
                                         ) -> None:
    for produced in ("summary.json", "report.md", "report.html"):
        (run_copy / produced).unlink(missing_ok=True)
    shutil.rmtree(run_copy / "charts", ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "analysis", str(run_copy)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (run_copy / "report.html").exists()
    compare_run = subprocess.run([sys.executable, "-m", "analysis", "compare", str(run_copy),
                                  str(run_copy)], capture_output=True, text=True, timeout=300)
    assert compare_run.returncode == 0
    # A run against itself: nothing moved, out of every figure compared (the copy's
    # summary is the recorded run's).
    summary = data_summary
    compared = len(compare(summary, summary))
    assert compared > 0
    assert f"\n0 of {compared} figures compared moved beyond their noise; 0 could not be " \
        "compared" in compare_run.stdout
    axes = len(summary["verdict"]["axes"])
    assert f"\n{axes} of {axes} axes give the same verdict." in compare_run.stdout


def test_cli_error_for_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "analysis", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not a run folder" in done.stderr


def assert_one_line_error(done: subprocess.CompletedProcess[str], names: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert names in lines[0], lines[0]


def in_process(capsys: pytest.CaptureFixture[str], *args: str | Path
               ) -> subprocess.CompletedProcess[str]:
    """The CLI's `main` run here, its exit code and output as a subprocess's would be: the
    same code path without a new interpreter importing pandas and matplotlib each time (the
    real command line runs in the tests above)."""
    code = analysis_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["python", "-m", "analysis", *map(str, args)], code,
                                       out, err)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated measurement", "corrupt histogram",
                                 "missing histograms", "garbled manifest", "nothing measured"])
def test_a_broken_run_folder_is_a_one_line_error(run_copy: Path, how: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    measurement = sorted(run_copy.glob("raw/latency/*/*/measurement.json"))[0]
    hdr = measurement.parent / "loadgen_hdr.json"  # the fast generator's, read by its name
    if how == "truncated measurement":
        broken = measurement
        measurement.write_text(measurement.read_text()[:40])
    elif how == "corrupt histogram":
        broken = hdr
        data = json.loads(hdr.read_text())
        name = next(iter(data["histograms"]))
        data["histograms"][name]["latency"] = "SGVsbG8gd29ybGQ="
        hdr.write_text(json.dumps(data))
    elif how == "missing histograms":
        broken = hdr
        hdr.unlink()
    elif how == "garbled manifest":
        broken = run_copy / "manifest.json"
        broken.write_bytes(b"\x00\xff{{")
    else:
        broken = run_copy
        shutil.rmtree(run_copy / "raw")
    assert_one_line_error(in_process(capsys, run_copy), str(broken))
    # Comparing with it names the same file, from either side.
    assert_one_line_error(in_process(capsys, "compare", DATA, run_copy), str(broken))
    assert_one_line_error(in_process(capsys, "compare", run_copy, DATA), str(broken))
REFERENCE = REPO_ROOT / "results" / "reference"


def same_figures(a: Any, b: Any) -> bool:
    """Equal, floats to within 1e-9 relative: a least-squares fit's last bits differ
    between CPUs (seen: 1e-16 relative between an Intel and an AMD machine)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_figures(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_figures(x, y) for x, y in zip(a, b, strict=True))
    return a == b  # type: ignore[no-any-return]


def test_the_committed_reference_rebuilds_figure_by_figure() -> None:
    """results/reference holds what its figures are built from: rebuilding its summary from
    the committed raw data gives the committed summary, every figure."""
    committed = json.loads((REFERENCE / "summary.json").read_text())
    rebuilt = json.loads(json.dumps(summarize(Run(REFERENCE))))
    assert set(rebuilt["variants"]) == set(committed["variants"])
    for variant, figures in committed["variants"].items():
        for key, value in figures.items():
            assert same_figures(rebuilt["variants"][variant][key], value), (variant, key)
    assert same_figures(rebuilt["pairs"], committed["pairs"])
    assert rebuilt["verdict"] == committed["verdict"]
    assert same_figures(rebuilt, committed)
    assert Run(REFERENCE).measurement_list, "the reference keeps its measurement folders"


def test_knee_capacity_and_cpu_model_from_the_fast_generator(data_run: Run,
                                                             data_summary: dict[str, Any]
                                                             ) -> None:
    """The recorded run's latency experiment ran on the fast generator in its three phases:
    flat out, common rates, the knee. Every figure comes from its cells."""
    table = data_run.table
    latency = table[table["experiment"] == "latency"]
    assert set(latency["generator"]) == {"loadgen"}
    assert set(latency["phase"]) == {"saturation", "common", "knee"}
    for name, f in data_summary["variants"].items():
        if name not in set(latency["variant"]):
            continue
        # Flat out, the server's core was the limit, not the generator's.
        assert f["capacity_rps"] > 1000 and f["capacity_server_cpu_percent"] > 80
        assert f["capacity_generator_cpu_max"] < 80
        # CPU per request is the server's plus its Redis's, never less than either part.
        redis = f["redis_cpu_us_per_request"] or 0.0
        assert f["cpu_us_per_request"] == pytest.approx(f["server_cpu_us_per_request"] + redis,
                                                        rel=0.02)
        assert (redis > 0) == (name == "session-redis")
        # The model: a marginal cost per request under what a request costs at the lowest
        # rate (where the fixed cost is spread thinnest), and a fixed cost under one core.
        model = f["cpu_model"]
        assert 0 < model["marginal_us"] < f["cpu_us_per_request"] * 2
        assert model["fixed_cores"] < 1
    knee = pd.DataFrame(data_summary["knee_curve"])
    assert sorted(set(knee["fraction"])) == [0.5, 1.0]
    half = knee[knee["fraction"] == 0.5]
    # At half its capacity every variant served what it was offered.
    assert (half["achieved_rps"] >= 0.9 * half["target_rps"]).all()


def test_the_planner_by_hand(data_run: Run, data_summary: dict[str, Any]) -> None:
    """python -m analysis plan's figures, worked out by hand from the recorded run: servers
    at the knee's highest point within 20 ms, session memory, Redis from its ceiling, and
    money at the stated prices."""
    e = plan.evidence(data_run, data_summary)
    prices = plan.Prices()
    users, rps = 2_000_000, 5_000
    rows = {r["design"]: r for r in plan.plan(e, users, rps, 0.5, prices)}
    knee = pd.DataFrame(data_summary["knee_curve"])
    for design in ("session-memory", "jwt-hs256"):
        mine = knee[(knee["variant"] == design) & (knee["p99_ms"] <= 20)
                    & (knee["achieved_rps"] >= 0.95 * knee["target_rps"])]
        capacity = float(mine["target_rps"].max())
        assert rows[design]["capacity_per_server"] == capacity
        assert rows[design]["servers"] == math.ceil(rps / capacity)
        assert rows[design]["servers_usd"] == pytest.approx(
            rows[design]["servers"] * 0.04 * 730)
    memory = rows["session-memory"]
    per_user = data_summary["variants"]["session-memory"]["server_bytes_per_session"]
    assert memory["session_memory_gib"] == pytest.approx(per_user * users / 2**30)
    assert memory["sticky_routing"] and not rows["jwt-hs256"]["sticky_routing"]
    # The token keeps nothing per user and asks no Redis.
    assert rows["jwt-hs256"]["redis_cores"] == 0 and rows["jwt-hs256"]["redis_usd"] == 0
    # The bill is its parts; the network column stays apart.
    token = rows["jwt-hs256"]
    assert token["total_usd"] == pytest.approx(
        token["servers_usd"] + token["server_memory_usd"] + token["redis_usd"])
    assert token["network_usd"] == pytest.approx(
        data_summary["variants"]["jwt-hs256"]["header_bytes"] * rps * 730 * 3600 / 1e9 * 0.09)
    text = plan.render(list(rows.values()), users, rps, 0.5, prices, "run")
    assert "2,000,000 live users at 5,000 requests/s" in text
    assert "session-memory (sticky routing)" in text


def test_a_round_trip_to_redis_adds_at_least_itself() -> None:
    """A run's network cells can read a p50 lower through an added round trip than directly
    (the reference of 4 December 2026, 03:25, did for jwt-hs256-revocable: these p50s), yet
    each request still waits for its one answer from Redis: the planner adds at least the
    round trip."""
    e = plan.evidence(Run(REFERENCE), json.loads((REFERENCE / "summary.json").read_text()))
    noisy = pd.DataFrame({"variant": ["jwt-hs256-revocable"] * 3, "rtt_ms": [0.0, 0.2, 1.0],
                          "p50_ms": [3.537, 1.857, 3.057]})
    e = dataclasses.replace(e, network=noisy)
    for rtt in (0.1, 0.5, 1.0, 3.0):
        assert plan.added_latency_ms(e, "jwt-hs256-revocable", rtt)[0] >= rtt
    assert plan.added_latency_ms(e, "jwt-hs256", 0.5) == (0.0, False)


def test_report_says_where_the_servers_ran() -> None:
    # A native run says nothing more; a run of make bench-compose names the engine, the
    # images and the limits the engine reported (as ContainerSupervisor.placement gives).
    assert placement_sentence({"servers": "local processes"}) == ""
    sentence = placement_sentence({
        "servers": "containers",
        "engine": {"name": "podman", "version": "4.3.1", "compose": "docker-compose"},
        "images": {"python": "localhost/authscale-base:bookworm", "redis": "redis:7.0-alpine"},
        "limits": {"server-none": {"cpus": 1.0, "cpuset": "0", "memory_bytes": 4 * 2**30}},
        "generators": "local processes on the generator's core"})
    assert sentence.startswith("Servers and Redis ran in containers (podman 4.3.1 through "
                               "docker-compose;")
    assert "`localhost/authscale-base:bookworm`" in sentence and "`redis:7.0-alpine`" in sentence
    assert "server-none {'cpus': 1.0, 'cpuset': '0'" in sentence
    assert sentence.endswith("the load generators as local processes on the generator's core. ")


def test_the_instruction_table_says_whether_timers_were_taken_off(run_copy: Path) -> None:
    # The recorded run predates taking the timers off: its Redis column is an upper bound.
    assert "did not take the processes' timers off" in timers_words(
        instructions.processes(run_copy))
    for path in run_copy.glob("raw/instructions/*/*/instructions.json"):
        record = json.loads(path.read_text())
        for side in ("server", "redis"):
            if record.get(side):
                record[side]["idle_per_second"] = 1000.0
        path.write_text(json.dumps(record))
    assert "measured after the windows, taken off each window" in timers_words(
        instructions.processes(run_copy))


def test_the_instruction_table_says_how_many_rounds_of_windows_counted(run_copy: Path) -> None:
    # The recorded run predates the rounds: one short and one long window per process.
    assert windows_words(instructions.processes(run_copy)).startswith(
        "two windows of a fixed number")
    for path in run_copy.glob("raw/instructions/*/*/instructions.json"):
        record = json.loads(path.read_text())
        record["repeats"] = 3
        path.write_text(json.dumps(record))
    assert windows_words(instructions.processes(run_copy)).startswith(
        "3 rounds of a short and a long window of a fixed number of requests sent one at a "
        "time, the difference of the medians of their counts")


def test_the_connections_table_says_whether_every_connection_had_served_a_read() -> None:
    primed = pd.DataFrame({"primed": [True, True]})
    assert "served one read before the warm-up" in primed_words(primed)
    # A run from before the generator primed its connections: its figure undercounts.
    older = pd.DataFrame({"primed": [False, False]})
    assert "undercount a used one's" in primed_words(older)
