"""PipelineRL (github.com/ServiceNow/PipelineRL, git only): a ptsdk GRPO job as a PipelineRL Hydra config.

``python -m pipelinerl.launch --config-dir . --config-name ptsdk`` runs ``ptsdk.yaml`` (``defaults: [base]``, then
ptsdk's keys) from the run directory. The launcher (pipelinerl/launch.py, world.py) splits the node's visible
GPUs between vLLM actors and trainers; ptsdk gives the actor one GPU and the trainer the rest
(``world.actor_fraction`` 1, ``world.finetune_fraction`` gpus_per_node - 1).

Data and rewards: ptsdk's ``ptsdk_pipelinerl_rollout.py`` (:mod:`ptsdk_pipelinerl.rollout`) is the domain:
``dataset_loader`` reads the job's JSONL prompt records (copied under data/), ``actor.rollout_policy`` samples
one completion and scores it with the job's reward functions; ``attempts`` completions per prompt make a group.

Units: ptsdk ``global_batch_size`` counts completions per optimizer step; PipelineRL trains
``finetune.train_batch_size`` samples per pass and ``finetune.gradient_accumulation_passes`` passes per step,
across all trainer processes (finetune_loop.py:340-346, 629-630), so passes = global / micro and must divide
by the trainer processes. Sequence packing is off unless training.packing (a packed sample holds several).

Not run here: LoRA (``finetune.lora.enabled`` changes only how checkpoints are saved and loaded,
finetune/checkpoints.py:373-400: ``prepare_lora_model`` in finetune/lora.py:51 is never called, so the whole model
trains), vision-language models (Qwen2.5-VL only, launch.py:63-69; ptsdk's rollout sends no images), the KL
penalty (it needs the preprocessor's reference model, launch.py:59-60) and several nodes.

The generated config is checked against PipelineRL's keys transcribed in :mod:`ptsdk_pipelinerl.schema`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ptsdk.errors import PtsdkError
from ptsdk.matrix.capability import Capability, declared
from ptsdk.plugins.backend import Backend, Launcher, Note, Plan, PlanFile
from ptsdk.plugins.kit import apply_passthrough, common_env, local_inputs, passthrough_problems, schema_problems
from ptsdk.spec import Job
from ptsdk.spec.method import GRPO

from ptsdk_pipelinerl import rollout
from ptsdk_pipelinerl.pinned import COMMIT

REPO = "github.com/ServiceNow/PipelineRL"
CONFIG_NAME = "ptsdk"
CONFIG_FILE = f"{CONFIG_NAME}.yaml"
ROLLOUT_MODULE = "ptsdk_pipelinerl_rollout"
ENTRY = ["-m", "pipelinerl.launch"]
INSTALL = (
    f"git clone https://{REPO} && git -C PipelineRL checkout {COMMIT} && pip install -e ./PipelineRL (Python 3.12, "
    "CUDA, then flash-attn as its README says), then export PTSDK_PIPELINERL_PYTHON=/path/to/that/python"
)
#: (ZeRO stage, precision) -> conf/deepspeed/NAME.json at the pinned commit (there is no fp32 ZeRO-2 config).
DEEPSPEED = {
    (1, "bf16"): "deepspeed_stage1_bf16",
    (1, "fp32"): "deepspeed_stage1",
    (2, "bf16"): "deepspeed_stage2_bf16",
    (3, "bf16"): "deepspeed_stage3_bf16",
    (3, "fp32"): "deepspeed_stage3",
}
#: training.optimizer -> finetune.optim (pipelinerl/finetune/optim.py:25-45; AdamW's betas and epsilon are torch's).
OPTIMIZERS = {"adamw": "adamw_torch", "adafactor": "adafactor"}
#: training.lr_scheduler -> finetune.lr_scheduler_type, handed to transformers' get_scheduler (finetune_loop.py:394).
SCHEDULERS = {
    "linear": "linear",
    "cosine": "cosine",
    "constant": "constant",
    "constant_with_warmup": "constant_with_warmup",
}


#: The transcribed schema (ptsdk.plugins.kit.schema_problems imports it when a translation is checked).
SCHEMA = "ptsdk_pipelinerl.schema:PipelineRLConfig"


class PipelineRLBackend(Backend):
    name = "pipelinerl"
    framework = "pipelinerl"
    description = "PipelineRL (git only): in-flight-weight-update GRPO through its Hydra config"
    schema_source = f"{REPO}@{COMMIT}"
    #: The source version the capabilities were read from (nothing here ran it).
    verified_with: ClassVar[dict[str, str]] = {"pipelinerl": f"0.1.0@{COMMIT[:8]}"}
    install_hint = INSTALL
    capabilities: ClassVar[tuple[Capability, ...]] = (
        *declared("method", "grpo", "conf/finetune/base.yaml (rl), pipelinerl/finetune/rl/__init__.py:43-105"),
        *declared(
            "loss",
            "grpo:grpo",
            "rl.policy_loss ppo with group-mean advantages divided by the group std "
            "(pipelinerl/finetune/rl/__init__.py:297-303, 505-525); token losses are summed (sum_sum, line 365)",
        ),
        *declared("adapter", "full", "conf/finetune/base.yaml: the whole model trains"),
        *declared("reward", "functions", "ptsdk's rollout policy (actor.rollout_policy, pipelinerl/actor.py:141)"),
        *declared(
            "strategy", "ddp", "use_deepspeed and use_fsdp false: accelerate's base_mp/base_nomp (launch.py:353-360)"
        ),
        *declared("strategy", "fsdp", "use_fsdp: accelerate's fsdp_mp/fsdp_nomp (launch.py:353-360)"),
        *declared(
            "strategy",
            "deepspeed_zero1 deepspeed_zero2 deepspeed_zero3",
            "use_deepspeed with deepspeed_config, one of conf/deepspeed/*.json (launch.py:346-352)",
        ),
        *declared("rollout", "vllm", "pipelinerl/launch.py:191-248 run_actor_llm (vLLM actor servers)"),
        *declared("feature", "packing", "finetune.seq_packing (needs flash attention, finetune_loop.py:315-323)"),
    )

    def static_problems(self, job: Job) -> list[str]:
        return self._refusals(job) or passthrough_problems(self, job) or self._schema_problems(job)

    def _refusals(self, job: Job) -> list[str]:
        t, d = job.training, job.distributed
        out = []
        if d.world_size < 2:
            out.append(
                "distributed.gpus_per_node: PipelineRL runs the vLLM actor and the trainer on different GPUs; "
                "give at least 2"
            )
        elif (passes := t.global_batch_size // t.micro_batch_size) % (d.world_size - 1):
            out.append(
                f"training.global_batch_size: PipelineRL splits global/micro = {passes} accumulation passes over "
                f"its {d.world_size - 1} trainer GPUs; use a multiple of them"
            )
        if t.max_steps is None:
            out.append("training.max_steps: PipelineRL counts optimizer steps (finetune.max_train_steps); set it")
        if t.optimizer not in OPTIMIZERS:
            out.append(f"training.optimizer: ptsdk maps only {', '.join(OPTIMIZERS)} to PipelineRL's finetune.optim")
        if t.precision == "fp16":
            out.append("training.precision: PipelineRL trains in bf16 (finetune.load_as_bf16) or fp32; use one of them")
        if d.strategy == "deepspeed" and (d.zero_stage, t.precision) not in DEEPSPEED:
            out.append(
                f"distributed.zero_stage: PipelineRL ships no ZeRO-{d.zero_stage} {t.precision} DeepSpeed config "
                f"(conf/deepspeed/); use one of {', '.join(f'ZeRO-{z} {p}' for z, p in DEEPSPEED)}"
            )
        if job.data.columns:
            out.append("data.columns: rename the columns to prompt/ground_truth; the rollout reads them by name")
        return out

    def _schema_problems(self, job: Job) -> list[str]:
        try:
            config = self._config(job, [])
        except PtsdkError:
            return []  # passthrough refusals are reported by passthrough_problems
        return [f"{CONFIG_FILE} {p} (PipelineRL keys at {COMMIT[:12]})" for p in schema_problems(SCHEMA, config)]

    def translate(self, job: Job) -> Plan:
        import yaml

        problems = self._refusals(job)
        if problems:
            raise PtsdkError(f"backend {self.name}: the job cannot run on PipelineRL", lines=problems)
        notes: list[Note] = []
        config = self._config(job, notes)
        bad = schema_problems(SCHEMA, config)
        if bad:
            raise PtsdkError(f"backend {self.name}: {CONFIG_FILE} has keys PipelineRL does not", lines=bad)
        files = [
            PlanFile(CONFIG_FILE, content=yaml.safe_dump(config, sort_keys=False)),
            PlanFile(f"{ROLLOUT_MODULE}.py", copy_from=rollout.__file__),
            *[PlanFile(name, copy_from=path) for name, path in self._data(job)],
        ]
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=list(ENTRY),
            args=["--config-dir", ".", "--config-name", CONFIG_NAME],
            launcher=Launcher("python"),
            # PipelineRL's actor imports the rollout module by name, from the run directory.
            env={**common_env(job), "PYTHONPATH": "."},
            native_config=CONFIG_FILE,
            notes=notes,
            effective={"sources": self._sources(job)},
            inputs=local_inputs(job),
            job=job,
        )

    @staticmethod
    def _data(job: Job) -> list[tuple[str, str]]:
        found = [(f"data/train{Path(job.data.train.path).suffix}", job.data.train.path)]
        if job.data.eval is not None:
            found.append((f"data/eval{Path(job.data.eval.path).suffix}", job.data.eval.path))
        return found

    def _config(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        m, t = job.method, job.training
        assert isinstance(m, GRPO)
        length = (m.max_prompt_length or job.data.max_length) + m.max_completion_length
        sampling = {"max_tokens": m.max_completion_length, "temperature": m.temperature}
        names = [name for name, _ in self._data(job)]
        config: dict[str, Any] = {
            "defaults": ["base", "_self_"],
            "output_dir": "output",
            "model_path": job.model.name_or_path,
            "seed": t.seed,
            "attempts": m.num_generations,
            **self._strategy(job),
            "finetune": self._finetune(job, length, notes),
            "llm": {"parameters": dict(sampling)},
            "test_llm": {"parameters": dict(sampling)},
            "vllm_config": {"vllm_kwargs": {"max_model_len": length, "dtype": self._dtype(job)}},
            "world": {
                "actor_fraction": 1,
                "preprocessor_fraction": 0,
                "finetune_fraction": job.distributed.world_size - 1,
            },
            "wandb": {"use_wandb": "wandb" in job.output.report_to},
            "actor": {"rollout_policy": f"{ROLLOUT_MODULE}.generate_rollout"},
            "dataset_loader": f"{ROLLOUT_MODULE}.load_problems",
            "dataset_loader_params": {"rewards": list(m.rewards)},
            "train_dataset_names": names[:1],
            "test_dataset_names": names[1:],
        }
        if job.data.eval is None:
            notes.append(Note("data.eval", "defaulted", "no test problems: PipelineRL's evaluation has nothing to run"))
        apply_passthrough(job, self.name, config, notes)
        return config

    def _finetune(self, job: Job, length: int, notes: list[Note]) -> dict[str, Any]:
        m, t = job.method, job.training
        assert isinstance(m, GRPO)
        steps = t.max_steps or 0
        warmup = job.warmup_steps if job.warmup_steps is not None else round(t.warmup_ratio * steps)
        if t.lr_scheduler == "constant" and warmup:
            notes.append(Note("training.warmup_ratio", "dropped", "transformers' constant schedule has no warmup"))
        finetune: dict[str, Any] = {
            "train_batch_size": t.micro_batch_size,
            "gradient_accumulation_passes": t.global_batch_size // t.micro_batch_size,
            "max_train_steps": steps,
            "seq_length": length,
            "seq_packing": t.packing,
            "optim": OPTIMIZERS[t.optimizer],
            "weight_decay": t.weight_decay,
            "gradient_clipping_threshold": t.max_grad_norm,
            "lr_scheduler_type": SCHEDULERS[t.lr_scheduler],
            "num_warmup_steps": warmup,
            "gradient_checkpointing": t.gradient_checkpointing,
            "load_as_bf16": t.precision == "bf16",
            "save_checkpoint_steps": job.output.save_steps or steps,
            "log_each_n_steps": job.output.logging_steps,
            "seed": t.seed,
            "rl": {
                "policy_loss": "ppo",
                "use_advantages": True,
                "divide_advantage_by_std": True,
                "epsilon_low": m.clip_epsilon,
                "epsilon_high": m.clip_epsilon,
                "kl_coef": 0.0,
                "final_kl_coef": 0.0,
                "temperature": m.temperature,
            },
        }
        if t.learning_rate is not None:
            finetune["learning_rate"] = t.learning_rate
        if not t.packing:
            # Packing needs flash attention; without it the job's attention (else sdpa) is used.
            finetune["use_flash_attention"] = False
            finetune["attn_implementation"] = job.model.attn_implementation or "sdpa"
        return finetune

    @staticmethod
    def _strategy(job: Job) -> dict[str, Any]:
        d, mixed = job.distributed, job.training.precision == "bf16"
        if d.strategy == "deepspeed":
            return {
                "use_deepspeed": True,
                "use_fsdp": False,
                "deepspeed_config": DEEPSPEED[d.zero_stage or 0, job.training.precision],
            }
        fsdp = d.strategy == "fsdp"
        accelerate = f"{'fsdp' if fsdp else 'base'}_{'mp' if mixed else 'nomp'}"
        return {"use_deepspeed": False, "use_fsdp": fsdp, "accelerate_config": accelerate}

    @staticmethod
    def _dtype(job: Job) -> str:
        return "bfloat16" if job.training.precision == "bf16" else "float32"

    def _sources(self, job: Job) -> dict[str, str]:
        return {
            "global_batch_sequences": "finetune.train_batch_size x finetune.gradient_accumulation_passes completions",
            "rollout": f"{job.method.num_generations} completions per prompt (attempts)",  # type: ignore[union-attr]
        }
