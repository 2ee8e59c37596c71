"""The facts of a run's variants, as the runner wrote them into its manifest: which side of
the claim each stands for, and the order reports list them in."""

from __future__ import annotations

from typing import Any


class Variants:
    """The facts of a run's variants (manifest.json's `variants`, written by the runner from
    its variant registry), in the order reports list them."""

    def __init__(self, facts: dict[str, dict[str, Any]]) -> None:
        self.facts = facts
        self.order = tuple(facts)

    def ordered(self, names: Any) -> list[str]:
        """`names` in report order, any the run does not describe last, alphabetically."""
        present = set(names)
        return [v for v in self.order if v in present] + sorted(present - set(self.order))

    def index(self, name: str) -> int | None:
        return self.order.index(name) if name in self.facts else None

    def where(self, **wanted: Any) -> tuple[str, ...]:
        """The variants whose facts have all these values."""
        return tuple(v for v, f in self.facts.items()
                     if all(f.get(k) == value for k, value in wanted.items()))

    @property
    def server_sessions(self) -> tuple[str, ...]:
        """The claim's "sessions in server memory": a session kept in the process or Redis."""
        return tuple(v for v, f in self.facts.items() if f["state"] in ("process", "redis"))

    @property
    def stateless_tokens(self) -> tuple[str, ...]:
        """The claim's tokens: a bearer token with nothing kept server-side."""
        return self.where(credential="bearer", state="client", denylist="none")

    def primitives(self, name: str) -> tuple[list[str], list[str]]:
        """The primitives the variant's auth path runs, then those shown for reference."""
        f = self.facts.get(name, {})
        return list(f.get("primitives", ())), list(f.get("reference_primitives", ()))
