"""authscale's Locust scenarios against any variant (docs/api.md).

    locust -f loadtests/swarm/locustfile.py --host http://127.0.0.1:8000 --scenario browse \
        --target-rps 500 -u 50 BearerUser

Two user classes, named for the credential they carry: CookieUser (session variants) and
BearerUser (JWT variants); both also run against the `none` control. What a user does is the
scenario (--scenario, see scenarios.py). --target-rps > 0 drives a fixed total request rate
(open model, `constant_throughput` per user); 0 runs closed-loop users as fast as the server
answers. recorder.py keeps the microsecond histograms Locust's own stats round away.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.pool
from locust import FastHttpUser, constant, constant_throughput, events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from loadtests.swarm.credentials import Credential, from_login, user_class_for
from loadtests.swarm.recorder import Recorder
from loadtests.swarm.scenarios import SCENARIOS
from servers.variants.registry import NAMES, variant

log = logging.getLogger("authscale.locust")
POOL_LOGIN_CONCURRENCY = 32
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Comma-separated host names that may receive load besides loopback (compose services).
ENV_LOAD_HOSTS = "AUTHSCALE_LOAD_HOSTS"


@events.init_command_line_parser.add_listener
def add_options(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("authscale")
    group.add_argument("--scenario", choices=sorted(SCENARIOS), default="browse",
                       help="what each user does")
    group.add_argument("--target-rps", type=float, default=0.0,
                       help="fixed total request rate (open model); 0 = closed loop")
    group.add_argument("--warmup", type=float, default=0.0,
                       help="seconds at the start whose requests the histograms ignore")
    group.add_argument("--duration", type=float, default=0.0,
                       help="seconds to measure after the warm-up, then stop; counted from "
                            "when the load starts (Locust's -t also counts its own start-up)")
    group.add_argument("--login-users", type=int, default=10_000,
                       help="log in as user1..userN (the server's --users)")
    group.add_argument("--hosts", default="",
                       help="replicas: comma-separated base URLs (default: --host)")
    group.add_argument("--sticky", action="store_true", default=False,
                       help="replicas: keep each user on the replica that logged it in")
    group.add_argument("--pool-size", type=int, default=1000,
                       help="population: live credentials the requests are spread over")
    group.add_argument("--revocation-window", type=float, default=3.0,
                       help="revocation: seconds to keep presenting a logged-out credential")
    group.add_argument("--revocation-probe-interval", type=float, default=0.002,
                       help="revocation: seconds between two rounds of probes of the replicas")


@dataclass
class Shared:
    """Per-process state every user of the run reads: settings, pool, recorder."""

    recorder: Recorder
    variant: str = ""
    hosts: list[str] = field(default_factory=list)
    sticky: bool = False
    login_users: int = 10_000
    revocation_window: float = 3.0
    revocation_probe_interval: float = 0.002
    pool: list[Credential] = field(default_factory=list)
    pacer: Any = None


def variant_of(host: str) -> str:
    with urllib.request.urlopen(host.rstrip("/") + "/healthz", timeout=5) as answer:
        name = json.load(answer)["variant"]
    if name not in NAMES:
        raise ValueError(f"{host} runs unknown variant {name!r}")
    return str(name)


def fill_pool(shared: Shared, host: str, size: int) -> None:
    """Log `size` distinct users in before the load starts (not part of the measurement)."""
    ks = random.sample(range(1, shared.login_users + 1), min(size, shared.login_users))

    def login(k: int) -> Credential | None:
        body = json.dumps({"username": f"user{k}", "password": f"pw-{k}"}).encode()
        request = urllib.request.Request(f"{host}/login", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return from_login(shared.variant, f"user{k}", answer.headers.get("Set-Cookie"),
                                  answer.read())
        except OSError:  # a refused login (HTTPError) or a lost connection
            return None

    credentials = gevent.pool.Pool(POOL_LOGIN_CONCURRENCY).map(login, ks)
    shared.pool = [c for c in credentials if c is not None]
    if not shared.pool:
        raise RuntimeError(f"population: no login succeeded against {host}")


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    environment.authscale = Shared(Recorder(environment))  # type: ignore[attr-defined]


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    shared: Shared = environment.authscale  # type: ignore[attr-defined]
    hosts = [h.strip().rstrip("/") for h in (options.hosts or "").split(",") if h.strip()]
    shared.hosts = hosts or [(environment.host or options.host or "").rstrip("/")]
    allowed = LOOPBACK | {h.strip() for h in os.environ.get(ENV_LOAD_HOSTS, "").split(",")
                          if h.strip()}
    refused = [h for h in shared.hosts if urllib.parse.urlsplit(h).hostname not in allowed]
    if refused:
        # Load goes to loopback unless the user names other targets explicitly. Quit at once
        # (raising here would only be logged, and Locust would wait out its time limit).
        log.error("refusing to send load to %s: only loopback hosts, or hosts named in %s",
                  refused[0], ENV_LOAD_HOSTS)
        environment.process_exit_code = 2
        gevent.spawn(environment.runner.quit)
        return
    shared.sticky = options.sticky
    shared.login_users = options.login_users
    shared.revocation_window = options.revocation_window
    shared.revocation_probe_interval = options.revocation_probe_interval
    if not isinstance(environment.runner, MasterRunner):  # the master sends no requests
        prepare_load(environment, shared)
    # Counted from here, after the pool is filled: the load starts now.
    if options.duration > 0 and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn_later(options.warmup + options.duration, environment.runner.quit)


def prepare_load(environment: Environment, shared: Shared) -> None:
    """In a process that sends requests: learn the variant, set the pace, fill the pool."""
    options = environment.parsed_options
    shared.variant = variant_of(shared.hosts[0])
    users = max(1, options.num_users or 1)
    shared.pacer = (constant_throughput(options.target_rps / users) if options.target_rps > 0
                    else constant(0))
    scenario = SCENARIOS[options.scenario]
    for user_class in (CookieUser, BearerUser):
        user_class.tasks = [scenario]
    if options.scenario == "population":
        fill_pool(shared, shared.hosts[0], options.pool_size)


class AuthUser(FastHttpUser):
    """What both user classes share: log in, call protected routes, log out, check answers."""

    abstract = True
    # Connections are re-used as a browser or API client would.
    network_timeout = 10.0
    connection_timeout = 5.0
    # The credentials it can carry (the registry's `credential` of a variant).
    carries: frozenset[str] = frozenset()

    @property
    def shared(self) -> Shared:
        return self.environment.authscale  # type: ignore[attr-defined, no-any-return]

    def wait_time(self) -> float:
        return float(self.shared.pacer(self))

    def on_start(self) -> None:
        if variant(self.shared.variant).credential not in self.carries:
            log.error("%s cannot authenticate against %s; pick %s", type(self).__name__,
                      self.shared.variant, user_class_for(self.shared.variant))
            self.environment.process_exit_code = 2
            raise StopUser()

    def login(self, host: str | None = None) -> Credential | None:
        k = random.randint(1, self.shared.login_users)
        username = f"user{k}"
        url = (host or self.shared.hosts[0]) + "/login"
        with self.client.post(url, json={"username": username, "password": f"pw-{k}"},
                              name="/login", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"login answered {resp.status_code}")
                return None
            credential = from_login(self.shared.variant, username,
                                    resp.headers.get("Set-Cookie"), resp.content or b"")
            if credential is None:
                resp.failure("login answer carried no credential")
            # We present credentials ourselves (pools, replays after logout): no jar.
            self.client.cookiejar.clear()
            return credential

    def get_protected(self, path: str, credential: Credential, host: str | None = None,
                      name: str | None = None) -> bool:
        url = (host or self.shared.hosts[0]) + path
        with self.client.get(url, headers=credential.headers, name=name or path,
                             catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code} where {self.shared.variant} should accept")
                return False
            if path == "/me" and resp.content != credential.me_body and \
                    json.loads(resp.content or b"{}") != json.loads(credential.me_body):
                resp.failure(f"/me answered {resp.content!r}, expected {credential.me_body!r}")
                return False
            return True

    def logout(self, credential: Credential, host: str | None = None) -> bool:
        url = (host or self.shared.hosts[0]) + "/logout"
        with self.client.post(url, headers=credential.headers, name="/logout",
                              catch_response=True) as resp:
            self.client.cookiejar.clear()
            if resp.status_code != 204:
                resp.failure(f"logout answered {resp.status_code}")
                return False
            return True

    def probe_after_logout(self, credential: Credential, host: str,
                           expires_at: float | None = None) -> bool | None:
        """Present a logged-out credential: True accepted, False refused, None broken.

        Acceptance is a failure on a variant that revokes; refusal is one on a variant
        that cannot, before the credential's expiry (`expires_at`, where the client can
        read it: a JWT's `exp`).
        """
        revokes = variant(self.shared.variant).logout_revokes
        with self.client.get(host + "/me", headers=credential.headers,
                             name="/me [after logout]", catch_response=True) as resp:
            if resp.status_code == 200:
                if revokes:
                    resp.failure(f"{self.shared.variant} accepted a logged-out credential")
                return True
            if resp.status_code == 401:
                if not revokes and expires_at is not None and time.time() < expires_at:
                    resp.failure(f"{self.shared.variant} refused a credential it cannot revoke "
                                 "before it expired")
                else:
                    resp.success()
                return False
            resp.failure(f"after logout: {resp.status_code}")
            return None


class CookieUser(AuthUser):
    """A browser: a session cookie (session-memory, session-redis, session-cookie)."""

    carries = frozenset({"none", "cookie"})
    tasks = [SCENARIOS["browse"]]  # noqa: RUF012 - Locust's idiom; --scenario replaces it


class BearerUser(AuthUser):
    """An API client: `Authorization: Bearer <jwt>` (the jwt-* variants)."""

    carries = frozenset({"none", "bearer"})
    tasks = [SCENARIOS["browse"]]  # noqa: RUF012 - Locust's idiom; --scenario replaces it
