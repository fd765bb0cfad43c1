"""OpenInstruct (allenai/open-instruct): a ptsdk job as the command line of one of its training scripts.

- SFT: ``open_instruct/finetune.py`` (Accelerate; full, LoRA, QLoRA).
- DPO and SimPO: ``open_instruct/dpo_tune_cache.py`` (Accelerate + DeepSpeed; LoRA and QLoRA there only: the OLMo-core
  ``dpo.py`` refuses LoRA, dpo.py:143-144). ``loss_type`` dpo / dpo_norm / simpo (dpo_utils.py:76-80).
- GRPO: ``open_instruct/grpo_fast.py`` (Ray + vLLM), declared only: its rewards are OpenInstruct's own verifiers,
  chosen per record by the ``dataset`` column (ground_truth_utils.py:1188 build_all_verifiers), so ptsdk's reward
  functions (``method.rewards``) and reward models cannot be plugged in; every ptsdk GRPO job is refused.

OpenInstruct is installed from git with uv (pyproject.toml: requires-python ==3.12.*), not from the package registry.
Every command line is checked against its argument dataclasses as transcribed at the pinned commit (schema.py,
cli.py); every capability stays ``declared``, its note naming the source file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ptsdk.errors import PtsdkError
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import PYTHON, Backend, Command, Note, Plan, PlanFile
from ptsdk.plugins.kit import (
    apply_flag_passthrough,
    common_env,
    launcher_for,
    local_inputs,
    parse_flags,
    passthrough_problems,
)
from ptsdk.spec.data import LOCAL_SUFFIXES
from ptsdk.spec.method import DPO, SimPO
from pydantic import BaseModel

from ptsdk_openinstruct.cli import command_line_problems
from ptsdk_openinstruct.pinned import COMMIT

if TYPE_CHECKING:
    from ptsdk.spec import Job

HERE = Path(__file__).resolve().parent
REPO = "https://github.com/allenai/open-instruct"
D = Verified.declared

#: The script each translated method family runs, and the transcribed dataclasses its parser reads (by name in
#: ptsdk_openinstruct.schema, imported when a command line is checked).
SCRIPTS: dict[str, tuple[str, str]] = {
    "sft": ("open_instruct/finetune.py", "FinetuneArgs"),
    "preference": ("open_instruct/dpo_tune_cache.py", "DpoTuneCacheArgs"),
}
#: ptsdk's DPO loss_type -> dpo_utils.DPOLossType: sigmoid is the DPO loss (dpo_utils.py dpo_loss), sigmoid_norm
#: the same on length-normalized log-probabilities (dpo_norm, DPOLossType.is_average_loss).
DPO_LOSSES = {"sigmoid": "dpo", "sigmoid_norm": "dpo_norm"}
#: ptsdk's lr_scheduler -> FlatArguments.lr_scheduler_type's choices (finetune.py:186-192).
SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "constant": "constant",
    "constant_with_warmup": "constant_with_warmup",
}
#: Accelerate's mixed precision (read from the environment by the Accelerator both scripts build).
PRECISION = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}

#: Flags a job field owns even where ptsdk sets none (backend_options refuses them unless ptsdk_override names them).
OWNED = {
    "model_name_or_path": "model.name_or_path",
    "tokenizer_name_or_path": "model.name_or_path",
    "dataset_mixer_list": "data.train.path",
    "mixer_list": "data.train.path",
    "dataset_name": "data.train.path",
    "output_dir": "output.dir",
    "use_lora": "adapter.type",
    "use_qlora": "adapter.type",
    "loss_type": "method.loss_type",
}

# Files in the run directory.
PREPARE = "prepare_openinstruct.py"
DATA_SPEC = "openinstruct_data.json"
TRAIN_DATA = "data/train.jsonl"
MODEL = "model"
CACHE = "dataset_cache"


def source(path: str, lines: str = "") -> str:
    return f"{path}{':' + lines if lines else ''} at allenai/open-instruct@{COMMIT[:12]}"


class OpenInstructBackend(Backend):
    name = "openinstruct"
    framework = "open-instruct"
    description = "AI2 OpenInstruct: finetune.py (SFT), dpo_tune_cache.py (DPO, SimPO); grpo_fast.py declared."
    schema_source = f"github.com/allenai/open-instruct@{COMMIT}"
    verified_with: ClassVar[dict[str, str]] = {"open-instruct": COMMIT[:12]}
    install_hint = (
        f"git clone {REPO} && git -C open-instruct checkout {COMMIT} && cd open-instruct && uv sync "
        "(Python 3.12, a CUDA machine); then export PTSDK_OPENINSTRUCT_PYTHON=$PWD/.venv/bin/python"
    )
    capabilities = (
        *caps("method", "sft", D, note=source("open_instruct/finetune.py")),
        *caps("method", "dpo simpo", D, note=source("open_instruct/dpo_tune_cache.py", "762-764")),
        *caps("loss", "dpo:sigmoid dpo:sigmoid_norm", D, note=source("open_instruct/dpo_utils.py", "76-80")),
        *caps(
            "method",
            "grpo",
            D,
            note=source("open_instruct/grpo_fast.py", "2389-2404")
            + "; rewards are its own verifiers (ground_truth_utils.py), not ptsdk reward functions",
        ),
        *caps("adapter", "full", D, note=source("open_instruct/finetune.py")),
        *caps(
            "adapter",
            "lora qlora",
            D,
            note=source("open_instruct/finetune.py", "142-152") + " (use_lora, use_qlora) and dpo_tune_cache.py only",
        ),
        *caps("strategy", "ddp", D, note="Accelerate under torchrun (finetune.py Accelerator)"),
        *caps(
            "strategy",
            "deepspeed_zero1 deepspeed_zero2 deepspeed_zero3",
            D,
            note=source("open_instruct/dpo_tune_cache.py", "76-137")
            + " (--zero_stage builds a DeepSpeedPlugin); DPO only",
        ),
        *caps("topology", "multi_node", D, note="torchrun's c10d rendezvous; Accelerate reads its environment"),
        *caps("feature", "packing", D, note=source("open_instruct/finetune.py", "404-407") + " (packing)"),
    )

    def static_problems(self, job: Job) -> list[str]:
        out = passthrough_problems(self, job)
        family = job.method.family
        if family not in SCRIPTS:
            return out  # GRPO: the matrix refuses its rewards
        for part, src in (("train", job.data.train), ("eval", job.data.eval)):
            if src is not None and not src.path.endswith(LOCAL_SUFFIXES):
                out.append(
                    f"data.{part}.path: ptsdk converts local {'/'.join(LOCAL_SUFFIXES)} files into OpenInstruct's "
                    "columns; download the hub dataset to a local file first"
                )
        if job.data.eval is not None or job.data.eval_split is not None:
            out.append(
                "data.eval: finetune.py and dpo_tune_cache.py have no evaluation loop; "
                "remove data.eval / data.eval_split"
            )
        if job.model.chat_template:
            out.append(
                "model.chat_template: OpenInstruct names its templates (TokenizerConfig.chat_template_name, "
                "dataset_transformation.py CHAT_TEMPLATES); put yours in the tokenizer's tokenizer_config.json instead"
            )
        if job.data.columns:
            out.append("data.columns: rename the columns to ptsdk's canonical fields for OpenInstruct")
        strategy = job.distributed.strategy
        if strategy == "deepspeed" and family == "sft":
            out.append(
                "distributed.strategy: finetune.py takes DeepSpeed from an `accelerate launch` config, which ptsdk "
                "does not write; dpo_tune_cache.py builds its own (--zero_stage): use ddp for SFT"
            )
        elif strategy not in ("none", "ddp", "deepspeed"):
            out.append(f"distributed.strategy: OpenInstruct's scripts run {strategy} only through Accelerate configs")
        if job.adapter.type != "full" and job.adapter.target_modules != "all-linear":
            out.append(
                "adapter.target_modules: OpenInstruct's LoRA targets every linear layer (finetune.py LoraConfig "
                "target_modules); use all-linear"
            )
        return out

    def translate(self, job: Job) -> Plan:
        problems = self.static_problems(job)
        if job.method.family not in SCRIPTS:
            problems.append(f"method.name: {job.method.name} is declared for OpenInstruct but not translated")
        if problems:
            raise PtsdkError(f"backend {self.name}: this job cannot run", lines=problems)
        from ptsdk_openinstruct import schema

        script, model_name = SCRIPTS[job.method.family]
        model: type[BaseModel] = getattr(schema, model_name)
        notes: list[Note] = []
        flags = parse_flags(self.arguments(job, notes))
        apply_flag_passthrough(job, self.name, flags, notes, owned=OWNED)
        args = [x for flag, values in flags.items() for x in (flag, *(values or []))]
        bad = command_line_problems(args, model)
        if bad:
            raise PtsdkError(f"backend {self.name}: the command line does not fit {script} at {COMMIT[:12]}", lines=bad)
        data_spec: dict[str, Any] = {"format": job.data.format, "files": [[job.data.train.path, TRAIN_DATA]]}
        if job.data.train.max_samples:
            data_spec["max_samples"] = job.data.train.max_samples
        env = {**common_env(job), "ACCELERATE_MIXED_PRECISION": PRECISION[job.training.precision]}
        return Plan(
            backend=self.name,
            files=[
                PlanFile(PREPARE, copy_from=str(HERE / PREPARE)),
                PlanFile(DATA_SPEC, content=json.dumps(data_spec, indent=1, sort_keys=True) + "\n"),
            ],
            entrypoint=["-m", script.removesuffix(".py").replace("/", ".")],
            args=args,
            launcher=launcher_for(job),
            env=env,
            prepare=[Command([PYTHON, PREPARE, DATA_SPEC], description="convert the data into OpenInstruct's columns")],
            notes=notes,
            inputs=local_inputs(job),
            job=job,
        )

    def arguments(self, job: Job, notes: list[Note]) -> list[str]:
        t, m = job.training, job.method
        sft = m.family == "sft"
        data = ["--dataset_mixer_list", TRAIN_DATA, "1.0"] if sft else ["--mixer_list", TRAIN_DATA, "1.0"]
        args = [
            "--model_name_or_path", job.model.name_or_path,
            "--tokenizer_name_or_path", job.model.name_or_path,
            *data,
            "--max_seq_length", str(job.data.max_length),
            "--per_device_train_batch_size", str(t.micro_batch_size),
            "--gradient_accumulation_steps", str(job.gradient_accumulation_steps),
            "--learning_rate", str(t.learning_rate),
            "--lr_scheduler_type", SCHEDULERS[t.lr_scheduler],
            "--warmup_ratio", str(t.warmup_ratio),
            "--weight_decay", str(t.weight_decay),
            "--seed", str(t.seed),
            "--output_dir", MODEL,
            "--logging_steps", str(job.output.logging_steps),
            "--do_not_randomize_output_dir",
            "--push_to_hub", "false",
            "--try_launch_beaker_eval_jobs", "false",
            "--try_auto_save_to_beaker", "false",
        ]  # fmt: skip
        args += ["--clip_grad_norm" if sft else "--max_grad_norm", str(t.max_grad_norm)]
        args += ["--dataset_local_cache_dir" if sft else "--local_cache_dir", CACHE]
        if t.max_steps is not None:
            args += ["--max_train_steps", str(t.max_steps)]
        else:
            epochs = round(t.epochs or 1)
            args += ["--num_train_epochs" if sft else "--num_epochs", str(epochs)]
            if epochs != (t.epochs or 1):
                notes.append(Note("training.epochs", "approximated", f"{t.epochs} rounded to {epochs} whole epochs"))
        if t.gradient_checkpointing:
            args.append("--gradient_checkpointing")
        if t.packing:
            args.append("--packing")
        if job.adapter.type != "full":
            a = job.adapter
            args += [
                "--use_lora",
                "--lora_rank",
                str(a.r),
                "--lora_alpha",
                str(a.alpha),
                "--lora_dropout",
                str(a.dropout),
            ]
            if a.type == "qlora":
                args.append("--use_qlora")
        if job.output.save_steps:
            args += ["--checkpointing_steps", str(job.output.save_steps)]
        d = job.distributed
        if d.strategy == "deepspeed":  # static_problems leaves it to dpo_tune_cache.py
            args += ["--zero_stage", str(d.zero_stage)]
            if d.offload != "none":
                args.append("--offload_optimizer")
            if d.offload == "optimizer_and_params":
                args.append("--offload_param")
        if isinstance(m, DPO):
            args += [
                "--loss_type",
                DPO_LOSSES[m.loss_type],
                "--beta",
                str(m.beta),
                "--label_smoothing",
                str(m.label_smoothing),
            ]
        elif isinstance(m, SimPO):
            args += ["--loss_type", "simpo", "--beta", str(m.beta), "--gamma_beta_ratio", str(m.gamma / m.beta)]
            if m.sft_weight:
                notes.append(Note("method.sft_weight", "dropped", "dpo_utils.py's SimPO loss has no NLL term"))
        notes.append(  # static_problems refuses a job's own template
            Note(
                "model.chat_template",
                "defaulted",
                "TokenizerConfig.chat_template_name is unset: OpenInstruct uses the tokenizer's own chat template "
                "(dataset_transformation.py:880)",
            )
        )
        if sft and getattr(m, "loss_on", "completion") == "all":
            notes.append(
                Note(
                    "method.loss_on", "approximated", "sft_tulu_tokenize_and_truncate_v1 masks the non-assistant turns"
                )
            )
        return args
