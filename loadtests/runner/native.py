"""The runner's own small C tools (the fast load generator, the delaying forwarder), built
on first use with the machine's C compiler into build/, and again whenever their source is
newer than the binary."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from loadtests.runner.processes import REPO_ROOT, ProcessError

BUILD = REPO_ROOT / "build"


def build(source: Path, name: str, libraries: Sequence[str] = (), hint: str = "") -> Path:
    """The binary `name` compiled from `source`; `hint` is added to a failure's message
    when the compiler's complaint mentions one of `libraries`."""
    binary = BUILD / name
    if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
        return binary
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ProcessError(f"{name} needs a C compiler: apt-get install gcc")
    BUILD.mkdir(exist_ok=True)
    done = subprocess.run([compiler, "-O2", "-Wall", "-o", str(binary), str(source),
                           *(f"-l{lib}" for lib in libraries)], capture_output=True, text=True)
    if done.returncode != 0:
        told = f" ({hint})" if hint and any(lib in done.stderr for lib in libraries) else ""
        raise ProcessError(f"building {name} failed{told}: {done.stderr.strip()[-500:]}")
    return binary
