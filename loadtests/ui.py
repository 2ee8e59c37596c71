"""`make ui`: a private Redis if needed, one server, and Locust's web UI, until Ctrl-C.

    python -m loadtests.ui --variant session-redis [--web-port 8089] [--processes N]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from loadtests.runner.processes import (
    REPO_ROOT,
    Child,
    ProcessError,
    RedisHandle,
    ServerHandle,
    http_ok,
    locust_command,
    spawn,
    start_redis,
    start_server,
    wait_until,
)
from servers.variants.registry import NAMES, variant


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make ui", description=__doc__)
    parser.add_argument("--variant", choices=NAMES, default="session-redis")
    parser.add_argument("--web-port", type=int, default=8089)
    parser.add_argument("--processes", type=int, default=1,
                        help="local Locust worker processes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = REPO_ROOT / "results" / "ui" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir.mkdir(parents=True, exist_ok=True)
    redis: RedisHandle | None = None
    server: ServerHandle | None = None
    locust: Child | None = None
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        if variant(args.variant).needs_redis:
            redis = start_redis(log_dir=out_dir)
        server = start_server(args.variant, redis_url=redis.url if redis else None,
                              log_dir=out_dir)
        web = f"http://127.0.0.1:{args.web_port}"
        argv = locust_command(server.url, headless=False, csv_prefix=out_dir / "locust",
                              processes=args.processes,
                              extra=["--class-picker", "--web-host", "127.0.0.1",
                                     "--web-port", str(args.web_port)])
        locust = spawn("locust web UI", argv, log_path=out_dir / "locust.log")
        wait_until(lambda: http_ok(web + "/"), locust, 30, "Locust web UI")
        print(f"{args.variant} at {server.url}; Locust web UI at {web} "
              f"(results in {out_dir.relative_to(REPO_ROOT)}); Ctrl-C stops everything",
              flush=True)
        while not stop_requested and locust.alive() and server.child.alive():
            time.sleep(0.2)
        if not server.child.alive():
            print(f"the server stopped unexpectedly:\n{server.child.log_tail()}", file=sys.stderr)
            return 1
        return 0
    except ProcessError as exc:
        print(f"make ui: {exc}", file=sys.stderr)
        return 1
    finally:
        for child in (locust, server, redis):
            if child is not None:
                child.stop()


if __name__ == "__main__":
    sys.exit(main())
