"""ART (OpenPipe's Agent Reinforcement Trainer): a ptsdk GRPO job as ART's own Python objects.

ART is a Python API: a run builds ``art.TrainableModel`` (its ``art.dev.InternalModelConfig``: Unsloth's init and PEFT
arguments), registers it with ART's ``LocalBackend`` (Unsloth + vLLM on one CUDA GPU), makes trajectory groups with
the user's rollout code and calls ``backend.train`` with ``art.TrainConfig`` / ``art.dev.TrainConfig``. The native
config is art_config.json, one section per class, read by train_art.py (the runner, copied into the run directory),
whose rollout samples ``num_generations`` completions per prompt from the served model and scores them with the
job's reward functions. check_art.py runs the runner's ``load`` in ART's environment: the client (openpipe-art
without its ``backend`` extra) installs from PyPI without torch, so ART's own classes check every translation.

What ART does not do: full fine-tuning (LoRA only, through Unsloth), several GPUs for one policy (dedicated mode
splits training and inference across two), CPU training, SFT/DPO (``train_sft`` is experimental), a KL term.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import Backend, Note, Plan, PlanFile
from ptsdk.plugins.kit import apply_passthrough, common_env, launcher_for, local_inputs, passthrough_problems
from ptsdk.spec.method import GRPO

if TYPE_CHECKING:
    from ptsdk.spec import Job

HERE = Path(__file__).resolve().parent
V, D = Verified.validated, Verified.declared
CHECKED = "tests/backends/test_art.py::test_art_builds_its_own_objects_from_every_translation"
VERSION = "0.5.18"

# Files in the run directory.
CONFIG = "art_config.json"
RUNNER = "train_art.py"
ART_DIR = ".art"  # TrainableModel.base_path: ART's checkpoints, logs and trajectories
#: ptsdk's GRPO loss_type -> art.dev.TrainConfig's ``ppo`` (LocalBackend.train's loss_fn "ppo" or "cispo").
LOSSES = {"cispo": False, "grpo": True}


class ARTBackend(Backend):
    name = "art"
    framework = "openpipe-art"
    description = "OpenPipe ART: LoRA GRPO through Unsloth and vLLM on one GPU, with the job's reward functions."
    verified_with: ClassVar[dict[str, str]] = {"openpipe-art": VERSION, "pydantic": "2.14.4"}
    install_hint = (
        f"ptsdk env create art (the client, to check translations); to train, on a CUDA machine: "
        f"pip install 'openpipe-art[backend]=={VERSION}' and export PTSDK_ART_PYTHON=/path/to/bin/python"
    )
    reported_packages = ("pydantic", "openai", "unsloth", "vllm")
    check_script = HERE / "check_art.py"
    capabilities = (
        *caps("method", "grpo", V, CHECKED),
        *caps("loss", "grpo:cispo", V, CHECKED, note="LocalBackend.train loss_fn='cispo', ART's default"),
        *caps(
            "loss",
            "grpo:grpo",
            V,
            CHECKED,
            note="art.dev.TrainConfig ppo=True (loss_fn='ppo'): PPO's clipped ratio on group-normalized advantages",
        ),
        *caps("adapter", "lora", V, CHECKED, note="art.dev.PeftArgs through Unsloth's get_peft_model"),
        *caps("adapter", "qlora", V, CHECKED, note="art.dev.InitArgs load_in_4bit"),
        *caps("reward", "functions", V, CHECKED, note="called by train_art.py's rollout; imported by the check"),
        *caps("rollout", "vllm", D, note="ART always serves the policy with vLLM (art/dev/engine.py EngineArgs)"),
    )

    def static_problems(self, job: Job) -> list[str]:
        out = passthrough_problems(self, job)
        m = job.method
        if not isinstance(m, GRPO):
            return out
        if not job.data.train.path.endswith(".jsonl"):
            out.append("data.train.path: train_art.py reads prompts from a local .jsonl file; convert the data first")
        if job.data.eval is not None or job.data.eval_split is not None:
            out.append("data.eval: train_art.py runs no evaluation; remove data.eval / data.eval_split")
        if job.adapter.type != "full" and job.adapter.dropout:
            out.append(
                "adapter.dropout: ART types lora_dropout as an int (art/dev/model.py PeftArgs; Unsloth's fast path "
                "wants 0); set adapter.dropout: 0"
            )
        if m.epochs_per_rollout != 1:
            out.append("method.epochs_per_rollout: ART trains once on each batch of trajectory groups; use 1")
        return out

    def translate(self, job: Job) -> Plan:
        from ptsdk.errors import PtsdkError

        problems = self.static_problems(job)
        m = job.method
        if not isinstance(m, GRPO):
            problems.append(f"method.name: ART trains GRPO only, not {m.name}")
        if problems:
            raise PtsdkError(f"backend {self.name}: this job cannot run", lines=problems)
        assert isinstance(m, GRPO)
        notes: list[Note] = []
        config = self.native_config(job, m, notes)
        apply_passthrough(job, self.name, config, notes)
        return Plan(
            backend=self.name,
            files=[
                PlanFile(CONFIG, content=json.dumps(config, indent=1, sort_keys=True) + "\n"),
                PlanFile(RUNNER, copy_from=str(HERE / RUNNER)),
            ],
            entrypoint=[RUNNER],
            args=[CONFIG],
            launcher=launcher_for(job),
            env=common_env(job),
            native_config=CONFIG,
            notes=notes,
            inputs=local_inputs(job),
            job=job,
        )

    def native_config(self, job: Job, m: GRPO, notes: list[Note]) -> dict[str, Any]:
        t, a = job.training, job.adapter
        peft: dict[str, Any] = {"random_state": t.seed}
        if a.type != "full":
            peft.update(r=a.r, lora_alpha=a.alpha, lora_dropout=0)
            if a.target_modules != "all-linear":
                peft["target_modules"] = list(a.target_modules)
        if t.lr_scheduler != "constant" or t.warmup_ratio:
            notes.append(
                Note("training.lr_scheduler", "dropped", "each LocalBackend.train call trains at train.learning_rate")
            )
        init: dict[str, Any] = {"max_seq_length": job.data.max_length, "load_in_4bit": a.type == "qlora"}
        prompts = t.global_batch_size // m.num_generations
        notes.append(
            Note(
                "training.global_batch_size",
                "derived",
                f"{prompts} prompts x {m.num_generations} completions per step: one LocalBackend.train call on "
                f"{prompts} trajectory groups",
            )
        )
        if m.max_prompt_length is not None:
            notes.append(
                Note(
                    "method.max_prompt_length",
                    "approximated",
                    f"ART does not cut prompts; init_args.max_seq_length={job.data.max_length} bounds prompt and "
                    "completion",
                )
            )
        return {
            "model": {
                "name": job.name or "ptsdk",
                "project": "ptsdk",
                "base_model": job.model.name_or_path,
                "base_path": ART_DIR,
            },
            "internal_config": {"init_args": init, "peft_args": peft},
            "train": {"learning_rate": t.learning_rate},
            "train_options": {"epsilon": m.clip_epsilon, "ppo": LOSSES[m.loss_type]},
            "rollout": {
                "data": job.data.train.path,
                "rewards": list(m.rewards),
                "num_generations": m.num_generations,
                "prompts_per_step": prompts,
                "steps": t.max_steps,
                "epochs": t.epochs if t.max_steps is None else None,
                "max_completion_length": m.max_completion_length,
                "temperature": m.temperature,
                "seed": t.seed,
            },
        }
