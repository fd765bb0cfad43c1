"""The job: one framework-neutral description of a post-training run."""

from __future__ import annotations

import math
import re
from typing import Any, Final, Literal

from ptsdk.errors import brief
from ptsdk.spec.adapter import AdapterSpec, FullFineTune
from ptsdk.spec.base import SpecModel
from ptsdk.spec.data import FAMILY_FORMATS, RECORD_FIELDS, DataSpec
from ptsdk.spec.distributed import DistributedSpec
from ptsdk.spec.method import GROUP_METHODS, MethodSpec, _OnlineRL
from ptsdk.spec.model import ModelSpec
from ptsdk.spec.output import OutputSpec
from ptsdk.spec.parse import non_finite
from ptsdk.spec.rollout import RolloutSpec
from ptsdk.spec.training import TrainingSpec
from pydantic import Field, ModelWrapValidatorHandler, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

SPEC_VERSION: Final = 1

# A job's name becomes part of a directory name (output.dir/NAME-BACKEND-TIME): one plain file name.
MAX_NAME_CHARS: Final = 100
JOB_NAME: Final = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_NAME_CHARS - 1}}}")


class Job(SpecModel):
    """A post-training job. Every backend reads this and nothing else (but its own passthrough)."""

    version: Literal[1] = Field(SPEC_VERSION, description="Spec version; 1 is the only one so far.")
    name: str | None = Field(
        None,
        description=f"A short name for runs and reports (default: the job file's stem): up to {MAX_NAME_CHARS} "
        "letters, digits, '.', '_' or '-', not starting with '.' or '-'.",
    )
    method: MethodSpec = Field(description="The training method and its own hyperparameters.")
    model: ModelSpec = Field(description="The model to train.")
    adapter: AdapterSpec = Field(default_factory=FullFineTune, description="Full fine-tune, LoRA or QLoRA.")
    data: DataSpec = Field(description="Training (and evaluation) data.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Optimization settings.")
    distributed: DistributedSpec = Field(default_factory=DistributedSpec, description="Devices and parallelism.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="Logging, checkpoints, run location.")
    rollout: RolloutSpec | None = Field(
        None,
        description="Online RL only: the inference engine that generates completions and where it runs. "
        "Unset: each framework's own generation (TRL and Axolotl generate with the training model).",
    )
    backend_options: dict[str, dict[str, Any]] = Field(
        default={},
        description="Per-backend passthrough: backend name -> native keys merged into ptsdk's native config. "
        "Mappings merge key by key (TRL, Axolotl; vERL Hydra overrides and OpenRLHF flags take dotted keys, "
        "nested mappings flatten to them; vERL: '+key' for a key new to vERL; OpenRLHF: flag names without '--', "
        "true for a bare flag, false to leave one out); other values replace. A key ptsdk sets from the job to "
        "another value is refused, naming the job field to use; a list for such a key must keep ptsdk's entries; "
        "keys a job field owns (strategy, precision, model, data and output locations) are refused even where "
        "ptsdk sets nothing. The reserved key ptsdk_override: [dotted.native.key, ...] lets the named keys (and "
        "everything under them) replace ptsdk's value. The only place a framework's vocabulary belongs in a job.",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and not JOB_NAME.fullmatch(name):
            raise ValueError(
                f"{brief(name)} cannot name a run directory: use 1-{MAX_NAME_CHARS} letters, digits, '.', '_' or '-', "
                "starting with a letter, digit or '_'"
            )
        return name

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(cls, data: Any, handler: ModelWrapValidatorHandler[Job]) -> Job:
        job = handler(data)
        problems = list(cross_field_problems(job))
        if problems:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(type=PydanticCustomError("cross_field", msg), loc=loc, input=value)
                    for loc, msg, value in problems
                ],
            )
        job._resolve_defaults()
        return job

    def _resolve_defaults(self) -> None:
        """Fill defaults that depend on other fields, so the resolved job states every value."""
        if self.data.format is None:
            self.data.format = FAMILY_FORMATS[self.method.family][0]
        if self.training.learning_rate is None:
            self.training.learning_rate = 2e-5 if self.adapter.type == "full" else 2e-4
        if self.training.epochs is None and self.training.max_steps is None:
            self.training.epochs = 1.0

    @property
    def gradient_accumulation_steps(self) -> int:
        per_step = self.training.micro_batch_size * self.distributed.data_parallel_size
        return self.training.global_batch_size // per_step

    @property
    def warmup_steps(self) -> int | None:
        """Warmup in optimizer steps, rounded up, when the run length is known in steps; else None."""
        if self.training.max_steps is None:
            return None
        return math.ceil(self.training.warmup_ratio * self.training.max_steps)

    @property
    def uses_adapter(self) -> bool:
        return self.adapter.type != "full"


