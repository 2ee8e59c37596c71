"""A compact copy of a run: only what its figures are built from (analysis.load's RUN_FILES
and MEASUREMENT_FILES), with the report rebuilt from that copy alone.

    python -m analysis pack results/<run-id> results/reference

This is how the committed reference run is made: a few MB instead of every Locust CSV, and
proof by construction that its report rebuilds from what is committed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis.load import MEASUREMENT_FILES, RUN_FILES, RUN_GLOBS, Run, RunFolderError


def pack(source: Path, dest: Path) -> int:
    """Copy what the figures need from `source` into `dest` (replaced); the bytes copied."""
    run = Run(source)
    run.require_data()
    if dest.resolve() == run.path:
        raise RunFolderError(f"{dest}: packing a run into itself")
    if dest.exists():
        shutil.rmtree(dest)
    copied = 0
    wanted = [run.path / name for name in RUN_FILES]
    for pattern in RUN_GLOBS:
        wanted += sorted(run.path.glob(pattern))
    for m in run.measurement_list:
        for pattern in MEASUREMENT_FILES:
            wanted += sorted(m.folder.glob(pattern))
    for path in wanted:
        if path.is_file():
            target = dest / path.relative_to(run.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied += path.stat().st_size
    return copied
