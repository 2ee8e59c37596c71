"""The experiments' own child processes: `python -m loadtests.experiments primitives ...`
(the primitives timed alone, on the server's core; see primitives.py)."""

from __future__ import annotations

import sys

from loadtests.experiments import primitives

if __name__ == "__main__":
    if sys.argv[1:2] != ["primitives"]:
        print("usage: python -m loadtests.experiments primitives --redis-url URL --out CSV",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(primitives.main(sys.argv[2:]))
