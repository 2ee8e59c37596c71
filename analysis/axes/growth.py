"""Service as live users grow: at each population step, a variant's grown server against
itself at the fewest live users, on one core at once (analysis.growth): capacity per core,
CPU per request, and p99. A step is worse beyond the margin when its whole interval lies
past it on the bad side (capacity below 1 - margin, CPU or p99 above 1 + margin), no worse
when its interval reaches no further than the margin on that side. The margin is the run's
own (analysis.growth.margins): the widest of its A/A intervals (each variant's first step),
no narrower than a stated floor. Capacity and CPU per request are always judged, and where
their A/A strays past twice the floor the axis is undetermined; p99 (a tail from about a
thousand reads a window, the noisiest of the three) is judged where its A/A holds, and
otherwise shown and said not judged.

The claim holds where some server-side session store serves worse beyond the margin as its
live users grow and no stateless token does; it fails where no server-side store does (and
every step says so) or the tokens do too; otherwise the run cannot say, and the axis says
by how much its intervals are too wide."""

from __future__ import annotations

from typing import Any

from analysis.axes.common import NO, YES, Evidence, not_measured, row
from analysis.growth import FIGURE_NAMES
from analysis.stats import UNDETERMINED, GeoMean

AXIS = "service as live users grow"
# Always judged; p99 as well where its A/A control holds.
JUDGED = ("capacity", "cpu")
TAIL = "p99"
WORSE, NOT_WORSE, OPEN = "worse", "no worse", "open"


def step_state(r: dict[str, Any], margin: float) -> str:
    """One step against the fewest: worse beyond the margin, no worse, or open."""
    if r["n"] < 2:
        return OPEN
    if r["better"] == "higher":
        return WORSE if r["ratio_high"] < 1 - margin else (
            NOT_WORSE if r["ratio_low"] >= 1 - margin else OPEN)
    return WORSE if r["ratio_low"] > 1 + margin else (
        NOT_WORSE if r["ratio_high"] <= 1 + margin else OPEN)


def variant_state(steps: list[dict[str, Any]], margins: dict[str, float],
                  figures: tuple[str, ...]) -> str:
    """A variant worse if any later step is, no worse if every later step of every judged
    figure is, else open (later: every step beyond the fewest)."""
    states = [step_state(r, margins[r["figure"]]) for r in steps]
    if not steps or len({r["figure"] for r in steps}) < len(figures):
        return OPEN
    if WORSE in states:
        return WORSE
    return NOT_WORSE if all(s == NOT_WORSE for s in states) else OPEN


def later_steps(e: Evidence, variant: str, figures: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r for r in e.growth.get("steps", []) if r["variant"] == variant
            and r["figure"] in figures and r["population"] > r["fewest"]]


def judge(e: Evidence) -> dict[str, Any]:
    found = e.growth.get("margins", {})
    margins = {f: m["margin"] for f, m in found.items()}
    measured = {r["variant"] for r in e.growth.get("steps", [])}
    sessions = [v for v in e.variants.server_sessions if v in measured]
    tokens = [v for v in e.variants.stateless_tokens if v in measured]
    if not sessions or not tokens:
        return not_measured(AXIS)
    tail_judged = bool((found.get(TAIL) or {}).get("trusted"))
    figures = (*JUDGED, TAIL) if tail_judged else JUDGED
    states = {v: variant_state(later_steps(e, v, figures), margins, figures)
              for v in measured}
    untrusted = [f for f in JUDGED if not (found.get(f) or {}).get("trusted")]
    if untrusted:
        holds = f"{UNDETERMINED} (" + "; ".join(
            f"the A/A control's {FIGURE_NAMES[f]} {noise(found.get(f))}"
            for f in untrusted) + ")"
    elif any(states[v] == WORSE for v in sessions) and \
            all(states[v] == NOT_WORSE for v in tokens):
        holds = YES
    elif all(states[v] == NOT_WORSE for v in sessions) or \
            any(states[v] == WORSE for v in tokens):
        holds = NO
    else:
        steady = [v for v in sessions + tokens
                  if variant_state(later_steps(e, v, JUDGED), margins, JUDGED) == NOT_WORSE]
        holds = f"{UNDETERMINED} (" + ("capacity and CPU per request no worse in every "
                                       "variant; " if len(steady) == len(sessions + tokens)
                                       else "") \
            + f"{why_open(e, sessions + tokens, states, margins, figures)})"
    if not tail_judged and not holds.startswith(UNDETERMINED):
        holds += (f" (from capacity and CPU per request; p99 not judged: the A/A control's "
                  f"{noise(found.get(TAIL))})")

    def words(v: str) -> str:
        return f"{v}: {states[v]}, " + "; ".join(
            f"{r['figure']} at {r['population']:,} {interval(r)}"
            for r in later_steps(e, v, (*JUDGED, TAIL)))

    others = [v for v in e.variants.ordered(measured) if v not in sessions + tokens]
    return row(AXIS, holds, "; ".join(words(v) for v in sessions),
               "; ".join(words(v) for v in tokens),
               f"each step's server against itself at the fewest live users, on one core at "
               f"once; worse means the whole interval past the run's margin (capacity "
               f"±{margins.get('capacity', 0):.0%}, CPU per request "
               f"±{margins.get('cpu', 0):.0%}, p99 ±{margins.get('p99', 0):.0%}, the "
               f"widest A/A interval or the stated floor, whichever is wider)"
               + ("; beside them: " + "; ".join(words(v) for v in others) if others else ""),
               states=states, margins=margins)


def noise(found: dict[str, Any] | None) -> str:
    """Why an A/A control did not hold, in words."""
    if not found or found.get("aa") is None:
        return "has no interval (too few windows or reads)"
    return (f"strayed ±{found['aa']:.0%}, past twice the ±{found['floor']:.0%} margin: this "
            "run's noise hides any change worth reporting")


def why_open(e: Evidence, variants: list[str], states: dict[str, str],
             margins: dict[str, float], figures: tuple[str, ...]) -> str:
    """What keeps the axis open: a step that kept too few windows for an interval, else the
    widest interval that reaches past its margin, or a variant measured at one step only."""
    open_steps = [r for v in variants if states[v] == OPEN
                  for r in later_steps(e, v, figures)
                  if step_state(r, margins[r["figure"]]) == OPEN]
    if not open_steps:
        alone = next(v for v in variants if states[v] == OPEN)
        return f"{alone} was measured at one number of live users only"
    bare = [r for r in open_steps if r["n"] < 2]
    if bare:
        others = len(bare) - 1
        more = f", and {others} more such step{'s' if others > 1 else ''}" if others else ""
        return (f"too few windows for an interval: {step_words(bare[0])}, "
                f"{interval(bare[0])}{more}")
    widest = max(open_steps, key=lambda r: r["half_width"])
    return (f"the widest interval, {step_words(widest)}, {interval(widest)}, reaches past the "
            f"±{margins[widest['figure']]:.0%} margin")


def step_words(r: dict[str, Any]) -> str:
    return f"{r['variant']}'s {FIGURE_NAMES[r['figure']]} at {r['population']:,} live users"


def interval(r: dict[str, Any]) -> str:
    if r["n"] == 0:
        return "not measured (no window held enough reads)"
    return GeoMean.of(r).words("{:.2f}")
