"""The contract every backend implements, and the Plan it produces.

A backend is one folder: its capabilities, its environment (requirements and build steps),
``translate`` (job -> Plan), a native check run in the framework's own environment, a metrics
parser and ``resume``. Everything shared between backends lives in :mod:`ptsdk.plugins.kit`.

A Plan is data: files to write, the framework's entry point and native arguments (a config
path, Hydra overrides or flags), the launcher that starts it (python, torchrun, the deepspeed
launcher, ``ray job submit``), environment variables and notes. The core renders every plan the
same way: command.sh, containers and the manifest.
"""

from __future__ import annotations

import json
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from ptsdk.envs import BackendEnv
    from ptsdk.matrix.capability import Capability
    from ptsdk.metrics import MetricRecord
    from ptsdk.plugins.environment import EnvironmentSpec
    from ptsdk.spec import Job

#: Placeholder for the backend's interpreter in argv lists; the core substitutes it.
PYTHON = "{python}"


@dataclass
class PlanFile:
    """A file the run needs, relative to the run directory: literal text or a copy of a file."""

    path: str
    content: str | None = None
    copy_from: str | None = None

    def __post_init__(self) -> None:
        if (self.content is None) == (self.copy_from is None):
            raise ValueError("a PlanFile has either content or copy_from")
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ValueError(f"plan file {self.path!r} must be a relative path inside the run directory")


LauncherKind = Literal["python", "torchrun", "deepspeed", "ray"]


@dataclass
class Launcher:
    """How the framework's processes are started, as data.

    - ``python``: one process, ``{python} ENTRY ARGS``.
    - ``torchrun``: ``{python} -m torch.distributed.run ... ENTRY ARGS`` (c10d rendezvous across nodes).
    - ``deepspeed``: the DeepSpeed launcher, ``{python} -m deepspeed.launcher.runner ... ENTRY ARGS``.
    - ``ray``: ``ray job submit`` to an existing cluster at ``address``; without one, the entry
      point itself starts a local Ray (vERL, OpenRLHF do).
    """

    kind: LauncherKind = "python"
    nproc_per_node: int = 1
    nnodes: int = 1
    master_addr: str | None = None
    master_port: int = 29500
    rdzv_id: str = "ptsdk"
    #: ray: address of an existing cluster (``ray job submit --address``); deepspeed: unused.
    address: str | None = None
    #: deepspeed: a hostfile (relative to the run directory) for several nodes.
    hostfile: str | None = None

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def args(self) -> list[str]:
        """The launcher's own arguments (what its parser sees before the entry point)."""
        if self.kind == "torchrun":
            out = [f"--nproc_per_node={self.nproc_per_node}"]
            if self.nnodes > 1:
                out += [
                    f"--nnodes={self.nnodes}",
                    "--rdzv_backend=c10d",
                    f"--rdzv_endpoint={self.master_addr}:{self.master_port}",
                    f"--rdzv_id={self.rdzv_id}",
                ]
            else:
                out.append("--standalone")
            return out
        if self.kind == "deepspeed":
            out = [f"--num_gpus={self.nproc_per_node}", f"--num_nodes={self.nnodes}"]
            if self.nnodes > 1:
                out += [f"--master_addr={self.master_addr}", f"--master_port={self.master_port}"]
                if self.hostfile:
                    out.append(f"--hostfile={self.hostfile}")
            return out
        if self.kind == "ray" and self.address:
            return ["job", "submit", f"--address={self.address}", "--working-dir=."]
        return []

    def argv(self, entrypoint: list[str], args: list[str]) -> list[str]:
        """The whole command line, with ``{python}`` for the backend's interpreter."""
        if self.kind == "torchrun":
            return [PYTHON, "-m", "torch.distributed.run", *self.args(), *entrypoint, *args]
        if self.kind == "deepspeed":
            entry = ["--module", *entrypoint[1:]] if entrypoint[:1] == ["-m"] else entrypoint
            return [PYTHON, "-m", "deepspeed.launcher.runner", *self.args(), *entry, *args]
        if self.kind == "ray" and self.address:
            # Inside the cluster the job runs with the cluster's own interpreter.
            return [PYTHON, "-m", "ray.scripts.scripts", *self.args(), "--", "python", *entrypoint, *args]
        return [PYTHON, *entrypoint, *args]


