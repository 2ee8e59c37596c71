"""The verdict's axes, one module each, in the order the report gives them: each has its
`AXIS` (its name) and `judge(evidence)`, its rule, which reads the run's figures and says
whether the claim holds there (analysis.axes.common defines every word it may say).

Adding an axis: a module here, listed in AXES."""

from __future__ import annotations

from types import ModuleType

from analysis.axes import (
    auth_time,
    capacity,
    cpu,
    growth,
    latency,
    logout,
    memory,
    pauses,
    scaling,
    wire,
)

AXES: tuple[ModuleType, ...] = (memory, growth, pauses, capacity, cpu, auth_time, latency,
                                wire, scaling, logout)
NAMES: tuple[str, ...] = tuple(m.AXIS for m in AXES)
