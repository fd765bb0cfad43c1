"""TorchForge (github.com/meta-pytorch/torchforge, git only): a ptsdk SFT job as the YAML of its SFT app.

TorchForge is a set of Monarch actors and two example apps, not a configurable trainer, and its last commit is
of 2025-11-15. ``torchforge`` on PyPI is a 22-byte placeholder (0.0.1); ``forge``, the name in its pyproject.toml,
is an unrelated Django package there. What its apps fix in code rather than config, ptsdk refuses:

- SFT (``apps/sft/main.py``): the data are ``yahma/alpaca-cleaned``, hard-coded (main.py:142-147, Alpaca records
  through ``AlpacaToMessages()``, which trains on every token: src/forge/data/datasets/sft_dataset.py:18-48), always
  packed into ``training.seq_len`` tokens (main.py:148-153), one micro-batch per optimizer step (main.py:224-241:
  no gradient accumulation), no evaluation. The model is one of torchtitan's (``model.name`` + ``flavor``), its
  weights loaded from the hub (``checkpoint.initial_load_path: hf://ID``, ``initial_load_in_hf``).
- GRPO (``apps/grpo/main.py``): GSM8K's ``question``/``answer`` transform (main.py:216-233) and the rewards
  ``MathReward`` + ``ThinkingReward`` (main.py:333-335) are fixed: ptsdk's reward functions cannot be given, so the
  matrix refuses its RL jobs.
- No LoRA, no vision-language models.

The app runs from the run directory through ``torchforge_app.py`` (:mod:`ptsdk_torchforge.run_app`), which finds
the checkout's apps/ beside the editable ``forge`` package. The generated YAML is checked against the
torchtitan dataclasses transcribed in :mod:`ptsdk_torchforge.schema`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ptsdk.errors import PtsdkError
from ptsdk.matrix.capability import Capability, declared
from ptsdk.plugins.backend import Backend, Launcher, Note, Plan, PlanFile
from ptsdk.plugins.kit import apply_passthrough, common_env, passthrough_problems, schema_problems
from ptsdk.spec import Job

from ptsdk_torchforge import run_app
from ptsdk_torchforge.pinned import COMMIT, TORCHTITAN

REPO = "github.com/meta-pytorch/torchforge"
CONFIG_FILE = "sft.yaml"
APP_FILE = "torchforge_app.py"
SFT_APP = "apps.sft.main"
INSTALL = (
    f"git clone https://{REPO} && git -C torchforge checkout {COMMIT} && (cd torchforge && ./scripts/install.sh) "
    "on a CUDA machine (it installs forge editable, with torch 2.9, torchtitan 0.2.0, Monarch and vLLM), then "
    "export PTSDK_TORCHFORGE_PYTHON=/path/to/that/python"
)
#: The data the SFT app reads, whatever its config says (apps/sft/main.py:142-147).
SFT_DATASET = "yahma/alpaca-cleaned"
#: Hub models -> torchtitan's (model.name, model.flavor): torchtitan 0.2.0 models/qwen3/__init__.py:46-120 and
#: models/llama3/__init__.py:42-68; the apps' configs name them so (apps/sft/llama3_8b.yaml, qwen3_8b.yaml).
MODELS = {
    **{f"Qwen/Qwen3-{size}": ("qwen3", size) for size in ("0.6B", "1.7B", "4B", "8B", "14B", "32B")},
    **{f"meta-llama/Meta-Llama-3.1-{size}": ("llama3", size) for size in ("8B", "70B", "405B")},
    **{f"meta-llama/Meta-Llama-3.1-{size}-Instruct": ("llama3", size) for size in ("8B", "70B", "405B")},
}
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
DECAY = {"linear": "linear", "cosine": "cosine"}


#: The transcribed schema (ptsdk.plugins.kit.schema_problems imports it when a translation is checked).
SCHEMA = "ptsdk_torchforge.schema:SFTConfig"


class TorchForgeBackend(Backend):
    name = "torchforge"
    framework = "forge"
    description = "TorchForge (git only): its SFT app's YAML (Alpaca data and torchtitan models only)"
    schema_source = f"{REPO}@{COMMIT}"
    #: The source version the capabilities were read from (nothing here ran it).
    verified_with: ClassVar[dict[str, str]] = {"forge": f"0.1.0@{COMMIT[:8]}", "torchtitan": TORCHTITAN}
    install_hint = INSTALL
    capabilities: ClassVar[tuple[Capability, ...]] = (
        *declared("method", "sft", "apps/sft/main.py (ForgeSFTRecipe over torchtitan's ForgeEngine)"),
        *declared("method", "grpo", "apps/grpo/main.py; its dataset and rewards are fixed (main.py:216-233, 333-335)"),
        *declared("loss", "grpo:grpo", "apps/grpo/main.py:122-139 simple_grpo_loss (sequence mean, batch mean)"),
        *declared("adapter", "full", "torchtitan trains the whole model; no LoRA anywhere in src/forge"),
        *declared("strategy", "fsdp", f"parallelism.data_parallel_shard_degree (torchtitan {TORCHTITAN} FSDP2)"),
        *declared("strategy", "ddp", "parallelism.data_parallel_replicate_degree (torchtitan's replicate)"),
        *declared("feature", "instruction_records", "AlpacaToMessages (src/forge/data/datasets/sft_dataset.py:18)"),
        *declared("feature", "packing", "PackedDataset + TextPacker, always on (apps/sft/main.py:148-153)"),
        *declared("feature", "min_lr", "lr_scheduler.min_lr_factor (torchtitan job_config.py:183-188)"),
    )

    def static_problems(self, job: Job) -> list[str]:
        return self._refusals(job) or passthrough_problems(self, job) or self._schema_problems(job)

    def _refusals(self, job: Job) -> list[str]:
        if job.method.family != "sft":
            return []  # the matrix decides what it can of RL; its rewards refusal comes first
        t, d = job.training, job.data
        out = []
        if d.train.path != SFT_DATASET or d.train.split != "train" or d.train.subset or d.train.max_samples:
            out.append(
                f"data.train.path: TorchForge's SFT app reads {SFT_DATASET} (split train, every row), hard-coded "
                "in apps/sft/main.py:142-147; it cannot read other data"
            )
        if d.eval is not None or d.eval_split is not None:
            out.append("data.eval: TorchForge's SFT app does not evaluate; remove data.eval / data.eval_split")
        if job.method.loss_on != "all":  # type: ignore[union-attr]
            out.append(
                "method.loss_on: TorchForge's SFT app trains on every token (AlpacaToMessages' train_on_all); "
                "set loss_on: all"
            )
        if self._model(job) is None and not (job.backend_options.get(self.name) or {}).get("model"):
            out.append(
                f"model.name_or_path: TorchForge builds torchtitan models by name and flavor; ptsdk knows "
                f"{', '.join(sorted(MODELS))} (or name backend_options.{self.name}.model.name/flavor)"
            )
        if t.global_batch_size != t.micro_batch_size * job.distributed.world_size:
            out.append(
                "training.global_batch_size: TorchForge's SFT app takes one micro-batch per process and step (no "
                "gradient accumulation, apps/sft/main.py:224-241); set it to micro_batch_size x processes"
            )
        if t.max_steps is None:
            out.append("training.max_steps: TorchForge counts optimizer steps (training.steps), not epochs; set it")
        if t.precision not in DTYPES:
            out.append(
                "training.precision: torchtitan trains in float32 or bfloat16 (training.dtype); use fp32 or bf16"
            )
        if t.optimizer != "adamw":
            out.append("training.optimizer: ptsdk gives TorchForge torchtitan's AdamW only")
        if job.model.chat_template:
            out.append("model.chat_template: the SFT app uses the model's chat_template.jinja, if any; remove it")
        return out

    def _schema_problems(self, job: Job) -> list[str]:
        if job.method.family != "sft":
            return []
        try:
            config = self._config(job, [])
        except PtsdkError:
            return []  # passthrough refusals are reported by passthrough_problems
        return [f"{CONFIG_FILE} {p} (torchtitan {TORCHTITAN} dataclasses)" for p in schema_problems(SCHEMA, config)]

    def translate(self, job: Job) -> Plan:
        import yaml

        problems = self._refusals(job)
        if job.method.family != "sft":
            problems.append(f"method.name: ptsdk runs TorchForge's SFT app only, not {job.method.name}")
        if problems:
            raise PtsdkError(f"backend {self.name}: the job cannot run on TorchForge", lines=problems)
        notes: list[Note] = []
        config = self._config(job, notes)
        bad = schema_problems(SCHEMA, config)
        if bad:
            raise PtsdkError(f"backend {self.name}: {CONFIG_FILE} breaks torchtitan's job config", lines=bad)
        return Plan(
            backend=self.name,
            files=[
                PlanFile(CONFIG_FILE, content=yaml.safe_dump(config, sort_keys=False)),
                PlanFile(APP_FILE, copy_from=run_app.__file__),
            ],
            entrypoint=[APP_FILE, SFT_APP],
            args=["--config", CONFIG_FILE],
            launcher=Launcher("python"),
            env=common_env(job),
            native_config=CONFIG_FILE,
            notes=notes,
            effective={"sources": self._sources(job)},
            job=job,
        )

    @staticmethod
    def _model(job: Job) -> tuple[str, str] | None:
        return MODELS.get(job.model.name_or_path)

    def _config(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d = job.training, job.distributed
        hub = f"hf://{job.model.name_or_path}"
        name, flavor = self._model(job) or ("", "")
        config: dict[str, Any] = {
            "comm": {"trace_buf_size": 0},  # torchtitan needs it off under Monarch (the apps' configs say so)
            "model": {"name": name, "flavor": flavor, "hf_assets_path": hub},
            "processes": {"procs": d.world_size, "with_gpus": True},
            "optimizer": {
                "name": "AdamW",
                "lr": t.learning_rate or 2e-5,
                "beta1": t.adam_beta1,
                "beta2": t.adam_beta2,
                "eps": t.adam_epsilon,
                "weight_decay": t.weight_decay,
            },
            "lr_scheduler": self._scheduler(job),
            "training": {
                "local_batch_size": t.micro_batch_size,
                "seq_len": job.data.max_length,
                "max_norm": t.max_grad_norm,
                "steps": t.max_steps or 0,
                "dtype": DTYPES.get(t.precision, "float32"),
                "mixed_precision_param": DTYPES.get(t.precision, "float32"),
                "seed": t.seed,
            },
            "parallelism": self._parallelism(job),
            "checkpoint": {
                "enable": True,
                "folder": "checkpoint",
                "initial_load_path": hub,
                "initial_load_in_hf": True,
                "last_save_in_hf": True,
                "interval": job.output.save_steps or t.max_steps or 0,
            },
            "activation_checkpoint": {"mode": "selective", "selective_ac_option": "op"}
            if t.gradient_checkpointing
            else {"mode": "none"},
            "metric_logging": {"console": {"logging_mode": "global_reduce"}},
        }
        if t.learning_rate is None:
            notes.append(Note("training.learning_rate", "defaulted", "2e-5, ptsdk's full fine-tuning default"))
        if not t.packing:
            notes.append(Note("training.packing", "approximated", "the SFT app always packs (apps/sft/main.py:148)"))
        notes.append(Note("data.train.path", "set", f"{SFT_DATASET}: what the SFT app reads, hard-coded"))
        apply_passthrough(job, self.name, config, notes)
        return config

    @staticmethod
    def _scheduler(job: Job) -> dict[str, Any]:
        t = job.training
        warmup = job.warmup_steps if job.warmup_steps is not None else round(t.warmup_ratio * (t.max_steps or 0))
        out: dict[str, Any] = {"warmup_steps": warmup, "min_lr_factor": t.min_lr_ratio}
        if t.lr_scheduler in DECAY:
            out["decay_type"] = DECAY[t.lr_scheduler]
        else:  # constant: a warmup-stable-decay schedule with no decay (torchtitan components/lr_scheduler.py:116-128)
            out["decay_ratio"] = 0.0
        return out

    @staticmethod
    def _parallelism(job: Job) -> dict[str, Any]:
        d = job.distributed
        if d.effective_strategy == "ddp":
            return {"data_parallel_replicate_degree": d.world_size, "data_parallel_shard_degree": 1}
        return {"data_parallel_replicate_degree": 1, "data_parallel_shard_degree": -1}

    def _sources(self, job: Job) -> dict[str, str]:
        return {
            "global_batch_sequences": "training.local_batch_size packed rows per process, one micro-batch per step",
            "loss_mask": "every token (AlpacaToMessages' train_on_all)",
        }
