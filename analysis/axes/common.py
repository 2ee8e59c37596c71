"""What every verdict axis reads (`Evidence`), the words a verdict uses, and the rule shared
by the axes that compare the declared session-versus-token pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.load import Run
from analysis.stats import (
    EQUIVALENT,
    HIGHER,
    INCONCLUSIVE,
    LOWER,
    UNDETERMINED,
    has_interval,
    ratio_words,
)
from analysis.variants import Variants

# What an axis says of the claim. Every word is defined here, once.
YES = "yes"  # the token side better beyond the margin in every pair
NO = "no"  # the token side worse beyond the margin in every pair
NOT_MEASURED = "not measured"  # the run has no data for the axis
DEPENDS = "depends on the pair"  # pairs beyond the margin on different sides
# The pairs of one token library say one thing, those of another library another.
DEPENDS_ON_LIBRARY = "depends on the library"
# Every interval on one side of 1.0, some crossing the margin: a difference that is there,
# of a size not settled against the margin. Said as "<token side> lower in every pair, by
# an amount not settled at ±10%".
NOT_SETTLED = "by an amount not settled"
ONLY_WITHOUT_SHARED_STORE = "only without a shared store"
# A pair whose cells cannot be compared: too few requests for the percentile, or every
# cell generator-bound.
TOO_FEW = "not comparable"
# "No measurable difference" means the whole interval on the ratio lies within this.
EQUIVALENCE_MARGIN = 0.10


@dataclass(frozen=True)
class Evidence:
    """Everything the axes judge from: the run, each variant's figures, the declared pairs,
    the pair comparisons over the common-rate rounds (auth time, latency), the duet's
    ratios and its A/A controls, the instruction counts, the live-user steps (analysis.
    growth: steps, trends, margins) and the login storms."""

    run: Run
    figures: dict[str, dict[str, Any]]
    pairs: list[dict[str, str]]
    rounds: list[dict[str, Any]]
    duet: list[dict[str, Any]]
    controls: dict[str, dict[str, Any] | None]
    instructions: dict[str, dict[str, Any]]
    growth: dict[str, Any]
    storms: pd.DataFrame
    memory_bytes: int | None

    @property
    def variants(self) -> Variants:
        return self.run.variants


def row(axis: str, holds: str, sessions: str = "", tokens: str = "", detail: str = "",
        **extra: Any) -> dict[str, Any]:
    return {"axis": axis, "holds": holds, "sessions": sessions, "tokens": tokens,
            "detail": detail, **extra}


def not_measured(axis: str, why: str = "this run has no data for it") -> dict[str, Any]:
    return row(axis, NOT_MEASURED, detail=why)


def fmt_items(items: list[tuple[str, Any]], pattern: str) -> str:
    return ", ".join(f"{v}: {pattern.format(x)}" for v, x in items)


def describe(verdict: str, token: str) -> str:
    return {LOWER: f"{token} lower", HIGHER: f"{token} higher"}.get(verdict, verdict)


def one_side(rows: list[dict[str, Any]]) -> str | None:
    """`lower` or `higher` when every pair's interval lies on that side of 1.0."""
    if rows and all(r["ratio_high"] < 1 for r in rows):
        return LOWER
    if rows and all(r["ratio_low"] > 1 for r in rows):
        return HIGHER
    return None


def answers_differ(rows: list[dict[str, Any]], good: str, bad: str) -> bool:
    """Whether some pair is decided one way while another, even unsettled, cannot end that
    way: its interval does not reach beyond the margin on that side (a pair worse by
    [1.08, 1.13] at ±10% is not settled, yet cannot be better)."""
    def reaches(r: dict[str, Any], side: str) -> bool:
        if side == LOWER:
            return r["ratio_low"] < 1 - r["margin"]
        return r["ratio_high"] > 1 + r["margin"]
    return any(any(r["verdict"] == side for r in rows)
               and any(r["verdict"] != side and not reaches(r, side) for r in rows)
               for side in (good, bad))


