"""Tables a run prints at its end (rich), from the CSVs its experiments wrote."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

MIB = 1 << 20
# Piped or logged, rich would fold the tables to 80 characters.
console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=130)


def csv_table(path: Path, title: str, columns: Sequence[str],
              cells: Callable[[Any], Sequence[str]]) -> list[Table]:
    """One table with a row per CSV row (`cells` turns a row into its cells); none when the
    run did not write that CSV."""
    if not path.exists():
        return []
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column == "variant")
    for row in pd.read_csv(path).itertuples():
        table.add_row(*cells(row))
    return [table]


def rss_change(before_bytes: float, after_bytes: float) -> str:
    return f"{before_bytes / MIB:.1f} -> {after_bytes / MIB:.1f}"
