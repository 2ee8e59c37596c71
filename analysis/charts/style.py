"""How every chart looks: a colour family per side of the claim (sessions blue, tokens red,
the control grey), a line style per variant inside it, plain tick labels, one width that the
HTML page shows at full size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from analysis.load import Run

# The report's page is about 1,100 px wide: charts are drawn that wide, at 110 dpi.
WIDTH_IN = 10.0
DPI = 110
SESSIONS, TOKENS, CONTROL = "sessions", "tokens", "control"
SIDE_NAMES = {SESSIONS: "server-side or cookie sessions", TOKENS: "tokens",
              CONTROL: "control (no auth)"}
FAMILIES = {
    SESSIONS: ("#1f4e79", "#2e75b6", "#6fa8dc", "#9dc3e6"),
    TOKENS: ("#a50f15", "#e6550d", "#fd8d3c", "#7f2704", "#fdae6b", "#d94801", "#fb6a4a",
             "#67000d"),
    CONTROL: ("#7f7f7f",),
}
LINES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
FLOOR = "nginx"  # the generator's floor, drawn apart from the variants

plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8,
                     "axes.spines.top": False, "axes.spines.right": False})


def side(run: Run, variant: str) -> str:
    """Which side of the claim a variant stands for, from its facts."""
    facts = run.variants.facts.get(variant, {})
    if facts.get("credential") == "bearer":
        return TOKENS
    if facts.get("credential") in (None, "none"):
        return CONTROL
    return SESSIONS


def style(run: Run, variant: str) -> dict[str, Any]:
    """The colour, line and marker of a variant: its side's family, its place inside it."""
    mine = side(run, variant)
    same = [v for v in run.variants.order if side(run, v) == mine]
    i = same.index(variant) if variant in same else 0
    family = FAMILIES[mine]
    return {"color": family[i % len(family)], "linestyle": LINES[i % len(LINES)],
            "marker": MARKERS[i % len(MARKERS)]}


def colour(run: Run, variant: str) -> str:
    return str(style(run, variant)["color"])


def by_side(run: Run, variants: Any) -> dict[str, list[str]]:
    """The variants of each side present, in the run's order."""
    ordered = run.variants.ordered(variants)
    return {s: [v for v in ordered if side(run, v) == s] for s in (SESSIONS, TOKENS, CONTROL)}


def save(fig: plt.Figure, path: Path, legend_below: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0.1, 1, 1) if legend_below else None)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def empty(ax: plt.Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def nothing(fig: plt.Figure, axes: Any, message: str, path: Path) -> Path:
    """A chart whose run has nothing for it: the message in its first panel, saved."""
    panels = list(np.ravel(axes))
    empty(panels[0], message)
    for ax in panels[1:]:
        ax.set_axis_off()
    return save(fig, path)


def legend_below(fig: plt.Figure, axes: Any) -> None:
    """One legend for the whole figure, under it, each variant once."""
    seen: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(seen.values(), seen.keys(), loc="lower center",
                   ncol=min(5, len(seen)), frameon=False)


def plain(ax: plt.Axes, axis: str = "both") -> None:
    """Tick labels as plain numbers with thousands separators: no 1e6 offsets, no 10^x.
    A log axis gets ticks at 1, 2 and 5 of every decade, so a narrow range still has some."""
    formatter = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.10g}")
    for name, one in (("x", ax.xaxis), ("y", ax.yaxis)):
        if axis not in (name, "both"):
            continue
        if one.get_scale() == "log":
            low, high = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
            decades = np.log10(high / low) if low > 0 else 9.0
            subs = (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
            one.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
        one.set_major_formatter(formatter)
        one.set_minor_formatter(matplotlib.ticker.NullFormatter())
