"""The duet's chart: each pair's ratio token / session with its interval, beside the
margin and the instruction count's ratio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.charts.style import colour, nothing, plt
from analysis.load import Run


def duet_ratios(run: Run, ratios: list[dict[str, Any]],
                instructions: dict[str, dict[str, Any]], margin: float, path: Path) -> Path:
    """The duet's ratios b / a per pair, one panel per figure: the point is the geometric
    mean over the windows, the bar its 95% interval, the band the equivalence margin, the
    diamond what the instruction counts predict (capacity as the inverse of the work per
    request). The A/A control comes first, in grey: the run's noise floor."""
    phases = (("flat", "capacity per server core, token / session", True),
              ("rate", "CPU per request at equal load, token / session", False))
    pairs = list(dict.fromkeys(r["pair"] for r in ratios))
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.4 + 0.7 * max(len(pairs), 1)),
                             sharey=True)
    if not ratios:
        return nothing(fig, axes, "no duet in this run", path)
    for ax, (phase, title, inverse) in zip(axes, phases, strict=True):
        ax.axvspan(1 - margin, 1 + margin, color="#eeeeee", zorder=0,
                   label=f"±{margin:.0%}: no measurable difference")
        ax.axvline(1.0, color="#888888", lw=0.8, zorder=1)
        for y, name in enumerate(pairs):
            r = next((x for x in ratios if x["pair"] == name and x["phase"] == phase), None)
            if r is None or r["n"] < 2:
                continue
            colour_ = "#777777" if r["kind"] == "aa" else colour(run, r["b"])
            ax.errorbar(r["ratio"], y, xerr=[[r["ratio"] - r["ratio_low"]],
                                            [r["ratio_high"] - r["ratio"]]],
                        fmt="o", color=colour_, capsize=3, zorder=3)
            ax.annotate(f"{r['ratio']:.2f} [{r['ratio_low']:.2f}, {r['ratio_high']:.2f}]",
                        (r["ratio"], y), xytext=(0, 7), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
            a, b = instructions.get(r["a"]), instructions.get(r["b"])
            if a and b and r["kind"] != "aa":
                counted = b["instructions_per_request"] / a["instructions_per_request"]
                ax.plot(1 / counted if inverse else counted, y, "D", color="#1f4e79",
                        markersize=5, zorder=4,
                        label="instructions (callgrind)" if y == len(pairs) - 1 else None)
        ax.set_title(title, fontsize=10)
        shown = [x for line in ax.get_lines() for x in line.get_xdata()] + \
            [r["ratio_high"] for r in ratios if r["phase"] == phase and r["n"] >= 2]
        ax.set_xlim(0, max(2.0, max(shown, default=1.0) * 1.15))
        ax.set_ylim(len(pairs) - 0.5, -0.9)
        ax.grid(axis="x", alpha=0.3)
    labels = [("A/A: " + n.split("__")[0]) if n.split("__")[0] == n.split("__")[1]
              else " → ".join(n.split("__")) for n in pairs]
    axes[0].set_yticks(range(len(pairs)), labels)
    handles, names = axes[0].get_legend_handles_labels()
    more, more_names = axes[1].get_legend_handles_labels()
    seen = dict(zip(names + more_names, handles + more, strict=True))
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