Loc = tuple[str | int, ...]


def cross_field_problems(job: Job) -> list[tuple[Loc, str, Any]]:
    """Checks that need several fields but no backend. Each names a field and the fix."""
    out: list[tuple[Loc, str, Any]] = []
    t, d, m = job.training, job.distributed, job.method

    per_step = t.micro_batch_size * d.data_parallel_size
    if t.global_batch_size % per_step:
        out.append(
            (
                ("training", "global_batch_size"),
                f"{t.global_batch_size} is not divisible by micro_batch_size x data-parallel size = "
                f"{t.micro_batch_size} x {d.data_parallel_size} = {per_step}; use a multiple of {per_step}",
                t.global_batch_size,
            )
        )
    if t.loss_normalization != "tokens" and m.name != "sft":
        out.append(
            (
                ("training", "loss_normalization"),
                f"applies to SFT's token-level loss; {m.name}'s loss is averaged over sequences: remove it",
                t.loss_normalization,
            )
        )

    if isinstance(m, _OnlineRL):
        gens = m.num_generations
        if m.name in GROUP_METHODS and gens < 2:
            out.append(
                (
                    ("method", "num_generations"),
                    f"{m.name} compares completions of one prompt: set it to 2 or more",
                    gens,
                )
            )
        elif gens < 1:
            out.append((("method", "num_generations"), "must be at least 1", gens))
        if gens >= 1 and t.global_batch_size % gens:
            out.append(
                (
                    ("training", "global_batch_size"),
                    f"{t.global_batch_size} completions do not split into groups of method.num_generations={gens}; "
                    f"use a multiple of {gens}",
                    t.global_batch_size,
                )
            )
        if not m.rewards and not m.reward_model:
            out.append(
                (
                    ("method", "rewards"),
                    "online RL needs a reward: list reward functions or set method.reward_model",
                    [],
                )
            )

    if job.adapter.type == "qlora" and job.model.quantization != "4bit":
        out.append(
            (
                ("model", "quantization"),
                "adapter.type=qlora trains on a 4-bit base: set model.quantization: 4bit",
                job.model.quantization,
            )
        )
    if job.adapter.type == "full" and job.model.quantization != "none":
        out.append(
            (
                ("model", "quantization"),
                "quantized weights cannot be fully fine-tuned: use adapter.type lora/qlora or quantization none",
                job.model.quantization,
            )
        )

    fmt = job.data.format
    allowed = FAMILY_FORMATS[m.family]
    if fmt is not None and fmt not in allowed:
        out.append((("data", "format"), f"{m.name} reads {' or '.join(allowed)} records, not {fmt}", fmt))
    fields = RECORD_FIELDS[fmt or allowed[0]]
    for key in job.data.columns:
        if key not in fields:
            out.append(
                (
                    ("data", "columns", key),
                    f"{fmt or allowed[0]} records have no field {brief(key)}; they have {', '.join(fields)}",
                    key,
                )
            )

    images = job.data.images
    if images is not None:
        canonical = {f for names in RECORD_FIELDS.values() for f in names}
        taken = canonical | set(job.data.columns.values())
        if images.column in taken:
            out.append(
                (
                    ("data", "images", "column"),
                    f"{brief(images.column)} is a record field ptsdk reads as text; name the images column apart",
                    images.column,
                )
            )
        if fmt == "instruction":
            out.append(
                (
                    ("data", "images"),
                    "Alpaca instruction records are rendered as plain text with no place for an image; give "
                    "messages or prompt/completion records",
                    fmt,
                )
            )

    if d.device == "cpu":
        if t.precision == "fp16":
            out.append((("training", "precision"), "fp16 needs a GPU; use fp32 (or bf16) with device=cpu", t.precision))
        if d.strategy in ("fsdp", "deepspeed", "megatron"):
            out.append(
                (("distributed", "strategy"), f"{d.strategy} needs GPUs; use ddp (gloo) with device=cpu", d.strategy)
            )

    if job.rollout is not None:
        if m.family != "rl":
            out.append(
                (("rollout",), f"{m.name} generates nothing during training: remove rollout (online RL only)", None)
            )
        elif job.rollout.tensor_parallel_size > d.gpus_per_node:
            out.append(
                (
                    ("rollout", "tensor_parallel_size"),
                    f"{job.rollout.tensor_parallel_size} is more than the {d.gpus_per_node} GPUs of a node",
                    job.rollout.tensor_parallel_size,
                )
            )
        if d.device == "cpu":
            out.append(
                (
                    ("rollout", "engine"),
                    f"{job.rollout.engine} needs GPUs; remove rollout with device=cpu",
                    job.rollout.engine,
                )
            )

    o = job.output
    has_eval = job.data.eval is not None or job.data.eval_split is not None
    for key in ("eval_steps", "evals_per_epoch"):
        if getattr(o, key) is not None and not has_eval:
            out.append(
                (
                    ("output", key),
                    f"evaluation needs data: set data.eval or data.eval_split, or remove output.{key}",
                    getattr(o, key),
                )
            )
    for steps, per_epoch in (("save_steps", "saves_per_epoch"), ("eval_steps", "evals_per_epoch")):
        if getattr(o, steps) is not None and getattr(o, per_epoch) is not None:
            out.append(
                (
                    ("output", per_epoch),
                    f"set only one of output.{steps} and output.{per_epoch}",
                    getattr(o, per_epoch),
                )
            )
    if job.data.prompt_in_answers and (fmt or allowed[0]) != "preference":
        out.append(
            (
                ("data", "prompt_in_answers"),
                f"applies to preference records (chosen/rejected conversations); this job reads {fmt or allowed[0]}",
                True,
            )
        )
    if job.data.prompt_in_answers and "prompt" in job.data.columns:
        out.append(
            (
                ("data", "columns", "prompt"),
                "data.prompt_in_answers takes the prompt from the conversations: remove the prompt column mapping",
                job.data.columns["prompt"],
            )
        )
    if len(job.data.message_keys.values()) != len(set(job.data.message_keys.values())):
        out.append((("data", "message_keys"), "two canonical keys read the same key", job.data.message_keys))
    if job.data.eval is not None and job.data.eval_split is not None:
        out.append(
            (
                ("data", "eval_split"),
                "data.eval already names the evaluation data: remove data.eval_split (or data.eval)",
                job.data.eval_split,
            )
        )
    if isinstance(m, _OnlineRL):
        # data.max_length is an SFT/preference length; an RL job is held to it only where it was set.
        if m.max_prompt_length is not None and "max_length" in job.data.model_fields_set:
            total = m.max_prompt_length + m.max_completion_length
            if total > job.data.max_length:
                out.append(
                    (
                        ("data", "max_length"),
                        f"{job.data.max_length} is shorter than max_prompt_length + max_completion_length = "
                        f"{total}; raise it, or remove it (online RL is sized by those two)",
                        job.data.max_length,
                    )
                )
        if m.rollout_batch_size is not None and m.num_generations >= 1:
            completions = m.rollout_batch_size * m.num_generations
            if completions % t.global_batch_size:
                out.append(
                    (
                        ("method", "rollout_batch_size"),
                        f"{m.rollout_batch_size} prompts x num_generations {m.num_generations} = {completions} "
                        f"completions do not split into optimizer steps of training.global_batch_size="
                        f"{t.global_batch_size}; use a multiple of "
                        f"{t.global_batch_size // math.gcd(t.global_batch_size, m.num_generations)} prompts",
                        m.rollout_batch_size,
                    )
                )
    for loc, value in non_finite(job.backend_options, ("backend_options",)):
        where = tuple(part if isinstance(part, (str, int)) else str(part) for part in loc)
        out.append((where, f"must be a finite number, got {value!r}", value))
    return out
