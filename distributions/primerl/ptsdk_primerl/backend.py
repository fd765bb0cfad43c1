"""Prime RL (github.com/PrimeIntellect-ai/prime-rl, git only): a ptsdk SFT job as Prime RL's TOML.

SFT runs ``python -m prime_rl.entrypoints.sft @ sft.toml`` (src/prime_rl/entrypoints/sft.py; it starts torchrun
itself). The data are a Hugging Face dataset loaded by name with ``load_dataset(name, split="train")``
(src/prime_rl/trainer/sft/data.py:573-600): a local file is copied into a folder of its own (data/train/) that
``data.name`` names, records with ``messages`` or ``prompt``/``completion`` (data.py:246-260).

Online RL is refused: Prime RL's orchestrator samples prompts from, and scores rollouts in, verifiers
environments (configs/orchestrator.py:119-132, ``orchestrator.train.source[].env``: a taskset id of an installed
environment package), not a dataset of prompts scored by reward functions; a ptsdk RL job has no such package.

Vision-language SFT exists in Prime RL (``model.vlm``, configs/shared.py:134-153; sft.py:530-552; OpenAI
``image_url`` content blocks in data.py:154-200), but it needs the model's vision/language attribute names and
images inside the messages: ptsdk does not convert its image column, so the matrix refuses images.

The generated TOML is checked against the schema transcribed in :mod:`ptsdk_primerl.schema`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ptsdk.errors import PtsdkError
from ptsdk.matrix.capability import Capability, declared
from ptsdk.plugins.backend import Backend, Launcher, Note, Plan, PlanFile
from ptsdk.plugins.kit import apply_passthrough, common_env, local_inputs, passthrough_problems, schema_problems
from ptsdk.spec import Job
from ptsdk.spec.data import LOCAL_SUFFIXES

from ptsdk_primerl.pinned import COMMIT

REPO = "github.com/PrimeIntellect-ai/prime-rl"
CONFIGS = "packages/prime-rl-configs/src/prime_rl/configs/"
CONFIG_FILE = "sft.toml"
SFT_ENTRY = ["-m", "prime_rl.entrypoints.sft"]
INSTALL = (
    f"git clone https://{REPO} && git -C prime-rl checkout {COMMIT} && (cd prime-rl && uv sync) on a CUDA machine, "
    "then export PTSDK_PRIMERL_PYTHON=$PWD/prime-rl/.venv/bin/python"
)
PRECISION = {"fp32": "float32", "bf16": "bfloat16"}
OPTIMIZERS = {"adamw": "adamw", "sgd": "sgd"}
ALL_ROLES = {"system": True, "user": True, "assistant": True, "tool": True}


#: The transcribed schema (ptsdk.plugins.kit.schema_problems imports it when a translation is checked).
SCHEMA = "ptsdk_primerl.schema:SFTConfig"


class PrimeRLBackend(Backend):
    name = "primerl"
    framework = "prime-rl"
    description = "Prime RL (git only): SFT through its TOML config; RL needs verifiers environments"
    schema_source = f"{REPO}@{COMMIT}"
    #: The source version the capabilities were read from (nothing here ran it).
    verified_with: ClassVar[dict[str, str]] = {"prime-rl": f"0.8.0@{COMMIT[:8]}"}
    install_hint = INSTALL
    capabilities: ClassVar[tuple[Capability, ...]] = (
        *declared("method", "sft", f"{CONFIGS}sft.py:191-289 SFTConfig; src/prime_rl/entrypoints/sft.py"),
        *declared(
            "method",
            "grpo",
            f"{CONFIGS}algorithm.py:200 GRPOAlgoConfig; prompts and rewards come from verifiers environments "
            f"({CONFIGS}orchestrator.py:119-132), so ptsdk's RL jobs (reward functions) are refused",
        ),
        *declared(
            "loss",
            "grpo:grpo",
            f"{CONFIGS}algorithm.py:160-209 GRPOAlgoConfig; no reward functions: the matrix refuses RL jobs",
        ),
        *declared("adapter", "full", f"{CONFIGS}trainer.py:178-262 ModelConfig"),
        *declared("adapter", "lora", f"{CONFIGS}trainer.py:103-128 LoRAConfig (model.lora)"),
        *declared("strategy", "fsdp", f"{CONFIGS}trainer.py:197-209 (FSDP2: fsdp_cpu_offload, dp_replicate)"),
        *declared("feature", "adam_betas", f"{CONFIGS}trainer.py:436-443 AdamWConfig.betas1/betas2"),
        *declared("feature", "min_lr", f"{CONFIGS}trainer.py:378-385 CosineSchedulerConfig.min_lr"),
    )

    def static_problems(self, job: Job) -> list[str]:
        out = self._refusals(job)
        if out:
            return out
        out += passthrough_problems(self, job)
        return out or self._schema_problems(job)

    def _refusals(self, job: Job) -> list[str]:
        t, m = job.training, job.method
        if m.family == "rl":
            return [
                "method.name: Prime RL draws prompts from and scores rollouts in verifiers environments "
                f"(orchestrator.train.source[].env, {CONFIGS}orchestrator.py:119-132), not a prompt dataset with "
                "reward functions; write a verifiers environment and run Prime RL's `rl` yourself"
            ]
        out = []
        if t.max_steps is None:
            out.append("training.max_steps: Prime RL's SFT counts optimizer steps (max_steps), not epochs; set it")
        if t.precision not in PRECISION:
            out.append(
                "training.precision: Prime RL trains in float32 or bfloat16 only (model.optimization_dtype); "
                "use fp32 or bf16"
            )
        if t.optimizer not in OPTIMIZERS:
            out.append(f"training.optimizer: ptsdk maps only {', '.join(OPTIMIZERS)} to Prime RL's optim.type")
        if t.adam_epsilon != 1e-8:
            out.append("training.adam_epsilon: Prime RL's AdamWConfig has no epsilon; leave it at 1e-8")
        if job.data.format not in (None, "messages", "prompt_completion"):
            out.append(
                "data.format: Prime RL's SFT reads `messages` or `prompt`/`completion` records; convert the data"
            )
        if job.data.eval_split is not None:
            out.append("data.eval_split: Prime RL evaluates on a dataset of its own; give data.eval instead")
        if job.model.chat_template and job.model.chat_template.endswith(".jinja"):
            out.append("model.chat_template: Prime RL takes the template's text (tokenizer.chat_template), not a file")
        return out

    def _schema_problems(self, job: Job) -> list[str]:
        try:
            config = self._config(job, [])
        except PtsdkError:
            return []  # passthrough refusals are reported by passthrough_problems
        return [f"{CONFIG_FILE} {p} (Prime RL schema at {COMMIT[:12]})" for p in schema_problems(SCHEMA, config)]

    def translate(self, job: Job) -> Plan:
        problems = self._refusals(job)
        if problems:
            raise PtsdkError(f"backend {self.name}: the job cannot run on Prime RL", lines=problems)
        notes: list[Note] = []
        config = self._config(job, notes)
        bad = schema_problems(SCHEMA, config)
        if bad:
            raise PtsdkError(f"backend {self.name}: {CONFIG_FILE} breaks Prime RL's schema", lines=bad)
        import tomli_w

        files = [PlanFile(CONFIG_FILE, content=tomli_w.dumps(config)), *self._data_files(job)]
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=list(SFT_ENTRY),
            args=["@", CONFIG_FILE],
            launcher=Launcher("python"),
            env=common_env(job),
            native_config=CONFIG_FILE,
            notes=notes,
            effective={"sources": self._sources(job)},
            inputs=local_inputs(job),
            job=job,
        )

    def _config(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d = job.training, job.distributed
        config: dict[str, Any] = {
            "max_steps": t.max_steps,
            "output_dir": "outputs",
            "model": self._model(job, notes),
            "data": self._data(job, "train", job.data.train.path),
            "optim": self._optim(job),
            "scheduler": self._scheduler(job, notes),
            "ckpt": {"interval": job.output.save_steps} if job.output.save_steps else {},
            "deployment": {"type": "single_node", "gpus_per_node": d.gpus_per_node, "num_train_gpus": d.world_size},
        }
        if job.model.chat_template:
            config["tokenizer"] = {"chat_template": job.model.chat_template}
        if job.data.eval is not None:
            val: dict[str, Any] = {"data": self._data(job, "eval", job.data.eval.path)}
            if job.output.eval_steps:
                val["interval"] = job.output.eval_steps
            config["val"] = val
        notes.append(
            Note("training.packing", "set", "Prime RL packs samples into data.seq_len-token rows (data.py:442-555)")
        )
        notes.append(
            Note(
                "training.global_batch_size",
                "approximated",
                "data.batch_size counts packed rows of data.seq_len tokens, not sequences",
            )
        )
        apply_passthrough(job, self.name, config, notes)
        return config

    def _model(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        dtype = PRECISION[job.training.precision]
        model: dict[str, Any] = {
            "name": job.model.name_or_path,
            "trust_remote_code": job.model.trust_remote_code,
            "seq_len": job.data.max_length,
            "optimization_dtype": dtype,
            "reduce_dtype": dtype,
        }
        a = job.adapter
        if a.type == "lora":
            lora: dict[str, Any] = {"rank": a.r, "alpha": float(a.alpha), "dropout": a.dropout}
            if a.target_modules == "all-linear":
                notes.append(Note("adapter.target_modules", "approximated", "all-linear: Prime RL's default list"))
            else:
                lora["target_modules"] = list(a.target_modules)
            model["lora"] = lora
        if not job.training.gradient_checkpointing:
            notes.append(
                Note("training.gradient_checkpointing", "defaulted", "Prime RL checkpoints activations (model.ac)")
            )
        return model

    def _data(self, job: Job, split: str, path: str) -> dict[str, Any]:
        t = job.training
        data: dict[str, Any] = {
            "type": "sft",
            "name": f"data/{split}" if self._local(path) else path,
            "batch_size": t.global_batch_size,
            "micro_batch_size": t.micro_batch_size,
            "seq_len": job.data.max_length,
            "shuffle": t.shuffle,
            "seed": t.seed,
        }
        if job.method.loss_on == "all":  # type: ignore[union-attr]
            data["loss_mask"] = dict(ALL_ROLES)
        return data

    @staticmethod
    def _local(path: str) -> bool:
        return path.endswith(LOCAL_SUFFIXES)

    def _data_files(self, job: Job) -> list[PlanFile]:
        sources = [("train", job.data.train.path)]
        if job.data.eval is not None:
            sources.append(("eval", job.data.eval.path))
        return [
            PlanFile(f"data/{split}/{split}{Path(path).suffix}", copy_from=path)
            for split, path in sources
            if self._local(path)
        ]

    def _optim(self, job: Job) -> dict[str, Any]:
        t = job.training
        optim: dict[str, Any] = {
            "type": OPTIMIZERS[t.optimizer],
            "weight_decay": t.weight_decay,
            "max_norm": t.max_grad_norm,
        }
        if t.learning_rate is not None:  # unset: Prime RL's own default (1e-6)
            optim["lr"] = t.learning_rate
        if t.optimizer == "adamw":
            optim.update(betas1=t.adam_beta1, betas2=t.adam_beta2)
        else:
            optim.update(nesterov=False, momentum=0.0)
        return optim

    def _scheduler(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t = job.training
        steps = t.max_steps or 0
        warmup = job.warmup_steps if job.warmup_steps is not None else round(t.warmup_ratio * steps)
        lr = t.learning_rate or 0.0
        if t.lr_scheduler == "cosine":
            return {"type": "cosine", "warmup_steps": warmup, "min_lr": lr * t.min_lr_ratio}
        if t.lr_scheduler == "linear":
            return {"type": "linear", "warmup_steps": warmup, "decay_steps": steps - warmup}
        if warmup:
            notes.append(Note("training.lr_scheduler", "set", "constant after warmup: Prime RL's linear, decay 0"))
            return {"type": "linear", "warmup_steps": warmup, "decay_steps": 0}
        return {"type": "constant"}

    def _sources(self, job: Job) -> dict[str, str]:
        return {
            "global_batch_sequences": "data.batch_size packed rows of data.seq_len tokens per step; accumulation = "
            "batch_size / (world size x data.micro_batch_size) (src/prime_rl/trainer/sft/train.py:113-119)",
            "loss_normalization": "tokens across the optimizer step (train.py:480, 533: the global token count)",
            "precision": "model.optimization_dtype and model.reduce_dtype",
            "data_order": f"Prime RL's seeded shuffle (data.seed {job.training.seed})"
            if job.training.shuffle
            else "file order (data.shuffle false)",
        }
