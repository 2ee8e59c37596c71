"""The scenarios, one TaskSet each; every task run sends exactly one request, so a fixed
task rate is a fixed request rate.

The user classes in locustfile.py supply the credential mechanics (cookie or bearer);
the scenarios only say what a user does.
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import TYPE_CHECKING

import gevent
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
    """Log in, log out, then present the old credential to every replica in turn, every
    `--revocation-probe-interval` seconds, until each refuses it or the window ends.

    One task run is a whole cycle (many requests): this scenario measures when a credential
    stops working, not a request rate. Each replica's observation keeps the time from logout
    to the answer of its first refusal, and the time from sending the last probe it accepted
    to that answer: the credential stopped working within it, the figure's resolution.
    """

    user: AuthUser

    @task
    def cycle(self) -> None:
        user, shared = self.user, self.user.shared
        credential = user.login()
        if credential is None or not user.logout(credential):
            return
        logout_at = time.time()
        expires_at = expiry_of(credential.secret)
        pending = {host: {"variant": shared.variant, "host": host, "logout_at": logout_at,
                          "window_s": shared.revocation_window, "probes": 0,
                          "refused_after_s": None, "resolution_s": None,
                          "expires_after_s": round(expires_at - logout_at, 6)
                          if expires_at is not None else None,
                          "last_accepted": logout_at}
                   for host in shared.hosts}
        while pending:
            for host in list(pending):
                observation = pending[host]
                sent = time.time()
                accepted = user.probe_after_logout(credential, host, expires_at)
                answered = time.time()
                observation["probes"] += 1
                if accepted:
                    observation["last_accepted"] = sent
                elif accepted is False:
                    # The server refused somewhere between the probe's sending and its
                    # answer (a stalled greenlet can hold a probe back for tens of ms), and
                    # still accepted the last probe when it was sent: the credential stopped
                    # working in that interval, its length the figure's resolution.
                    observation["refused_after_s"] = round(answered - logout_at, 6)
                    observation["resolution_s"] = round(
                        answered - observation["last_accepted"], 6)
                if accepted is False or sent - logout_at >= shared.revocation_window:
                    del observation["last_accepted"]
                    shared.recorder.record_revocation(pending.pop(host))
            gevent.sleep(shared.revocation_probe_interval)


def expiry_of(secret: str | None) -> float | None:
    """A JWT's `exp`, read without verifying it (the client's view); None for a cookie."""
    parts = (secret or "").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None


SCENARIOS: dict[str, type[TaskSet]] = {
    "browse": BrowseTasks,
    "churn": ChurnTasks,
    "population": PopulationTasks,
    "replicas": ReplicaTasks,
    "revocation": RevocationTasks,
}
