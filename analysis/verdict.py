"""The verdict on the claim: every axis judged by its own module (analysis.axes), and a
short conclusion built only from what they said."""

from __future__ import annotations

from typing import Any

from analysis.axes import AXES
from analysis.axes.common import (
    DEPENDS,
    DEPENDS_ON_LIBRARY,
    EQUIVALENCE_MARGIN,
    NOT_MEASURED,
    NOT_SETTLED,
    ONLY_WITHOUT_SHARED_STORE,
    Evidence,
)
from analysis.stats import EQUIVALENT, INCONCLUSIVE, UNDETERMINED

CLAIM = ("token based authentication scales better than that of a session because tokens "
         "are stored on the client side while session makes use of the server memory so it "
         "might become an issue when there is a large number of users using the system at "
         "once.")


def verdict(e: Evidence) -> dict[str, Any]:
    """One row per axis, each with the measured numbers and whether the claim holds there;
    an axis this run could not measure says so."""
    rows = [axis.judge(e) for axis in AXES]
    return {"claim": CLAIM, "axes": rows, "conclusion": conclusion(rows),
            "equivalence_margin": EQUIVALENCE_MARGIN, "pairs": e.pairs}


def conclusion(axes: list[dict[str, Any]]) -> str:
    """A short plain-language conclusion built only from the axis rows. With an axis not
    measured, no overall verdict: a claim is not judged on the axes that happened to run."""
    def named(test: Any) -> list[str]:
        return [a["axis"] + ("" if a["holds"] in ("yes", "no", EQUIVALENT) else
                             f" ({a['holds']})") for a in axes if test(a["holds"])]

    holds = named(lambda h: h == "yes")
    fails = named(lambda h: h == "no")
    conditional = named(lambda h: h == ONLY_WITHOUT_SHARED_STORE)
    ties = named(lambda h: h == EQUIVALENT)
    by_library = named(lambda h: h.startswith(DEPENDS_ON_LIBRARY))
    unsettled = named(lambda h: NOT_SETTLED in h and not h.startswith(DEPENDS_ON_LIBRARY))
    by_pair = named(lambda h: h.startswith(DEPENDS))
    open_ = named(lambda h: h.startswith((UNDETERMINED, INCONCLUSIVE)))
    missing = [a["axis"] for a in axes if a["holds"] == NOT_MEASURED]
    parts = []
    if holds:
        parts.append("The claim holds on " + ", ".join(holds) + ".")
    if conditional:
        parts.append("It holds conditionally on " + ", ".join(conditional) + ".")
    if fails:
        parts.append("It does not hold on " + ", ".join(fails) + ".")
    if unsettled:
        parts.append("A difference against the claim, of a size not settled, on "
                     + ", ".join(unsettled) + ".")
    if by_library:
        parts.append("Which token library verifies decides " + ", ".join(by_library) + ".")
    if by_pair:
        parts.append("Which sessions the tokens are weighed against decides "
                     + ", ".join(by_pair) + ".")
    if ties:
        parts.append(f"There is no measurable difference (within ±{EQUIVALENCE_MARGIN:.0%}) "
                     "on " + ", ".join(ties) + ".")
    if open_:
        parts.append("Not decided: " + ", ".join(open_) + ".")
    memory = next((a for a in axes if a["axis"] == "memory per live user"
                   and a["holds"] != NOT_MEASURED), None)
    if memory is not None:
        parts.append("Memory: " + memory["detail"] + ".")
    if missing:
        return (f"No overall verdict: this run did not measure {', '.join(missing)}. "
                + " ".join(parts)).strip()
    if holds and not (fails or conditional or unsettled or by_library or by_pair):
        overall = "true on every axis measured"
    elif holds or conditional:
        overall = "true only on " + ", ".join(holds + conditional)
    else:
        overall = "true on no axis measured"
    return f"Overall: {overall}. " + " ".join(parts)
