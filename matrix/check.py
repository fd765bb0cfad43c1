"""What a job needs, and whether a backend has it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ptsdk.spec.method import METHOD_NAMES, _OnlineRL, loss_variant

if TYPE_CHECKING:
    from ptsdk.plugins.backend import Backend
    from ptsdk.spec import Job


@dataclass(frozen=True)
class Requirement:
    kind: str
    name: str
    field: str  # the job field that creates the requirement
    label: str  # how a person would say it

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


def requirements_of(job: Job) -> list[Requirement]:
    m, d = job.method, job.distributed
    reqs = [Requirement("method", m.name, "method.name", f"method {m.name!r}")]
    variant = loss_variant(m)
    if variant is not None:
        reqs.append(Requirement("loss", f"{m.name}:{variant}", "method.loss_type", f"{m.name} loss_type {variant!r}"))
    reqs.append(Requirement("adapter", job.adapter.type, "adapter.type", f"adapter {job.adapter.type!r}"))
    strategy = d.effective_strategy
    if strategy == "deepspeed":
        strategy = f"deepspeed_zero{d.zero_stage}"
    if strategy != "none":
        reqs.append(Requirement("strategy", strategy, "distributed.strategy", f"strategy {strategy!r}"))
    if d.nodes > 1:
        reqs.append(Requirement("topology", "multi_node", "distributed.nodes", f"{d.nodes} nodes"))
    if d.device == "cpu":
        reqs.append(Requirement("device", "cpu", "distributed.device", "training on CPU"))
    if d.tensor_parallel_size > 1:
        reqs.append(Requirement("parallel", "tensor", "distributed.tensor_parallel_size", "tensor parallelism"))
    if d.pipeline_parallel_size > 1:
        reqs.append(Requirement("parallel", "pipeline", "distributed.pipeline_parallel_size", "pipeline parallelism"))
    if getattr(m, "rewards", None):
        reqs.append(Requirement("reward", "functions", "method.rewards", "reward functions"))
    if getattr(m, "reward_model", None):
        reqs.append(Requirement("reward", "model", "method.reward_model", "a reward model"))
    if job.rollout is not None:
        reqs.append(Requirement("rollout", job.rollout.engine, "rollout.engine", f"{job.rollout.engine} rollouts"))
    if d.ray_address:
        reqs.append(Requirement("topology", "ray_cluster", "distributed.ray_address", "an existing Ray cluster"))
    reqs += [Requirement("feature", *f) for f in features_of(job)]
    return reqs


#: output.report_to's trackers, each the feature tracking_<name>, as people call them.
TRACKERS = {"tensorboard": "TensorBoard", "wandb": "Weights & Biases", "mlflow": "MLflow", "trackio": "Trackio"}

#: Every optional setting's feature (what `features_of` can ask for), so the matrix shows a row for each even
#: where no backend runs it yet; plus strategies no built-in spec default reaches.
KNOWN_KEYS: frozenset[tuple[str, str]] = frozenset(
    {
        ("feature", name)
        for name in (
            "packing padding_free token_batching adam_betas min_lr special_tokens dataset_subset eval_split "
            "instruction_records per_epoch_cadence unlimited_prompt several_steps_per_rollout epochs_per_rollout "
            "rollout_server message_mapping implicit_prompt loss_per_micro_batch quantized_cpu:4bit "
            "quantized_cpu:8bit quantized_cpu:multi_process"
        ).split()
    }
    | {("feature", f"kl_in_{where}:{k}") for where in ("loss", "reward") for k in ("k1", "k2", "k3")}
    | {("strategy", "megatron")}
    | {("feature", f"tracking_{tracker}") for tracker in TRACKERS}
    | {("feature", f"images:{method}") for method in METHOD_NAMES}
)


def features_of(job: Job) -> list[tuple[str, str, str]]:
    """(feature, job field, label) for every optional setting a job uses: what a backend must declare (kind
    "feature") to run it. A setting at its default asks for nothing."""
    t, d, m, o = job.training, job.data, job.method, job.output
    out: list[tuple[str, str, str]] = []

    def want(cond: object, name: str, where: str, label: str) -> None:
        if cond:
            out.append((name, where, label))

    want(t.packing, "packing", "training.packing", "sequence packing")
    want(t.padding_free, "padding_free", "training.padding_free", "padding-free batches")
    want(
        t.max_tokens_per_micro_batch is not None,
        "token_batching",
        "training.max_tokens_per_micro_batch",
        "token-budget (dynamic) micro-batches",
    )
    want(
        (t.adam_beta1, t.adam_beta2, t.adam_epsilon) != (0.9, 0.999, 1e-8),
        "adam_betas",
        "training.adam_beta1",
        "Adam betas/epsilon other than (0.9, 0.999, 1e-8)",
    )
    want(t.min_lr_ratio > 0, "min_lr", "training.min_lr_ratio", "a cosine floor (min_lr_ratio)")
    quantized_cpu = job.distributed.device == "cpu" and job.model.quantization != "none"
    bits = {"4bit": "a 4-bit", "8bit": "an 8-bit"}.get(job.model.quantization, "")
    want(
        quantized_cpu,
        f"quantized_cpu:{job.model.quantization}",
        "model.quantization",
        f"{bits} bitsandbytes base on CPU",
    )
    want(
        quantized_cpu and job.distributed.world_size > 1,
        "quantized_cpu:multi_process",
        "model.quantization",
        "a bitsandbytes base in several CPU processes",
    )
    want(
        t.loss_normalization == "micro_batch",
        "loss_per_micro_batch",
        "training.loss_normalization",
        "an SFT loss averaged per micro-batch",
    )
    want(job.model.pad_token or job.model.eos_token, "special_tokens", "model.pad_token", "pad/eos token overrides")
    want(
        d.train.subset or (d.eval is not None and d.eval.subset),
        "dataset_subset",
        "data.train.subset",
        "a hub dataset subset",
    )
    want(d.eval_split is not None, "eval_split", "data.eval_split", "an evaluation split held out of train")
    want(d.format == "instruction", "instruction_records", "data.format", "Alpaca instruction records")
    want(
        d.message_keys or d.role_names,
        "message_mapping",
        "data.message_keys",
        "renamed message keys or roles (e.g. ShareGPT from/value)",
    )
    want(d.prompt_in_answers, "implicit_prompt", "data.prompt_in_answers", "a prompt embedded in chosen/rejected")
    # Per method: a framework's vision support is trainer by trainer (TRL's ORPO has none, OpenRLHF only online RL).
    want(d.images is not None, f"images:{m.name}", "data.images", f"images in {m.name} records")
    want(
        o.saves_per_epoch is not None or o.evals_per_epoch is not None,
        "per_epoch_cadence",
        "output.saves_per_epoch",
        "saves/evals per epoch",
    )
    if isinstance(m, _OnlineRL):
        want(m.max_prompt_length is None, "unlimited_prompt", "method.max_prompt_length", "no prompt limit")
        if m.kl_coef > 0:
            out.append(
                (
                    f"kl_in_{m.kl_placement}:{m.kl_estimator}",
                    "method.kl_placement",
                    f"a {m.kl_estimator} KL penalty in the {m.kl_placement}",
                )
            )
        want(
            m.rollout_batch_size is not None
            and m.rollout_batch_size * m.num_generations != job.training.global_batch_size,
            "several_steps_per_rollout",
            "method.rollout_batch_size",
            "several optimizer steps per rollout",
        )
        want(m.epochs_per_rollout > 1, "epochs_per_rollout", "method.epochs_per_rollout", "PPO epochs")
    if job.rollout is not None and job.rollout.server:
        out.append(("rollout_server", "rollout.server", "an external inference server"))
    for tracker in o.report_to:
        out.append((f"tracking_{tracker}", "output.report_to", f"experiment tracking with {TRACKERS[tracker]}"))
    return out


@dataclass
class Unmet:
    requirement: Requirement
    backend: str
    able: list[str]  # backends that have this capability

    def __str__(self) -> str:
        who = ", ".join(self.able) if self.able else "no installed backend"
        return f"{self.requirement.field}: {self.backend} cannot run {self.requirement.label}; backends that can: {who}"


@dataclass
class CheckResult:
    backend: str
    unmet: list[Unmet] = field(default_factory=list)
    #: Backend-specific reasons beyond the capability matrix (Backend.static_problems).
    problems: list[str] = field(default_factory=list)
    accepted_by: list[str] = field(default_factory=list)  # backends that can run the whole job

    @property
    def ok(self) -> bool:
        return not self.unmet and not self.problems

    def reasons(self) -> list[str]:
        return [*map(str, self.unmet), *self.problems]


def _keys(cls: type[Backend]) -> set[tuple[str, str]]:
    return {c.key for c in cls.capabilities}


def feasibility(job: Job, backends: Mapping[str, type[Backend]]) -> dict[str, CheckResult]:
    """For every backend, why it cannot run the job (empty when it can): the one place that decides.

    A backend can run a job when it declares every capability the job requires *and* its own
    static checks (which need no framework) find nothing. validate, translate, run, compare and
    every "backends that can" list read this.
    """
    reqs = requirements_of(job)
    have = {name: _keys(cls) for name, cls in backends.items()}
    results: dict[str, CheckResult] = {}
    for name, cls in backends.items():
        result = CheckResult(backend=name)
        for req in reqs:
            if req.key not in have[name]:
                able = sorted(n for n, keys in have.items() if req.key in keys)
                result.unmet.append(Unmet(req, name, able))
        if not result.unmet:
            result.problems = list(cls().static_problems(job))
        results[name] = result
    accepted = sorted(n for n, r in results.items() if r.ok)
    for r in results.values():
        r.accepted_by = accepted
    return results


def check(job: Job, backend: str, backends: Mapping[str, type[Backend]]) -> CheckResult:
    """What stops `backend` from running the job, and which backends can run all of it."""
    results = feasibility(job, backends)
    if backend in results:
        return results[backend]
    return CheckResult(backend=backend, accepted_by=next(iter(results.values())).accepted_by if results else [])
