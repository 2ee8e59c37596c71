"""README's answer is the reference's, and compare compares like with like only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.__main__ import readme_text
from analysis.answer import README_END, README_START, replace_block
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
