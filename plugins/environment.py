"""How ``ptsdk env create`` builds a backend's environment: a list of pip install steps, as data.

A backend declares its environment with :meth:`ptsdk.plugins.backend.Backend.environment`. The
default (:func:`default_environment`) reads the ``requirements.txt`` shipped beside the module that
defines the backend class and installs torch first, alone, then the rest. A backend that needs more
overrides ``environment()``; OpenRLHF, say::

    @classmethod
    def environment(cls) -> EnvironmentSpec:
        reqs = read_requirements(requirements_file(cls))
        return EnvironmentSpec((
            InstallStep("install torch", ("torch==2.13.0",)),
            InstallStep("install deepspeed", ("deepspeed==0.19.8",), env=(("DS_BUILD_OPS", "0"),)),
            InstallStep("install openrlhf", ("openrlhf==0.11.2",), pip_args=("--no-deps",)),
            InstallStep("install its requirements", tuple(reqs)),
        ))

Each step runs as ``<venv python> -m pip install --disable-pip-version-check *pip_args *packages``
with ``env`` added to the environment. :attr:`EnvironmentSpec.sha` covers what every step installs
and how (not the labels), so changing a pin or a flag makes a built environment stale.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ptsdk.errors import PtsdkError

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend

REQUIREMENTS_FILE = "requirements.txt"

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class InstallStep:
    """One ``pip install`` into the environment.

    ``env``: extra environment variables for this step, as ``(name, value)`` pairs (a mapping is
    accepted too and stored as sorted pairs, so a step hashes and compares by value).
    """

    label: str
    packages: tuple[str, ...]
    pip_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.packages, str):
            raise TypeError(f"step {self.label!r}: packages must be a sequence of requirement strings, not a string")
        if isinstance(self.pip_args, str):
            raise TypeError(f"step {self.label!r}: pip_args must be a sequence of arguments, not a string")
        pairs = self.env.items() if isinstance(self.env, Mapping) else self.env
        object.__setattr__(self, "packages", tuple(self.packages))
        object.__setattr__(self, "pip_args", tuple(self.pip_args))
        object.__setattr__(self, "env", tuple(sorted((str(k), str(v)) for k, v in pairs)))

    @property
    def environ(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class EnvironmentSpec:
    """The steps that build an environment, run in order after the venv is created."""

    steps: tuple[InstallStep, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))

    @property
    def sha(self) -> str:
        """A hash of what the steps install and how (packages, pip arguments, environment), in order."""
        content = [[list(s.packages), list(s.pip_args), [list(kv) for kv in s.env]] for s in self.steps]
        return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()[:16]


def requirements_file(cls: type[Backend]) -> Path | None:
    """The requirements.txt beside the module that defines the backend class (None: there is none).

    Looked up with importlib.resources in the package of the class's module, so a third-party
    backend ships its own pins as package data.
    """
    module = sys.modules.get(cls.__module__)
    if module is None:
        return None
    package = cls.__module__ if hasattr(module, "__path__") else (module.__package__ or "")
    if not package:
        return None  # a top-level module or a script: no package folder to look in
    try:
        candidate = resources.files(package).joinpath(REQUIREMENTS_FILE)
    except (ModuleNotFoundError, TypeError):
        return None
    if not isinstance(candidate, Path) or not candidate.is_file():
        return None  # missing, or inside an archive (not supported)
    return candidate


def read_requirements(path: Path) -> list[str]:
    """Requirement lines of a requirements file: blank lines and comments skipped."""
    out = []
    for line in path.read_text().splitlines():
        text = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if text:
            out.append(text)
    return out


def requirement_name(requirement: str) -> str:
    """The normalized distribution name of a requirement line ('Torch==2.1' -> 'torch')."""
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def default_environment(cls: type[Backend]) -> EnvironmentSpec:
    """torch's pins in a step of their own, first (so no CUDA build is pulled), then the rest."""
    path = requirements_file(cls)
    if path is None:
        raise PtsdkError(
            f"backend {cls.name}: ptsdk has no known-good requirement set for it yet; "
            f"install the framework yourself and set PTSDK_{cls.name.upper()}_PYTHON"
        )
    reqs = read_requirements(path)
    torch = tuple(r for r in reqs if requirement_name(r) == "torch")
    rest = tuple(r for r in reqs if requirement_name(r) != "torch")
    steps = []
    if torch:
        steps.append(InstallStep("install torch (first, so no CUDA build is pulled)", torch))
    if rest:
        steps.append(InstallStep(f"install {len(rest)} pinned packages", rest))
    return EnvironmentSpec(tuple(steps))
