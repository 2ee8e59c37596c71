"""The scenarios, one TaskSet each; every task run sends exactly one request, so a fixed
task rate is a fixed request rate.

The user classes in locustfile.py supply the credential mechanics (cookie or bearer);
the scenarios only say what a user does.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from locust import SequentialTaskSet, TaskSet, task

if TYPE_CHECKING:
    from loadtests.swarm.credentials import Credential
    from loadtests.swarm.locustfile import AuthUser


class BrowseTasks(TaskSet):
    """Log in once, then read: the common case every design must serve fast."""

    user: AuthUser

    def on_start(self) -> None:
        self.credential = self.user.login()

    def read(self, path: str) -> None:
        if self.credential is None:  # the login or the last read failed (counted): log in
            self.credential = self.user.login()
        elif not self.user.get_protected(path, self.credential):
            # As a client does when refused: log in again. After a Redis restart without
            # persistence (the outage experiment) every session is gone.
            self.credential = None

    @task(5)
    def me(self) -> None:
        self.read("/me")

    @task(5)
    def items(self) -> None:
        self.read("/items")


class ChurnTasks(SequentialTaskSet):
    """Log in, a few requests, log out, again: the write path and expiry under load."""

    user: AuthUser
    credential: Credential | None = None

    @task
    def log_in(self) -> None:
        self.credential = self.user.login()

    @task
    def me(self) -> None:
        if self.credential is not None:
            self.user.get_protected("/me", self.credential)

    @task
    def items(self) -> None:
        if self.credential is not None:
            self.user.get_protected("/items", self.credential)

    @task
    def log_out(self) -> None:
        if self.credential is not None:
            self.user.logout(self.credential)
            self.credential = None


class PopulationTasks(TaskSet):
    """Requests spread over a pool of many live credentials, so the store is really searched."""

    user: AuthUser

    @task
    def me_from_pool(self) -> None:
        credential = random.choice(self.user.shared.pool)
        self.user.get_protected("/me", credential, name="/me [pool]")


class ReplicaTasks(TaskSet):
    """Several replicas behind a load balancer, without (random) or with sticky routing."""

    user: AuthUser

    def on_start(self) -> None:
        self.home = random.choice(self.user.shared.hosts)
        self.credential = self.user.login(host=self.home)

    def pick_host(self) -> str:
        hosts = self.user.shared.hosts
        return self.home if self.user.shared.sticky else random.choice(hosts)

    @task
    def me(self) -> None:
        if self.credential is None:
            self.credential = self.user.login(host=self.home)
            return
        routing = "sticky" if self.user.shared.sticky else "random"
        self.user.get_protected("/me", self.credential, host=self.pick_host(),
                                name=f"/me [{routing}]")


class RevocationTasks(TaskSet):
    """Log out, keep presenting the old credential, and record when it stops working."""

    user: AuthUser

    def on_start(self) -> None:
        self.start_cycle()

    def start_cycle(self) -> None:
        self.credential: Credential | None = None
        self.logout_at: float | None = None
        self.pending: dict[str, dict[str, Any]] = {}

    @task
    def step(self) -> None:
        user, shared = self.user, self.user.shared
        if self.credential is None:
            self.credential = user.login()
        elif self.logout_at is None:
            if user.logout(self.credential):
                self.logout_at = time.time()
                self.pending = {host: {"variant": shared.variant, "host": host,
                                       "logout_at": self.logout_at,
                                       "window_s": shared.revocation_window,
                                       "probes": 0, "refused_after_s": None}
                                for host in shared.hosts}
        else:
            self.probe(random.choice(list(self.pending)))

    def probe(self, host: str) -> None:
        observation = self.pending[host]
        elapsed = time.time() - (self.logout_at or 0.0)
        assert self.credential is not None
        accepted = self.user.probe_after_logout(self.credential, host)
        observation["probes"] += 1
        if accepted is False:
            observation["refused_after_s"] = round(elapsed, 6)
        if accepted is False or elapsed >= self.user.shared.revocation_window:
            self.user.shared.recorder.record_revocation(self.pending.pop(host))
        if not self.pending:
            self.start_cycle()


SCENARIOS: dict[str, type[TaskSet]] = {
    "browse": BrowseTasks,
    "churn": ChurnTasks,
    "population": PopulationTasks,
    "replicas": ReplicaTasks,
    "revocation": RevocationTasks,
}
