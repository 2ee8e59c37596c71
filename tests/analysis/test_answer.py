"""README's answer is the reference's, and compare compares like with like only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.__main__ import readme_text
from analysis.answer import README_END, README_START, deployment_line, replace_block, who_wins
from analysis.compare import NOT_COMPARABLE, compare, unlike
from analysis.load import Run

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
REFERENCE = REPO_ROOT / "results" / "reference"


def test_readme_gives_the_reference_answer_word_for_word() -> None:
    """Every figure of README's answer comes from the committed reference: regenerated from
    it, the block is the same (`python -m analysis readme results/reference README.md`)."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme[readme.index(README_START):readme.index(README_END) + len(README_END)]
    assert block == readme_text(Run(REFERENCE), "results/reference")
    # The answer comes first: the block opens within the first 20 lines.
    assert readme.index(README_START) < len("\n".join(readme.splitlines()[:20]))


def test_the_block_is_replaced_and_nothing_else() -> None:
    text = f"head\n{README_START}\nold\n{README_END}\ntail\n"
    assert replace_block(text, f"{README_START}\nnew\n{README_END}") == \
        f"head\n{README_START}\nnew\n{README_END}\ntail\n"


def duet(ratio: float, low: float, high: float) -> dict[str, Any]:
    return {"ratio": ratio, "ratio_low": low, "ratio_high": high, "n": 12,
            "half_width": (high - low) / 2 / ratio}


def test_the_shared_store_line_says_who_wins_from_the_intervals_only() -> None:
    """Token / session: CPU per request and capacity per core both beyond the ±10% margin
    in the token's favour, or the session's, or neither."""
    assert who_wins(duet(0.76, 0.75, 0.77), duet(1.19, 1.15, 1.23)) == "the token wins"
    assert who_wins(duet(1.30, 1.25, 1.35), duet(0.75, 0.70, 0.80)) == "the session wins"
    assert who_wins(duet(1.00, 0.97, 1.03), duet(1.01, 0.98, 1.04)) == \
        "no measurable difference"
    # One interval reaching into the margin settles nothing.
    assert who_wins(duet(0.85, 0.80, 0.92), duet(1.19, 1.15, 1.23)) == \
        "not settled by this run"
    assert who_wins(duet(0.76, 0.75, 0.77), None) == "not settled by this run"


def test_the_shared_store_line_is_undetermined_when_the_a_a_control_strays() -> None:
    ratios = [{"a": "session-redis", "b": "jwt-hs256", "phase": phase, **duet(*r)}
              for phase, r in (("rate", (0.76, 0.75, 0.77)), ("flat", (1.19, 1.15, 1.23)))]
    trusted = {"duet": {"ratios": ratios}, "verdict": {"axes": []}}
    assert "**Against a shared session store: the token wins.**" in deployment_line(trusted)
    strayed = {"duet": {"ratios": ratios}, "verdict": {"axes": [
        {"axis": "CPU per request (server + Redis CPU time)",
         "holds": "undetermined (the A/A control strayed beyond ±3%)"}]}}
    assert "**Against a shared session store: undetermined (as above).**" in \
        deployment_line(strayed)


def summary(rate: float, counted: float) -> dict[str, Any]:
    figures = {"cpu_us_per_request": 300.0, "cpu_us_per_request_interval": [290.0, 310.0],
               "target_rps": rate, "instructions_per_request": counted}
    return {"variants": {"jwt-hs256": figures}, "verdict": {"axes": []}}


def test_compare_says_what_it_cannot_compare() -> None:
    # CPU per request falls with the rate: measured at 700 and 1,620 req/s it is not
    # compared, and no verdict word is given; the instruction count is.
    rows = {r["figure"]: r for r in compare(summary(700, 600e3), summary(1620, 640e3))}
    cpu = rows["cpu_us_per_request"]
    assert cpu["verdict"] == NOT_COMPARABLE and "700 and 1,620 req/s" in cpu["why"]
    assert rows["instructions_per_request"]["verdict"] == "worse"  # 6.7% more: beyond 1%
    same = {r["figure"]: r for r in compare(summary(700, 600e3), summary(700, 603e3))}
    assert same["instructions_per_request"]["verdict"] == "no measurable difference"
    assert same["cpu_us_per_request"]["verdict"] == "no measurable difference"
    # Other software: counts are not compared; another machine: timed figures are not.
    base = json.loads((REFERENCE / "manifest.json").read_text())
    other = {**base, "versions": {**base["versions"], "pyjwt": "9.9.9"}}
    reasons = unlike(base, other)
    assert "pyjwt" in reasons["counted"] and "timed" not in reasons
    rows = {r["figure"]: r for r in compare(summary(700, 600e3), summary(700, 603e3),
                                            reasons)}
    assert rows["instructions_per_request"]["verdict"] == NOT_COMPARABLE
    moved = {**base, "machine": {**base["machine"], "cpu_model": "another CPU"}}
    assert "different machines" in unlike(base, moved)["timed"]
