"""Unsloth: a ptsdk SFT job as a YAML config for train_unsloth.py, which loads the model with Unsloth's
FastLanguageModel (and its get_peft_model) and trains it with the TRL SFTTrainer that Unsloth patches.

Why a runner and not ``unsloth train -c cfg.yaml``: the CLI's config (unsloth_cli/config.py, Unsloth
2026.10.9) has no learning-rate schedule, optimizer (it hard-codes adamw_8bit), clipping, logging cadence,
evaluation file or trainer callbacks, so most of a ptsdk job could not reach it and ptsdk could not read the
metrics back; Unsloth's Python API takes all of it.

On a CPU Unsloth runs its CPU backend (UNSLOTH_FORCE_CPU=1; unsloth/_cpu_init.py, unsloth_zoo/cpu/): stock
transformers, PEFT and TRL with CPU defaults that silently change some settings (unsloth_zoo/cpu/trainer.py
normalize_cpu_training_arguments, unsloth_zoo/cpu/loader.py FastCPUModel.from_pretrained). ptsdk refuses the
settings it would change instead of letting them change silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import Note, Plan, PlanFile
from ptsdk.plugins.kit import (
    LOSS_NORMALIZATION,
    OWNED_NORMALIZATION_SOURCE,
    OWNED_ORDER_SOURCE,
    Effective,
    TrainerBackend,
    apply_passthrough,
    common_env,
    data_order,
    hf_training_args,
    launcher_for,
    local_inputs,
    owned_env,
    owned_order,
    owns_order,
    passthrough_problems,
    runtime_file,
)
from ptsdk.spec import Job

if TYPE_CHECKING:
    from ptsdk.plugins.environment import EnvironmentSpec

HERE = Path(__file__).resolve().parent
T, V = Verified.trained, Verified.validated
TESTS = "tests/backends/test_unsloth.py::"
CONFIG = "unsloth_config.yaml"
RUNNER = "train_unsloth.py"
#: What the CPU evidence exercises (unsloth/_cpu_init.py: "supported: text LoRA / full finetuning with SFTTrainer").
CPU_BACKEND = "Unsloth's CPU backend (unsloth_zoo.cpu: TRL's SFTTrainer patched by Unsloth), not its GPU kernels"
#: Optimizers Unsloth's CPU backend replaces with adamw_torch_fused (unsloth_zoo/cpu/trainer.py:27-33, 57-59).
CPU_REPLACED_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit")


class UnslothBackend(TrainerBackend):
    name = "unsloth"
    framework = "unsloth"
    description = "Unsloth: SFT (LoRA, QLoRA, full) with FastLanguageModel and its patched TRL SFTTrainer."
    verified_with: ClassVar[dict[str, str]] = {
        "unsloth": "2026.10.9",
        "unsloth_zoo": "2026.10.9",
        "trl": "1.15.0",
        "transformers": "5.17.0",
        "torch": "2.13.0",
    }
    install_hint = "ptsdk env create unsloth   (or: pip install torch==2.13.0 && pip install unsloth torch==2.13.0)"
    reported_packages = ("unsloth_zoo", "trl", "transformers", "peft")
    check_script = HERE / "check_unsloth.py"
    #: Runner keys the job owns: backend_options refuses them unless ptsdk_override names them.
    passthrough_owned: ClassVar[dict[str, str]] = {
        "model_name_or_path": "model.name_or_path",
        "load_dtype": "model.dtype",
        "load_in_4bit": "model.quantization",
        "full_finetuning": "adapter.type",
        "train_path": "data.train.path",
        "eval_path": "data.eval.path",
        "bf16": "training.precision",
        "fp16": "training.precision",
        "use_cpu": "distributed.device",
        "output_dir": "output.dir",
    }
    capabilities = (
        *caps("method", "sft", T, TESTS + "test_sft_lora_trains_and_saves", note=CPU_BACKEND),
        *caps("adapter", "lora", T, TESTS + "test_sft_lora_trains_and_saves"),
        *caps("adapter", "full", T, TESTS + "test_sft_full_trains_and_saves"),
        *caps(
            "adapter",
            "qlora",
            T,
            TESTS + "test_sft_qlora_trains_4bit_on_cpu",
            note="trained on CPU: bitsandbytes 0.50's CPU NF4 kernels, Unsloth's CPU loader keeps the base in 4 bits",
        ),
        *caps(
            "feature",
            "quantized_cpu:4bit",
            T,
            TESTS + "test_sft_qlora_trains_4bit_on_cpu",
            note="Unsloth's 8-bit loading is GPU-only (refused)",
        ),
        *caps("device", "cpu", T, TESTS + "test_sft_lora_trains_and_saves", note=CPU_BACKEND),
    )

    @classmethod
    def environment(cls) -> EnvironmentSpec:
        """torch (the CPU build) alone first, then requirements.txt's frozen set with --no-deps: resolving unsloth's
        own requirements would pull triton, xformers and a CUDA torchvision (see requirements.txt)."""
        from ptsdk.plugins.environment import (
            EnvironmentSpec,
            InstallStep,
            read_requirements,
            requirement_name,
            requirements_file,
        )

        path = requirements_file(cls)
        assert path is not None, "ptsdk_unsloth ships its requirements.txt"
        reqs = read_requirements(path)
        torch = tuple(r for r in reqs if requirement_name(r) == "torch")
        rest = tuple(r for r in reqs if requirement_name(r) != "torch")
        return EnvironmentSpec(
            (
                InstallStep("install torch (first, alone: the CPU build)", torch),
                InstallStep(f"install unsloth and {len(rest) - 1} pinned packages", rest, pip_args=("--no-deps",)),
            )
        )

    # --- refusals ----------------------------------------------------------------------

    def static_problems(self, job: Job) -> list[str]:
        out = list(super().static_problems(job))
        m, a, d = job.model, job.adapter, job.distributed
        if m.quantization == "8bit":
            # FastLanguageModel.from_pretrained(load_in_8bit=True) is GPU-only (unsloth/models/loader.py:1246; the
            # CPU loader prints "8-bit loading is not supported on CPU" and loads 16-bit, unsloth_zoo/cpu/loader.py:
            # 198-199) and nothing here has run it.
            out.append(
                "model.quantization: ptsdk translates Unsloth's 4-bit (QLoRA) and 16-bit loading only, not its "
                "GPU-only 8-bit LoRA; set none, or 4bit with adapter.type qlora"
            )
        if getattr(a, "init_path", None):
            out.append(
                "adapter.init_path: Unsloth makes its adapter with get_peft_model(random_state=training.seed); "
                "remove init_path"
            )
        if m.attn_implementation:
            out.append("model.attn_implementation: ptsdk leaves attention to Unsloth's loader (not passed); remove it")
        if m.trust_remote_code:
            out.append("model.trust_remote_code: ptsdk does not pass it to Unsloth's loader yet; set it to false")
        if d.device == "cpu":
            out += self._cpu_problems(job)
        return out + passthrough_problems(self, job)

    def _cpu_problems(self, job: Job) -> list[str]:
        """What Unsloth's CPU backend would change behind the job's back (unsloth_zoo/cpu/trainer.py:48-83)."""
        t = job.training
        out = []
        if t.optimizer in CPU_REPLACED_OPTIMIZERS:
            out.append(
                f"training.optimizer: Unsloth's CPU backend replaces {t.optimizer} (a bitsandbytes optimizer) with "
                "adamw_torch_fused; set optimizer: adamw_fused"
            )
        if job.model.dtype == "float16":
            out.append("model.dtype: Unsloth's CPU backend loads float16 as bfloat16 or float32; set float32")
        return out

    # --- translation -------------------------------------------------------------------

    def translate(self, job: Job) -> Plan:
        notes: list[Note] = []
        cfg: dict[str, Any] = {**self._model(job, notes), **self._data(job, notes)}
        cfg.update(self._training(job, notes))
        cfg.update(self._output(job))
        files = [PlanFile(RUNNER, copy_from=str(HERE / RUNNER)), runtime_file()]
        if cfg.get("tokenizer_chat_template") == "chat_template.jinja":
            files.append(PlanFile("chat_template.jinja", content=job.model.chat_template or ""))
        apply_passthrough(job, self.name, cfg, notes, owned=self.passthrough_owned)
        files.append(PlanFile(CONFIG, content=_yaml(cfg)))
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=[RUNNER],
            args=["--config", CONFIG],
            launcher=launcher_for(job),
            env={**common_env(job), **owned_env(job), **unsloth_env(job)},
            native_config=CONFIG,
            notes=notes,
            effective=self.effective(job, cfg),
            inputs=local_inputs(job),
            job=job,
        )

    def _model(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        m, a = job.model, job.adapter
        out: dict[str, Any] = {
            "model_name_or_path": m.name_or_path,
            "load_dtype": None if m.dtype == "auto" else m.dtype,
            "load_in_4bit": m.quantization == "4bit",
            "full_finetuning": a.type == "full",
            "use_gradient_checkpointing": "unsloth" if job.training.gradient_checkpointing else "false",
        }
        if a.type != "full":
            targets = a.target_modules
            out.update(
                lora_r=a.r,
                lora_alpha=a.alpha,
                lora_dropout=a.dropout,
                lora_target_modules=targets if isinstance(targets, list) else None,
            )
            if not isinstance(targets, list):
                notes.append(
                    Note(
                        "adapter.target_modules",
                        "set",
                        "all-linear: Unsloth's default targets (q/k/v/o_proj, gate/up/down_proj; "
                        "FastLanguageModel.get_peft_model)",
                    )
                )
        notes.append(
            Note(
                "training.gradient_checkpointing",
                "set",
                f"use_gradient_checkpointing={out['use_gradient_checkpointing']} (Unsloth's default is 'unsloth')",
            )
        )
        return out

    def _data(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        data = job.data
        out: dict[str, Any] = {"train_path": data.train.path, "max_seq_length": data.max_length}
        if data.train.max_samples:
            out["max_train_samples"] = data.train.max_samples
        if data.eval is not None:
            out["eval_path"] = data.eval.path
        out["max_length"] = data.max_length
        if data.truncation == "drop":
            notes.append(
                Note("data.truncation", "approximated", "TRL (under Unsloth) truncates long sequences; it cannot drop")
            )
        on_completion = job.method.loss_on == "completion"  # type: ignore[union-attr]
        out["assistant_only_loss" if data.format == "messages" else "completion_only_loss"] = on_completion
        if job.model.chat_template:
            template = job.model.chat_template
            out["tokenizer_chat_template"] = template if template.endswith(".jinja") else "chat_template.jinja"
        return out

    def _training(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d = job.training, job.distributed
        out = hf_training_args(job)
        if d.device == "cpu":
            out["use_cpu"] = True
            if t.optimizer == "adamw":
                # normalize_cpu_training_arguments turns adamw_torch into adamw_torch_fused (cpu/trainer.py:60-61).
                notes.append(Note("training.optimizer", "approximated", "adamw: Unsloth's CPU backend runs it fused"))
            if t.precision == "bf16":
                notes.append(
                    Note(
                        "training.precision",
                        "approximated",
                        "bf16: Unsloth's CPU backend trains in fp32 on a CPU without native bfloat16",
                    )
                )
        return out

    def _output(self, job: Job) -> dict[str, Any]:
        o = job.output
        out: dict[str, Any] = {
            "output_dir": self.checkpoints_dir,
            "logging_steps": o.logging_steps,
            "save_strategy": "steps" if o.save_steps else "no",
            "report_to": ["none"],
            "disable_tqdm": True,
        }
        if o.save_steps:
            out.update(save_steps=o.save_steps, save_total_limit=o.save_total_limit)
        if o.eval_steps:
            out.update(eval_strategy="steps", eval_steps=o.eval_steps)
        return out

    def effective(self, job: Job, cfg: dict[str, Any]) -> dict[str, Any]:
        """What Unsloth will really use, in ptsdk's units (for parity tables)."""
        cpu = job.distributed.device == "cpu"
        optim = "adamw_torch_fused" if cpu and cfg["optim"] == "adamw_torch" else cfg["optim"]
        return Effective.from_job(
            job,
            micro_batch=cfg["per_device_train_batch_size"],
            gradient_accumulation=cfg["gradient_accumulation_steps"],
            learning_rate=cfg["learning_rate"],
            lr_scheduler=cfg["lr_scheduler_type"],
            warmup=cfg["warmup_steps"],
            max_length=cfg["max_length"],
            truncation="keep_start",
            packing=False,
            loss_mask="completion" if cfg.get("assistant_only_loss") or cfg.get("completion_only_loss") else "all",
            data_order=owned_order(job) if owns_order(job) else data_order(self.name, job, job.training.shuffle),
            optimizer=optim,
            load_dtype=cfg["load_dtype"],
            weight_decay=cfg["weight_decay"],
            max_grad_norm=cfg["max_grad_norm"],
            adapter_init=None if cfg["full_finetuning"] else f"Unsloth's get_peft_model (seed {job.training.seed})",
            loss_normalization=LOSS_NORMALIZATION[job.training.loss_normalization],
            sources={
                "truncation": "TRL's SFTTrainer (under Unsloth) truncates long sequences at the end",
                "loss_normalization": OWNED_NORMALIZATION_SOURCE
                + "; Unsloth's chunked CPU cross-entropy divides by transformers' num_items_in_batch "
                "(unsloth_zoo/cpu/ops.py:400-414)",
                "data_order": OWNED_ORDER_SOURCE if owns_order(job) else "training.shuffle: false: file order",
                "adapter_init": "FastLanguageModel.get_peft_model(random_state=training.seed)",
                **({"optimizer": "Unsloth's CPU backend fuses AdamW (unsloth_zoo/cpu/trainer.py)"} if cpu else {}),
            },
        ).to_dict()

    # --- native check -----------------------------------------------------------------

    def check_request(self, plan: Plan, workdir: Path) -> dict[str, Any]:
        """check_unsloth.py needs the plan's environment (UNSLOTH_FORCE_CPU) before it imports Unsloth."""
        return {**super().check_request(plan, workdir), "env": dict(plan.env)}


def unsloth_env(job: Job) -> dict[str, str]:
    """Unsloth's CPU backend for a CPU job (else it looks for an accelerator and fails without one); no usage
    statistics sent from an offline run."""
    env = {"UNSLOTH_DISABLE_STATISTICS": "1"}
    if job.distributed.device == "cpu":
        env["UNSLOTH_FORCE_CPU"] = "1"
    return env


def _yaml(cfg: dict[str, Any]) -> str:
    head = f"# Unsloth SFT config generated by ptsdk. Run: python {RUNNER} --config {CONFIG}\n"
    return head + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