def pair_axis(axis: str, rows: list[dict[str, Any]], pattern: str, better: str,
              extra_detail: Callable[[dict[str, Any]], str] = lambda r: "",
              library_of: Callable[[str], str | None] = lambda token: None
              ) -> dict[str, Any]:
    """One verdict axis from its pair comparisons (token / session): the claim holds where
    the token side is better beyond the margin in every pair (lower, or higher where higher
    is better), fails where it is worse in every pair, is no measurable difference where
    every pair's interval lies within the margin. Where every interval lies on one side of
    1.0 but some cross the margin, it says that, not a bare "inconclusive". Pairs whose
    tokens different libraries verify are judged library by library: where those
    verdicts differ, the axis says which conclusion depends on the library."""
    if not rows:
        return not_measured(axis, "no pair measured on this axis")
    libraries = list(dict.fromkeys(library_of(r["token"]) for r in rows))
    if len(libraries) > 1:
        judged = {lib: pair_axis(axis, [r for r in rows if library_of(r["token"]) == lib],
                                 pattern, better, extra_detail) for lib in libraries}
        words = {lib: j["holds"] for lib, j in judged.items()}
        holds = next(iter(words.values())) if len(set(words.values())) == 1 else (
            f"{DEPENDS_ON_LIBRARY}: " + "; ".join(f"with {lib}, {h}"
                                                 for lib, h in words.items()))
        merged = pair_axis(axis, rows, pattern, better, extra_detail)
        return {**merged, "holds": holds, "by_library": words}
    verdicts = {r["verdict"] for r in rows}
    if TOO_FEW in verdicts:
        return row(axis, f"{UNDETERMINED} ({rows[0]['detail']})", detail="; ".join(
            f"{r['token']} / {r['session']}: {r.get('detail') or r['verdict']}"
            for r in rows))
    good, bad = (HIGHER, LOWER) if better == "higher" else (LOWER, HIGHER)
    side = one_side(rows)
    if verdicts == {good}:
        holds = YES
    elif verdicts == {bad}:
        holds = NO
    elif verdicts == {EQUIVALENT}:
        holds = EQUIVALENT
    elif UNDETERMINED in verdicts:
        holds = f"{UNDETERMINED} (one repetition: no interval)"
    elif side is not None:
        holds = f"tokens {side} in every pair, {NOT_SETTLED} at ±{rows[0]['margin']:.0%}"
    elif verdicts <= {LOWER, HIGHER, EQUIVALENT} or answers_differ(rows, good, bad):
        words = {good: YES, bad: NO, EQUIVALENT: EQUIVALENT, INCONCLUSIVE: "not settled"}
        holds = f"{DEPENDS}: " + "; ".join(
            f"{words[v]} for " + ", ".join(f"{r['session']} → {r['token']}" for r in rows
                                           if r["verdict"] == v)
            for v in (good, bad, EQUIVALENT, INCONCLUSIVE) if v in verdicts)
    else:
        holds = INCONCLUSIVE
    detail = "; ".join(
        f"{r['token']} / {r['session']}: {pair_words(r)}: {describe(r['verdict'], r['token'])}"
        + extra_detail(r) for r in rows)
    sessions = {r["session"]: r["session_median"] for r in rows}
    tokens = {r["token"]: r["token_median"] for r in rows}
    return row(axis, holds, fmt_items(list(sessions.items()), pattern),
               fmt_items(list(tokens.items()), pattern), detail)


def pair_words(r: dict[str, Any]) -> str:
    """A pair's ratio, its interval and how that was made (duet windows, or paired rounds of
    slices), or why it has none."""
    duet = r.get("windows") is not None
    words = ratio_words(r["ratio"], r["ratio_low"], r["ratio_high"], r["pairs"], "{:.2f}",
                        "duet window" if duet else "round")
    if not has_interval(r["ratio_low"], r["ratio_high"], r["pairs"]):
        return words
    made = "95%" if duet else f"{r['coverage']:.1%} coverage"
    return f"{words} ({made}, {r['pairs']} {'duet windows' if duet else 'pairs'})"


def library_of(e: Evidence) -> Callable[[str], str | None]:
    """Which library verifies a token variant's tokens (None for old runs' facts)."""
    return lambda token: e.variants.facts.get(token, {}).get("library")
