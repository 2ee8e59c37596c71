"""The rule of the two axes the duet measures (capacity per core, CPU per request): each
declared pair's ratio token / session from windows where both servers shared one core at
once, read against the margin, beside the instruction counts' ratio as a cross-check that
does not move with the day; and the A/A control, without which the duet is not trusted."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import (
    EQUIVALENCE_MARGIN,
    Evidence,
    library_of,
    not_measured,
    pair_axis,
    row,
)
from analysis.duet import AA_BOUND
from analysis.instructions import ratio as instruction_ratio
from analysis.stats import EQUIVALENT, HIGHER, LOWER, UNDETERMINED, Difference, GeoMean


def side_of(value: float, margin: float) -> str:
    """Where a ratio lands against the margin: lower, higher, or within it."""
    if value < 1 - margin:
        return LOWER
    if value > 1 + margin:
        return HIGHER
    return EQUIVALENT


def comparisons(e: Evidence, axis: str, phase: str, better: str) -> list[dict[str, Any]]:
    """The declared pairs' duet ratios on one phase, as pair comparisons (token / session),
    each with the instruction counts' ratio and whether the two land on the same side of
    the margin."""
    found = []
    for pair in e.pairs:
        session, token = pair["session"], pair["token"]
        ratio = next((r for r in e.duet if r["a"] == session and r["b"] == token
                      and r["phase"] == phase), None)
        if ratio is None:
            continue
        d = Difference(GeoMean.of(ratio), EQUIVALENCE_MARGIN)
        counted = instruction_ratio(e.instructions, session, token)
        # Capacity goes as the inverse of the work per request.
        predicted = None if counted is None else (1 / counted if better == "higher"
                                                  else counted)
        predicted_side = side_of(predicted, EQUIVALENCE_MARGIN) if predicted else None
        verdict = d.verdict
        found.append({
            "session": session, "token": token, "reason": pair["reason"], "axis": axis,
            "figure": ratio["figure"], "better": better,
            "session_median": ratio["a_median"], "token_median": ratio["b_median"],
            **d.as_dict(), "windows": ratio["n"], "left_out": ratio["left_out"],
            "rate": ratio["rate"], "half_width": ratio["half_width"],
            "instruction_ratio": predicted, "instruction_side": predicted_side,
            "instructions_agree": None if predicted_side is None or verdict not in (
                LOWER, HIGHER, EQUIVALENT) else predicted_side == verdict})
    return found


def cross_check(r: dict[str, Any]) -> str:
    if r.get("instruction_ratio") is None:
        return "; instructions not counted"
    words = f"; instructions {r['instruction_ratio']:.2f}x"
    if r["instructions_agree"] is False:
        words += (f" ({r['instruction_side']} at the ±{r['margin']:.0%} margin: the "
                  "instruction count, the server's user space alone, misses the kernel's "
                  "and any Redis's work that the duet's CPU time holds; the verdict is "
                  "the duet's)")
    return words


def duet_axis(e: Evidence, axis: str, phase: str, pattern: str, better: str
              ) -> dict[str, Any]:
    """The axis from the duet, gated on the A/A control of the same phase."""
    rows = comparisons(e, axis, phase, better)
    if not rows:
        return not_measured(axis, "no declared pair measured in a duet")
    control = e.controls.get(phase)
    judged = pair_axis(axis, rows, pattern, better, cross_check, library_of(e))
    if control is None:
        judged["detail"] += "; no A/A control in this run"
        return judged
    floor = f"A/A control {control['a']} against itself {GeoMean.of(control).words()}"
    if not control["holds"]:
        why = (f"strayed beyond ±{AA_BOUND:.0%}: the duet could not be trusted on this "
               "machine that day") if control["n"] >= 2 else \
            "gives no noise floor to judge the duet by"
        return row(axis, f"{UNDETERMINED} (the {floor} {why})",
                   judged["sessions"], judged["tokens"], judged["detail"])
    judged["detail"] += f"; {floor}, within ±{AA_BOUND:.0%}"
    return judged
