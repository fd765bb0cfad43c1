"""One thing a backend can do, and how we know."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, get_args

Kind = Literal[
    "method", "loss", "adapter", "strategy", "topology", "device", "parallel", "reward", "rollout", "feature"
]
KINDS: tuple[str, ...] = get_args(Kind)


class Verified(str, Enum):
    """How a capability is known, strongest first."""

    trained = "trained"  # a test trains with the framework's own code on CPU
    validated = "validated"  # the framework's own config validator / argument parser accepts ptsdk's output
    declared = "declared"  # the framework's documentation or source says so; nothing here ran it

    @property
    def rank(self) -> int:
        return ("trained", "validated", "declared").index(self.value)


@dataclass(frozen=True)
class Capability:
    kind: Kind
    name: str
    verified: Verified
    #: Test that proves it (path::function), required for trained and validated.
    evidence: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown capability kind {self.kind!r}; kinds are {', '.join(KINDS)}")
        if self.verified is not Verified.declared and not self.evidence:
            raise ValueError(f"{self.kind}:{self.name} is {self.verified.value} but names no test as evidence")

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


def caps(kind: Kind, names: str, verified: Verified, evidence: str = "", note: str = "") -> list[Capability]:
    """Several capabilities of one kind that share their evidence: caps("loss", "dpo:ipo dpo:hinge", ...)."""
    return [Capability(kind, name, verified, evidence, note) for name in names.split()]


def declared(kind: Kind, names: str, note: str = "") -> list[Capability]:
    """Capabilities a backend declares and no test here runs (a git-only framework's): the note says where the
    framework's source shows them."""
    return caps(kind, names, Verified.declared, note=note)