@dataclass
class Command:
    """One process to start. argv[0] may be the placeholder '{python}': the backend's interpreter."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def resolved(self, python: str) -> list[str]:
        """argv with the interpreter in place of the ``{python}`` placeholder (the only substitution)."""
        return [python if a == PYTHON else a for a in self.argv]

    def shell(self, python: str = "python") -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"{env} {shlex.join(self.resolved(python))}".strip()


@dataclass
class Note:
    """Something the translation did that a user should know: a field dropped, defaulted or approximated."""

    field: str
    kind: Literal["set", "defaulted", "approximated", "dropped", "passthrough", "derived"]
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.field}: {self.message}"


@dataclass
class ImportResult:
    """A framework's native config read back as a ptsdk job (`ptsdk import`).

    `job` is a job mapping (the caller validates it); `notes` hold one Note for every native setting
    that maps only approximately, is dropped, or lands in ``backend_options`` (kind "passthrough"), so
    that nothing is lost silently. `settings` is the native config as flat dotted keys, as the importer
    read it (what a round-trip compares against)."""

    job: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """Everything needed to run a job on one backend, as data. Printable, diffable, testable."""

    backend: str
    files: list[PlanFile]
    #: What the launcher starts: a script in the run directory (["train_trl.py"]) or a module (["-m", "pkg.mod"]).
    entrypoint: list[str]
    #: The framework's native arguments: a config path, Hydra overrides ("a.b=1") or flags ("--a.b", "1").
    args: list[str] = field(default_factory=list)
    launcher: Launcher = field(default_factory=Launcher)
    env: dict[str, str] = field(default_factory=dict)
    #: The main native config file among `files`, when the framework reads one (None: the args are the config).
    native_config: str | None = None
    #: Commands run before the launch, one process each, in the backend's interpreter (data conversion, say).
    prepare: list[Command] = field(default_factory=list)
    #: Commands run after the launch succeeded, one process each, in the backend's interpreter (exporting the weights).
    finalize: list[Command] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    effective: dict[str, Any] = field(default_factory=dict)
    #: Local files and folders outside the run directory that the run reads (mounted into containers).
    inputs: list[str] = field(default_factory=list)
    #: The job this plan was made from (not part of the plan's data: to_dict leaves it out).
    job: Job | None = field(default=None, repr=False, compare=False)

    @property
    def launch(self) -> Command:
        return Command(self.launcher.argv(self.entrypoint, self.args), dict(self.env), "train")

    @property
    def commands(self) -> list[Command]:
        """Every process the run starts, in order: the preparation steps, the launch, then the finalize steps."""
        return [*self.prepare, self.launch, *self.finalize]

    def native_text(self) -> str:
        """The native configuration as a user reads it: the config file, else the arguments one per line."""
        if self.native_config is not None:
            return self.file(self.native_config).content or ""
        return "".join(f"{a}\n" for a in self.args)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, job=None))
        data.pop("job")
        data["commands"] = [asdict(c) for c in self.commands]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def file(self, path: str) -> PlanFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)


class Backend(ABC):
    """A training framework behind ptsdk.

    Subclasses set ``name``, ``framework`` (the distribution whose version is reported) and
    ``capabilities`` and implement :meth:`translate`. They may set ``check_script`` (run in the
    framework's environment by ptsdk's check harness), override :meth:`static_problems`,
    :meth:`parse_metrics`, :meth:`artifacts_problems`, :meth:`resume` and :meth:`environment`.
    """

    name: ClassVar[str]
    framework: ClassVar[str]
    description: ClassVar[str] = ""
    capabilities: ClassVar[tuple[Capability, ...]] = ()
    #: Versions the capabilities were verified with.
    verified_with: ClassVar[dict[str, str]] = {}
    #: False for a backend that declares what its framework does but cannot translate yet.
    translates: ClassVar[bool] = True
    #: How to get the framework when it is missing.
    install_hint: ClassVar[str] = ""
    #: Distributions whose versions the manifest records (the framework and torch always).
    reported_packages: ClassVar[tuple[str, ...]] = ()
    #: A script defining ``check(request) -> dict`` run by ptsdk's check harness in the framework's
    #: environment (see ptsdk/plugins/harness.py); None: no native check.
    check_script: ClassVar[Path | None] = None
    #: For a framework that cannot be installed from the package registry (git-only): the repository and the
    #: pinned commit its config schema was read from, ``github.com/OWNER/REPO@COMMIT``. Such a backend checks
    #: its translations against that schema in its own code; its capabilities stay ``declared`` and the
    #: matrix names this source as their evidence.
    schema_source: ClassVar[str | None] = None
    #: Modules the ``ptsdk`` command may import in the framework's interpreter while it checks the job, when
    #: the run's first command is a script (``{python} SCRIPT.py ...``) and the environment is the last run's
    #: (ptsdk.warm): modules the script imports anyway, whose import reads no file of the run and needs nothing
    #: the script does before importing them. () turns the warm start off.
    warm_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, env: BackendEnv | None = None) -> None:
        self._env = env

    @property
    def env(self) -> BackendEnv:
        if self._env is None:
            from ptsdk.envs import resolve_env

            self._env = resolve_env(self)
        return self._env

    @classmethod
    def environment(cls) -> EnvironmentSpec:
        """How `ptsdk env create` builds this backend's environment: by default torch first, then the
        pins in the requirements.txt beside the backend's module. A framework that installs from git only
        (schema_source set) cannot be built: the error says how to install it by hand and point ptsdk at it."""
        from ptsdk.plugins.environment import default_environment

        if cls.schema_source is not None:
            from ptsdk.errors import PtsdkError

            raise PtsdkError(
                f"backend {cls.name}: {cls.framework} installs from git only ({cls.schema_source}), not from the "
                "package registry, so ptsdk cannot build its environment",
                lines=[f"install it by hand: {cls.install_hint}"] if cls.install_hint else [],
            )
        return default_environment(cls)

    def total_steps(self, run_dir: Path) -> int | None:
        """The optimizer steps the running framework will take, when its logs say (the live view's total when
        the job gives epochs rather than training.max_steps); None when unknown."""
        return None

    def static_problems(self, job: Job) -> list[str]:
        """Backend-specific checks that need no framework, beyond the capability matrix."""
        return []

    def import_native(self, source: Path) -> ImportResult:
        """Read a native config of this framework (its YAML, Hydra overrides or a launch command line, as
        the backend documents) into a ptsdk job; see :class:`ImportResult`. Raise PtsdkError for input
        that is not such a config."""
        from ptsdk.errors import UnsupportedError

        raise UnsupportedError(f"backend {self.name}: importing {self.framework} configs is not supported yet")

    @abstractmethod
    def translate(self, job: Job) -> Plan:
        """The job in the framework's own terms. Pure: reads nothing but the job."""

    def check_request(self, plan: Plan, workdir: Path) -> dict[str, Any]:
        """What the check script gets: the written plan's folder, its native config and arguments, the launcher."""
        return {
            "workdir": str(workdir),
            "config": plan.native_config,
            "args": plan.args,
            "entrypoint": plan.entrypoint,
            "launcher": {"kind": plan.launcher.kind, "args": plan.launcher.args()},
            "target": plan.job.distributed.device if plan.job is not None else None,
            "world_size": plan.launcher.world_size,
        }

    def native_check(self, plan: Plan, workdir: Path) -> list[str]:
        """Problems the framework's own validator finds in the plan written under workdir."""
        if self.check_script is None:
            return []
        return list(self.run_check([self.check_request(plan, workdir)])[0]["errors"])

    def run_check(self, requests: list[dict[str, Any]], *, timeout: float = 600) -> list[dict[str, Any]]:
        """Run the check script on several requests in one process of the framework's environment."""
        from ptsdk.plugins.harness import run_harness

        assert self.check_script is not None, f"backend {self.name} has no check_script"
        return run_harness(self.env, self.check_script, requests, timeout=timeout)

    def resume(self, plan: Plan, run_dir: Path) -> Plan:
        """The plan that continues an interrupted run in run_dir from its last checkpoint."""
        from ptsdk.errors import UnsupportedError

        raise UnsupportedError(f"backend {self.name}: resuming a run is not supported by this backend")

    def resume_step(self, run_dir: Path) -> int | None:
        """The optimizer step a resume of run_dir continues from; None when the backend cannot tell."""
        return None

    def parse_metrics(self, run_dir: Path) -> Iterator[MetricRecord]:
        """The run's metrics in ptsdk's normalized schema."""
        return iter(())

    def artifacts_problems(self, run_dir: Path) -> list[str]:
        """What is missing from a finished run directory (the model, say)."""
        return []
