"""NeMo RL (NVIDIA-NeMo/RL): a ptsdk job as a NeMo RL YAML config that inherits an example config through ``defaults``.

- SFT: examples/run_sft.py on ``defaults: nemorl_base_sft.yaml`` (examples/configs/sft.yaml at the pinned commit).
- DPO: examples/run_dpo.py on ``defaults: nemorl_base_dpo.yaml`` (examples/configs/dpo.yaml).
- Full fine-tuning or LoRA through the DTensor policy's ``lora_cfg`` (nemo_rl/models/policy/__init__.py:91-105, 202).
- GRPO and PPO (nemo_rl/algorithms/grpo.py, ppo.py) are declared only: their rewards are NeMo RL environments
  (``env:``, e.g. math), so ptsdk's reward functions cannot be plugged in and every ptsdk GRPO/PPO job is refused.

NeMo RL is installed from git with uv, not from the package registry (PyPI's nemo-rl is a 0.0.0 placeholder). The
written config is composed with its base as NeMo RL composes it and checked against NeMo RL's MasterConfig classes as
transcribed at the pinned commit, closed to unknown keys (config.py, schema.py); every capability stays declared.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from ptsdk.errors import PtsdkError
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import Backend, Note, Plan, PlanFile
from ptsdk.plugins.kit import apply_passthrough, common_env, local_inputs, passthrough_problems
from ptsdk.spec.method import DPO

from ptsdk_nemorl.pinned import COMMIT

if TYPE_CHECKING:
    from ptsdk.spec import Job

HERE = Path(__file__).resolve().parent
REPO = "https://github.com/NVIDIA-NeMo/RL"
D = Verified.declared

#: ptsdk method family -> NeMo RL algorithm (its examples/run_<name>.py, examples/configs/<name>.yaml, MasterConfig).
ALGORITHMS = {"sft": "sft", "preference": "dpo"}
PRECISION = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
#: A budget that never binds: NeMo RL stops at min(max_num_epochs x batches, max_num_steps), so the job's steps or
#: epochs are set and the other is this.
NO_STEP_LIMIT = 10**9

# Files in the run directory.
CONFIG = "nemorl_config.yaml"
RUNNER = "run_nemorl.py"
CHECKPOINTS = "checkpoints"
LOGS = "logs"


def base_file(algorithm: str) -> str:
    return f"nemorl_base_{algorithm}.yaml"


def source(path: str, lines: str = "") -> str:
    return f"{path}{':' + lines if lines else ''} at NVIDIA-NeMo/RL@{COMMIT[:12]}"


class NeMoRLBackend(Backend):
    name = "nemorl"
    framework = "nemo-rl"
    description = "NVIDIA NeMo RL: SFT and DPO (full or LoRA) from a YAML that inherits its example configs."
    schema_source = f"github.com/NVIDIA-NeMo/RL@{COMMIT}"
    verified_with: ClassVar[dict[str, str]] = {"nemo-rl": COMMIT[:12]}
    install_hint = (
        f"git clone {REPO} nemo-rl && git -C nemo-rl checkout {COMMIT} && cd nemo-rl && uv sync "
        "(Python 3.12, CUDA); then export PTSDK_NEMORL_PYTHON=$PWD/.venv/bin/python"
    )
    capabilities = (
        *caps("method", "sft", D, note=source("nemo_rl/algorithms/sft.py", "95-101")),
        *caps("method", "dpo", D, note=source("nemo_rl/algorithms/dpo.py", "77-108")),
        *caps("loss", "dpo:sigmoid", D, note=source("nemo_rl/algorithms/loss_functions.py") + " (DPOLossFn)"),
        *caps(
            "loss",
            "dpo:sigmoid_norm",
            D,
            note=source("examples/configs/dpo.yaml") + " (dpo.preference_average_log_probs: true)",
        ),
        *caps(
            "method",
            "grpo ppo",
            D,
            note=source("nemo_rl/algorithms/grpo.py") + ", ppo.py; rewards are NeMo RL environments (env:)",
        ),
        *caps("adapter", "full", D, note=source("nemo_rl/models/policy/__init__.py", "562-585")),
        *caps("adapter", "lora", D, note=source("nemo_rl/models/policy/__init__.py", "91-105") + " (dtensor lora_cfg)"),
        *caps("strategy", "ddp fsdp", D, note="the DTensor (FSDP2) policy: " + source("nemo_rl/models/policy")),
        *caps("topology", "multi_node", D, note="a Ray cluster of cluster.num_nodes nodes (ray.sub)"),
    )

    def static_problems(self, job: Job) -> list[str]:
        out = passthrough_problems(self, job)
        if job.method.family not in ALGORITHMS:
            return out
        if not job.data.train.path.endswith((".jsonl", ".json")):
            out.append("data.train.path: ptsdk points NeMo RL at a local .jsonl/.json file; download the data first")
        if job.data.eval is not None or job.data.eval_split is not None:
            out.append(
                "data.eval: ptsdk does not translate NeMo RL's validation yet; remove data.eval / data.eval_split"
            )
        if job.data.format not in ("prompt_completion", "messages", "preference"):
            out.append(
                f"data.format: NeMo RL's ResponseDataset reads prompt/completion or messages, not {job.data.format}"
            )
        if job.data.columns:
            out.append("data.columns: rename the columns to ptsdk's canonical fields for NeMo RL")
        return out

    def translate(self, job: Job) -> Plan:
        problems = self.static_problems(job)
        if job.method.family not in ALGORITHMS:
            problems.append(f"method.name: {job.method.name} is declared for NeMo RL but not translated")
        if problems:
            raise PtsdkError(f"backend {self.name}: this job cannot run", lines=problems)
        algorithm = ALGORITHMS[job.method.family]
        notes: list[Note] = []
        config = self.native_config(job, algorithm, notes)
        apply_passthrough(job, self.name, config, notes)
        text = yaml.safe_dump(config, sort_keys=False)
        base = (HERE / "base_configs" / f"{algorithm}.yaml").read_text()
        self.check(text, base, algorithm, notes)
        return Plan(
            backend=self.name,
            files=[
                PlanFile(CONFIG, content=text),
                PlanFile(base_file(algorithm), content=base),
                PlanFile(RUNNER, copy_from=str(HERE / RUNNER)),
            ],
            entrypoint=[RUNNER, algorithm],
            args=["--config", CONFIG],
            env=common_env(job),
            native_config=CONFIG,
            notes=notes,
            inputs=local_inputs(job),
            job=job,
        )

    def check(self, text: str, base: str, algorithm: str, notes: list[Note]) -> None:
        """The config composed with its base as NeMo RL composes it, against the transcribed MasterConfig."""
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / CONFIG).write_text(text)
            (Path(tmp) / base_file(algorithm)).write_text(base)
            from ptsdk_nemorl.config import new_problems  # omegaconf and the schema: only when checking

            new, inherited = new_problems(Path(tmp) / CONFIG, algorithm)
        if new:
            raise PtsdkError(
                f"backend {self.name}: the config does not fit NeMo RL's {algorithm} MasterConfig at {COMMIT[:12]}",
                lines=new,
            )
        if inherited:
            notes.append(
                Note(
                    "defaults",
                    "defaulted",
                    f"examples/configs/{algorithm}.yaml itself sets keys its classes do not declare (NeMo RL ignores "
                    f"them): {'; '.join(inherited)}",
                )
            )

    def native_config(self, job: Job, algorithm: str, notes: list[Note]) -> dict[str, Any]:
        t, a, d = job.training, job.adapter, job.distributed
        policy: dict[str, Any] = {
            "model_name": job.model.name_or_path,
            # get_tokenizer (nemo_rl/algorithms/utils.py:376-390): "default" keeps the tokenizer's template, a .jinja
            # path or a template string replaces it (null would be NeMo RL's passthrough template)
            "tokenizer": {"name": job.model.name_or_path, "chat_template": job.model.chat_template or "default"},
            "train_global_batch_size": t.global_batch_size,
            "train_micro_batch_size": t.micro_batch_size,
            "max_total_sequence_length": job.data.max_length,
            "precision": PRECISION[t.precision],
            "max_grad_norm": t.max_grad_norm,
            "optimizer": {
                "kwargs": {
                    "lr": t.learning_rate,
                    "weight_decay": t.weight_decay,
                    "betas": [t.adam_beta1, t.adam_beta2],
                    "eps": t.adam_epsilon,
                }
            },
            "dtensor_cfg": {"activation_checkpointing": t.gradient_checkpointing},
        }
        if a.type != "full":
            targets = [] if a.target_modules == "all-linear" else list(a.target_modules)
            policy["dtensor_cfg"]["lora_cfg"] = {
                "enabled": True,
                "dim": a.r,
                "alpha": a.alpha,
                "dropout": a.dropout,
                "target_modules": targets,
                "match_all_linear": not targets,
            }
        loop: dict[str, Any] = {
            "max_num_steps": t.max_steps or NO_STEP_LIMIT,
            "max_num_epochs": round(t.epochs or 1) if t.max_steps is None else NO_STEP_LIMIT,
            "seed": t.seed,
            "val_period": 0,
            "val_at_start": False,
            "val_at_end": False,
        }
        if t.max_steps is None and round(t.epochs or 1) != (t.epochs or 1):
            notes.append(Note("training.epochs", "approximated", f"{t.epochs} rounded to whole epochs"))
        data: dict[str, Any] = {"shuffle": t.shuffle, "validation": None}
        if algorithm == "sft":
            train = {"dataset_name": "ResponseDataset", "data_path": job.data.train.path}
            if job.data.format == "prompt_completion":
                train.update(input_key="prompt", output_key="completion")
            data["train"] = train
        else:
            data["train"] = {"dataset_name": "BinaryPreferenceDataset", "data_path": job.data.train.path}
            m = job.method
            assert isinstance(m, DPO)
            loop.update(reference_policy_kl_penalty=m.beta, preference_average_log_probs=m.loss_type == "sigmoid_norm")
        report = job.output.report_to
        return {
            "defaults": base_file(algorithm),
            "policy": policy,
            algorithm: loop,
            "data": data,
            "checkpointing": {
                "enabled": job.output.save_steps is not None,
                "checkpoint_dir": CHECKPOINTS,
                "save_period": job.output.save_steps or 1,
            },
            "logger": {
                "log_dir": LOGS,
                "wandb_enabled": "wandb" in report,
                "tensorboard_enabled": "tensorboard" in report,
                "mlflow_enabled": "mlflow" in report,
                "monitor_gpus": False,
            },
            "cluster": {"gpus_per_node": d.gpus_per_node, "num_nodes": d.nodes},
        }
