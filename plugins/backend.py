"""The contract every backend implements, and the Plan it produces."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from ptsdk.envs import BackendEnv
    from ptsdk.matrix.capability import Capability
    from ptsdk.metrics import MetricRecord
    from ptsdk.spec import Job


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


@dataclass
class Command:
    """One process to start. argv[0] may be the placeholder '{python}': the backend's interpreter."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def shell(self, python: str = "python") -> str:
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        argv = " ".join(shlex.quote(python if a == "{python}" else a) for a in self.argv)
        return f"{env} {argv}".strip()


@dataclass
class Note:
    """Something the translation did that a user should know: a field dropped, defaulted or approximated."""

    field: str
    kind: Literal["set", "defaulted", "approximated", "dropped", "passthrough"]
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.field}: {self.message}"


@dataclass
class Plan:
    """Everything needed to run a job on one backend, as data."""

    backend: str
    files: list[PlanFile]
    commands: list[Command]
    native_config: str
    notes: list[Note] = field(default_factory=list)
    effective: dict[str, object] = field(default_factory=dict)
    #: Local files and folders outside the run directory that the run reads (mounted into containers).
    inputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

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
    ``capabilities``; they implement :meth:`translate` and :meth:`parse_metrics`, and may
    override :meth:`native_check` to run the framework's own validator in its environment.
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

    def __init__(self, env: BackendEnv | None = None) -> None:
        self._env = env

    @property
    def env(self) -> BackendEnv:
        if self._env is None:
            from ptsdk.envs import resolve_env

            self._env = resolve_env(self)
        return self._env

    def static_problems(self, job: Job) -> list[str]:
        """Backend-specific checks that need no framework, beyond the capability matrix."""
        return []

    @abstractmethod
    def translate(self, job: Job) -> Plan:
        """The job in the framework's own terms. Pure: reads nothing but the job."""

    def native_check(self, plan: Plan, workdir: Path) -> list[str]:
        """Problems the framework's own validator finds in the plan written under workdir."""
        return []

    def parse_metrics(self, run_dir: Path) -> Iterator[MetricRecord]:
        """The run's metrics in ptsdk's normalized schema."""
        return iter(())

    def artifacts_problems(self, run_dir: Path) -> list[str]:
        """What is missing from a finished run directory (the model, say)."""
        return []


def local_inputs(job: Job) -> list[str]:
    """Local paths a job reads (data, model, reward files, chat template): what a container must see."""
    from pathlib import Path

    paths = [job.data.train.path, job.data.eval.path if job.data.eval else None, job.model.name_or_path,
             job.model.chat_template, getattr(job.adapter, "init_path", None),
             *[r.rsplit(":", 1)[0] for r in getattr(job.method, "rewards", [])]]  # fmt: skip
    return sorted({p for p in paths if p and p.startswith("/") and Path(p).exists()})


def chat_template_sha(job: Job) -> str | None:
    """Short hash of the chat template in effect: the job's own, else the local tokenizer's."""
    import hashlib
    import json
    from pathlib import Path

    text = job.model.chat_template
    if text and text.endswith(".jinja") and Path(text).is_file():
        text = Path(text).read_text()
    if not text:
        model = Path(job.model.name_or_path)
        if (model / "chat_template.jinja").is_file():
            text = (model / "chat_template.jinja").read_text()
        elif (model / "tokenizer_config.json").is_file():
            text = json.loads((model / "tokenizer_config.json").read_text()).get("chat_template")
    return hashlib.sha256(text.encode()).hexdigest()[:12] if isinstance(text, str) and text else None


def torchrun_args(job: Job) -> list[str]:
    """torchrun arguments for the job's processes ([] for one process); multi-node uses c10d rendezvous."""
    d = job.distributed
    if d.world_size == 1:
        return []
    args = [f"--nproc_per_node={d.gpus_per_node}"]
    if d.nodes > 1:
        args += [f"--nnodes={d.nodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={d.master_addr}:{d.master_port}",
                 f"--rdzv_id={job.name or 'ptsdk'}"]  # fmt: skip
    else:
        args.append("--standalone")
    return args


def model_dir_problems(run_dir: Path) -> list[str]:
    """The trained weights every backend saves under run_dir/model."""
    model = run_dir / "model"
    found = list(model.glob("*.safetensors")) if model.is_dir() else []
    return [] if found else [f"no trained weights in {model}"]
