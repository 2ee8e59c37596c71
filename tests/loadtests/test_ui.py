"""`make ui`'s command: the web UI comes up with the host filled in, Ctrl-C leaves nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from loadtests.runner.processes import REPO_ROOT, free_port, http_ok

# Real processes for seconds at a time: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow


def test_ui_starts_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        ui = subprocess.Popen([sys.executable, "-m", "loadtests.ui", "--variant",
                               "session-redis", "--web-port", str(port)], cwd=REPO_ROOT,
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not http_ok(f"http://127.0.0.1:{port}/"):
            assert ui.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "web UI did not come up"
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            html = page.read().decode()
        assert "Locust" in html
        children = psutil.Process(ui.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "redis-server" in names
        assert "servers --auth session-redis" in names
        assert "--class-picker" in names
        ui.send_signal(signal.SIGINT)
        assert ui.wait(timeout=30) == 0
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [c.pid for c in alive]
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait()
