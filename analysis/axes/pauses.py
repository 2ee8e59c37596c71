"""The collector's pauses as live users grow: in a login storm at the same sizes and with
the same requests, the longest full collection of the server keeping sessions in its
process, against the control's (a server of the same application keeping nothing per
user) and the stateless tokens'. One pause against another, each from its own window,
carries this VM's changes of core speed (up to 1.9x): the store's counts as longer only
beyond FACTOR times the longest of the others and FLOOR_MS more; no longer when within
FLOOR_MS of them or shorter; between the two the run cannot say."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.axes.common import NO, YES, Evidence, not_measured, row
from analysis.stats import UNDETERMINED

AXIS = "the collector's pauses as live users grow"
FACTOR = 2.0
FLOOR_MS = 10.0


def storms_at(storms: pd.DataFrame, variants: list[str], size: int, remedy: str = ""
              ) -> pd.DataFrame:
    """The storms at `size` of `variants`, without the remedy unless one is named."""
    return storms[storms["variant"].isin(variants) & (storms["population"] == size)
                  & (storms["remedy"] == remedy)]


def longest(storms: pd.DataFrame, variants: list[str], size: int, remedy: str = ""
            ) -> tuple[str, float] | None:
    """The variant among `variants` whose storm at `size` met the longest full collection,
    and that pause in ms (0 where it met none); None where none of them met a storm there."""
    mine = storms_at(storms, variants, size, remedy)
    if mine.empty:
        return None
    top = mine.loc[mine["gc_full_longest_ms"].fillna(0).idxmax()]
    return str(top["variant"]), float(top["gc_full_longest_ms"] or 0.0)


def judge(e: Evidence) -> dict[str, Any]:
    storms = e.storms
    stores = list(e.variants.where(state="process"))
    others = [*e.variants.where(credential="none"), *e.variants.stateless_tokens]
    if storms.empty:
        return not_measured(AXIS)
    sizes = sorted(s for s in storms["population"].unique()
                   if longest(storms, stores, s) and longest(storms, others, s))
    if not sizes:
        return not_measured(AXIS, "no storm of an in-process store beside the control's or "
                                  "a token's")
    # The largest size whose in-process store met a full collection decides; a larger
    # storm that met none (too short for the quarter's growth one waits for) is said apart.
    met_at = [s for s in sizes if storms_at(storms, stores, s)["gc_full_pauses"].fillna(0).any()]
    size = (met_at or sizes)[-1]
    store, store_ms = longest(storms, stores, size)  # type: ignore[misc]
    other, other_ms = longest(storms, others, size)  # type: ignore[misc]
    met = storms_at(storms, [store], size).iloc[0]
    if not met["gc_full_pauses"]:
        holds = (f"{UNDETERMINED} ({store}'s storm at {size:,} live users met no full "
                 f"collection: {short_words(met)})")
    elif store_ms > FACTOR * other_ms and store_ms - other_ms > FLOOR_MS:
        holds = YES
    elif store_ms - other_ms <= FLOOR_MS:
        holds = NO
    else:
        holds = (f"{UNDETERMINED} ({store_ms:.0f} ms against {other_ms:.0f} ms: longer, "
                 f"within the {FACTOR:g}x this machine's core speed alone can make)")
    return row(AXIS, holds, sessions_words(storms, store), others_words(storms, others),
               f"the longest full collection in a login storm at {size:,} live users: "
               f"{store} {store_ms:.0f} ms, the longest of the control and the tokens "
               f"({other}) {other_ms:.0f} ms; longer counts beyond {FACTOR:g}x and "
               f"{FLOOR_MS:g} ms" + larger_words(storms, stores, sizes, size)
               + seeding_words(e, store), size=size,
               store_ms=store_ms, others_ms=other_ms)


def short_words(r: pd.Series) -> str:
    return (f"its logins grew the store by {r['grown_by']:.0%}, and one waits for about a "
            f"quarter's growth")


def larger_words(storms: pd.DataFrame, stores: list[str], sizes: list[int], size: int
                 ) -> str:
    """The storms larger than the deciding one: each met no full collection, and why."""
    return "".join(f"; at {n:,} the storm met none ({short_words(r)})"
                   for n in sizes if n > size
                   for r in storms_at(storms, stores, n).to_dict("records"))


def storm_words(r: dict[str, Any]) -> str:
    name = f"{r['variant']} + {r['remedy']}" if r["remedy"] else r["variant"]
    return (f"{name} at {r['population']:,}: {r['gc_full_longest_ms']:.0f} ms "
            f"({r['gc_full_pauses']:.0f} full), reads' longest wait {r['max_ms']:.0f} ms")


def sessions_words(storms: pd.DataFrame, store: str) -> str:
    return "; ".join(storm_words(r) for r in storms[storms["variant"] == store].to_dict(
        "records"))


def others_words(storms: pd.DataFrame, others: list[str]) -> str:
    return "; ".join(storm_words(r) for r in storms[storms["variant"].isin(others)].to_dict(
        "records"))


def seeding_words(e: Evidence, store: str) -> str:
    """Seeding's pauses, apart: the longest so far after seeding the largest step, where it
    is longer than any the server had while serving (so seeding set it)."""
    population = e.run.population
    if population.empty or "seed_gc_longest_ms" not in population:
        return ""
    mine = population[population["variant"] == store].sort_values("size")
    if mine.empty:
        return ""
    last = mine.iloc[-1]
    serving = next((r.get("b_service_longest_ms") for r in e.growth.get("steps", [])
                    if r["variant"] == store and r["population"] == int(last["size"])
                    and r["figure"] == "capacity"), None)
    if serving is not None and not last["seed_gc_longest_ms"] > serving:
        return ""
    return (f"; seeding, apart (a bulk load no service meets): {last['seed_gc_longest_ms']:.0f}"
            f" ms by {int(last['size']):,} sessions")
