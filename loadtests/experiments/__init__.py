"""The experiments, one module each. Every module has:

- `NAME`, its profile table and its folder under raw/;
- `RUNS_BY_DEFAULT`, whether a profile that lists no experiments runs it;
- `Section`, a frozen dataclass of its profile table's keys (defaults included);
- `plan(ctx)`, the measurements it will make, in order (the run's progress counts them);
- `run(ctx, plan)`, which makes them, with the runner's context (loadtests.runner.context);
- optionally `summary_tables(run_path)`, tables printed at the end of a run.

Adding one: a module here, listed in ALL below.
"""

from __future__ import annotations

from types import ModuleType

from loadtests.experiments import (
    calibrate,
    churn,
    connections,
    duet,
    instructions,
    latency,
    network,
    outage,
    overload,
    population,
    primitives,
    replicas,
    revocation,
    store_ceiling,
    wire,
)
from loadtests.runner import profile

# The order a profile runs them in when it names them in that order.
ALL: tuple[ModuleType, ...] = (calibrate, latency, duet, network, store_ceiling, population,
                               connections, churn, replicas, revocation, wire, primitives,
                               instructions, outage, overload)
BY_NAME: dict[str, ModuleType] = {m.NAME: m for m in ALL}
SECTIONS: dict[str, type] = {m.NAME: m.Section for m in ALL}
DEFAULT_EXPERIMENTS: tuple[str, ...] = tuple(m.NAME for m in ALL if m.RUNS_BY_DEFAULT)


def load_profile(name_or_path: str) -> profile.Profile:
    """A built-in profile by name, or a profile file, with every experiment's table."""
    return profile.load_profile(name_or_path, SECTIONS, DEFAULT_EXPERIMENTS)
