"""Where a run's commands execute: a plugin kind of its own, next to the backends.

A backend says *what* to run (its :class:`~ptsdk.plugins.backend.Plan`: files and commands, with the framework's
own launcher such as torchrun or deepspeed inside them). A :class:`RunLauncher` says *where*: ``local`` (this
machine, the default) or a scheduler (``slurm``, built in), each chosen with ``ptsdk run --launcher NAME`` and
given its options with ``--launcher-option KEY=VALUE`` (the CLI's ``--partition``, ``--time``, ``--account``
are shorthands). Sites add theirs (Kubernetes, LSF, a cloud's job API) from a plugin of their own::

    @ptsdk.plugins.hookimpl
    def ptsdk_register_launchers(register):
        register(MyLauncher)

A launcher gets the run directory with everything written (the plan's files, ``command.sh``, the manifest) and
runs it; the live view, metrics, manifest and ``ptsdk runs`` are the same whatever runs it, since they read
the run directory (on a cluster: a shared filesystem).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from ptsdk.errors import PtsdkError

if TYPE_CHECKING:
    from ptsdk.envs import BackendEnv
    from ptsdk.plugins.backend import Plan
    from ptsdk.spec import Job


@dataclass
class Outcome:
    """How the commands ended: the exit code, the peak resident memory (MiB, 0 when unknown), a status other
    than succeeded/failed when the launcher knows better (``cancelled``), and what the manifest should keep
    of the launch (``cluster``: the scheduler's job id, its final state)."""

    exit_code: int
    peak_rss_mib: float = 0.0
    status: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class Launch:
    """What a launcher is given to run: the plan, the backend's environment, the run directory (already holding
    the plan's files and ``command.sh``), the open log, where to echo the framework's output (-v) and a callback
    that adds to the manifest's ``cluster`` record as soon as something is known (the scheduler's job id)."""

    plan: Plan
    env: BackendEnv
    run_dir: Path
    command_script: Path
    log: TextIO
    echo: TextIO | None
    note: Callable[[dict[str, Any]], None]


class RunLauncher(ABC):
    """Runs a run directory's commands somewhere. Subclasses set ``name`` and ``options`` (option -> what it
    means) and implement :meth:`execute`; :meth:`problems` refuses what cannot run there before anything is
    written."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: option name -> help; anything else given is refused by name.
    options: ClassVar[dict[str, str]] = {}

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        given = dict(options or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            takes = ", ".join(sorted(self.options)) or "none"
            raise PtsdkError(
                f"--launcher-option {unknown[0]}: the {self.name} launcher has no such option (it takes: {takes})"
            )
        self.given = given

    def adapt_job(self, job: Job) -> Job:
        """The job as this launcher runs it, before it is checked and translated: what the launcher decides
        itself (a scheduler that picks the nodes sets a multi-node job's rendezvous host). The job unchanged by
        default; it is the job the manifest records."""
        return job

    def problems(self, job: Job, plan: Plan) -> list[str]:
        """`field: problem` lines for what this launcher cannot run (checked before the run directory is made)."""
        return []

    @abstractmethod
    def execute(self, launch: Launch) -> Outcome:
        """Run the commands to their end. KeyboardInterrupt (Ctrl-C, and SIGTERM as ptsdk.launch.Terminated)
        must stop what was started before it propagates."""

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of this launcher before the run starts (its name and options)."""
        return {"launcher": self.name, "options": dict(self.given)}


class LocalLauncher(RunLauncher):
    """The commands as processes of this machine, one after the other (ptsdk.launch.run_command)."""

    name = "local"
    description = "this machine (the default)"

    def execute(self, launch: Launch) -> Outcome:
        from ptsdk.launch import run_command

        code, peak = 1, 0.0
        for cmd in launch.plan.commands:
            code, rss = run_command(
                cmd, launch.env, launch.run_dir, launch.log, echo=launch.echo, inputs=launch.plan.inputs
            )
            peak = max(peak, rss)
            if code != 0:
                break
        return Outcome(code, peak)


_OPTION = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)=(.*)$", re.S)


def parse_options(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict; a malformed or repeated one is a PtsdkError naming it."""
    out: dict[str, str] = {}
    for pair in pairs:
        m = _OPTION.match(pair)
        if not m:
            raise PtsdkError(f"--launcher-option {pair!r}: expected KEY=VALUE (e.g. partition=gpu)")
        key, value = m.group(1).replace("-", "_"), m.group(2)
        if key in out:
            raise PtsdkError(f"--launcher-option {key}: given twice")
        out[key] = value
    return out
