"""The house's one-way imports: servers <- loadtests (swarm <- runner <- experiments <- the
commands) -> results -> analysis. A cycle or a backward import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Each package, and what it must never import.
FORBIDDEN = {
    "servers": ("loadtests", "analysis"),
    "analysis": ("loadtests", "servers"),
    "loadtests/swarm": ("loadtests.runner", "loadtests.experiments", "loadtests.bench",
                        "loadtests.calibrate", "analysis"),
    "loadtests/runner": ("loadtests.experiments", "loadtests.bench", "loadtests.calibrate"),
    "loadtests/experiments": ("loadtests.bench", "loadtests.calibrate", "loadtests.ui",
                              "loadtests.compose"),
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files
    backwards = [(str(f.relative_to(REPO_ROOT)), module) for f in files
                 for module in imported_modules(f)
                 if any(module == p or module.startswith(p + ".")
                        for p in FORBIDDEN[package])]
    assert backwards == []


def test_nothing_points_outside_the_repository() -> None:
    """The methodology and the contract are in docs/; no file cites a folder a clone lacks."""
    outside = ("shared/API.md", "shared/METHODOLOGY.md", "shared/CONVENTIONS.md")
    texts = [p for p in REPO_ROOT.rglob("*") if p.is_file() and p.suffix in
             (".py", ".md", ".toml", ".yml", ".txt") and ".venv" not in p.parts
             and ".git" not in p.parts and "egg-info" not in str(p)
             and p != Path(__file__).resolve()]
    citing = [str(p.relative_to(REPO_ROOT)) for p in texts
              if any(name in p.read_text(errors="replace") for name in outside)]
    assert citing == []
    assert (REPO_ROOT / "docs" / "api.md").is_file()
    assert (REPO_ROOT / "docs" / "methodology.md").is_file()
