"""OpenRLHF: a ptsdk job as command lines for OpenRLHF's own CLIs.

- SFT, DPO and IPO: ``openrlhf.cli.train_sft`` / ``train_dpo`` through the DeepSpeed launcher
  (even for one GPU: without a launcher DeepSpeed looks for MPI and fails).
- Online RL (PPO with a critic, GRPO, Dr. GRPO, RLOO, REINFORCE++ and its baseline variant):
  ``openrlhf.cli.train_ppo_ray`` with ``--algo.advantage.estimator``; ``ray job submit`` to
  ``distributed.ray_address`` when set, else the module starts a local Ray (RAY.md in the run
  directory says how to start a cluster).
- CPU smoke mode (``distributed.device: cpu``, SFT and DPO, one process): the same module and flags,
  started by torchrun through ``cpu_smoke.py``, the only file that adapts OpenRLHF to a CPU (a
  flash_attn stand-in and its CUDA-only calls redirected; see that file).

Every flag is a full name that OpenRLHF 0.11.2's own parser accepts (checked by
check_openrlhf.py with abbreviations off). The data is converted into OpenRLHF's keys by
prepare_openrlhf.py, a preparation step run in OpenRLHF's environment before the launch (and by
the native check), which also calls the bridged reward on a sample record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import PYTHON, Backend, Command, ImportResult, Launcher, Note, Plan, PlanFile
from ptsdk.plugins.environment import EnvironmentSpec, InstallStep, read_requirements, requirement_name
from ptsdk.plugins.kit import (
    LOSS_NORMALIZATION,
    OWNED_ORDER_SOURCE,
    Effective,
    apply_flag_passthrough,
    common_env,
    data_order,
    launcher_for,
    local_inputs,
    model_dir_problems,
    no_checkpoint_error,
    owned_order,
    owns_order,
    parse_flags,
    passthrough_problems,
    rendezvous_problems,
    runtime_file,
)
from ptsdk.spec.method import DPO, GRPO, IPO, PPO, _OnlineRL

if TYPE_CHECKING:
    from ptsdk.metrics import MetricRecord
    from ptsdk.spec import Job
    from ptsdk.spec.data import DataSource

HERE = Path(__file__).resolve().parent
V, T = Verified.validated, Verified.trained
TESTS = "tests/backends/test_openrlhf.py::"
PARSERS = TESTS + "test_every_command_line_passes_openrlhf_parsers"
SFT_CPU = TESTS + "test_sft_lora_trains_in_cpu_smoke_mode"
DPO_CPU = TESTS + "test_dpo_trains_in_cpu_smoke_mode"
#: One SFT run in CPU smoke mode with Alpaca records, a held-out eval split, Adam betas/epsilon and a cosine floor.
SETTINGS_CPU = TESTS + "test_sft_upstream_settings_trains_in_cpu_smoke_mode"
#: DPO in CPU smoke mode on ShareGPT conversations (from/value, human/gpt) whose prompt is inside chosen/rejected.
CONVERSATIONS_CPU = TESTS + "test_dpo_sharegpt_implicit_prompt_trains_in_cpu_smoke_mode"
#: OpenRLHF's own SFT, reward and prompt datasets tokenize mapped records as they tokenize canonical ones.
DATASETS = "test_mapped_records_tokenize_as_canonical_in_openrlhf_datasets"
#: Images in RL prompts: the command line through train_ppo_ray's parser and checks, the prepared prompts through
#: OpenRLHF's own PromptDataset and processor path (tiny LLaVA).
IMAGES = "tests/backends/test_images_rl_native.py::test_openrlhf_images_pass_its_parser_dataset_and_processor"
#: Where OpenRLHF 0.11.2 reads images (openrlhf/cli/train_ppo_ray.py:607-617 flags, 661-671 its VLM checks;
#: openrlhf/datasets/prompts_dataset.py:78-96 the image_key column; openrlhf/utils/utils.py:40-66 AutoProcessor for a
#: config with vision_config; openrlhf/utils/agent.py:207-233 process_prompt_with_images, no VLM prompt truncation).
IMAGES_SOURCE = (
    "train_ppo_ray only (--data.image_key, --data.max_images_per_prompt: openrlhf/cli/train_ppo_ray.py:607-617); "
    "train_sft and train_dpo read no images (their datasets have no image key)"
)
SMOKE = "trained in CPU smoke mode (cpu_smoke.py); GPU command lines validated by OpenRLHF's parsers"

MODULES = {"sft": "openrlhf.cli.train_sft", "preference": "openrlhf.cli.train_dpo", "rl": "openrlhf.cli.train_ppo_ray"}
#: Where OpenRLHF's optimizer steps part from the Hugging Face Trainer's when ptsdk lays out the epochs.
EPOCH_END = "runs on into the next epoch"
EPOCH_END_SOURCE = (
    "OpenRLHF's accumulation windows run across epochs (openrlhf/trainer/sft_trainer.py, dpo_trainer.py): where an "
    "epoch's rows do not fill whole global batches, its last step takes rows of the next epoch, and every later step "
    "shifts, where the Hugging Face Trainer makes a short last step; with a multiple of the global batch in each "
    "epoch the steps are the same"
)

# Files in the run directory.
DATA_SPEC = "openrlhf_data.json"  # what prepare_openrlhf.py converts, and how
PREPARE = "prepare_openrlhf.py"
REWARD = "ptsdk_reward.py"  # OpenRLHF's reward_func(queries, prompts, labels) file interface
REWARD_SPEC = "ptsdk_reward.json"
TRAIN_DATA = "data/train.jsonl"
EVAL_DATA = "data/eval.jsonl"
LABEL_KEY = "ptsdk_columns"  # the RL record's other columns as one JSON string (OpenRLHF passes one label)
IMAGE_KEY = "images"  # the prepared RL record's image files (--data.image_key)
TENSORBOARD = "logs/tensorboard"
CHECKPOINTS = "checkpoints"
MODEL = "model"
HOSTFILE = "hostfile"
RAY_NOTES = "RAY.md"
CPU_SMOKE = "cpu_smoke.py"  # the CPU smoke mode's launcher shim (device adaptations, in one file)

#: Methods the CPU smoke mode runs (and tests train).
CPU_METHODS = ("sft", "dpo")

#: Records are numbered from 0 by OpenRLHF's --data.max_samples; the prepared file is the cap.
NO_CAP = 2**31 - 1
#: OpenRLHF's own Adam betas (--adam.betas): ptsdk always sets the job's (torch's default is (0.9, 0.999)).
OPENRLHF_BETAS = (0.9, 0.95)


class OpenRLHFBackend(Backend):
    name = "openrlhf"
    framework = "openrlhf"
    description = "OpenRLHF: Ray + DeepSpeed + vLLM (SFT, DPO/IPO, PPO, GRPO, Dr. GRPO, RLOO, REINFORCE++)."
    verified_with: ClassVar[dict[str, str]] = {
        "openrlhf": "0.11.2",
        "deepspeed": "0.19.6",
        "ray": "2.55.0",
        "transformers": "5.15.0",
        "torch": "2.13.0",
    }
    install_hint = "ptsdk env create openrlhf   (torch first; pip install --no-deps openrlhf==0.11.2; then its pins)"
    reported_packages = ("deepspeed", "ray", "transformers", "peft", "datasets")
    check_script = HERE / "check_openrlhf.py"
    #: Flags (without --) the job owns even where ptsdk sets none: backend_options refuses them unless ptsdk_override
    #: names them (``*`` matches any part of a flag name; first match wins).
    passthrough_owned: ClassVar[dict[str, str]] = {
        "ds.zero_stage": "distributed.strategy",
        "ds.adam_offload": "distributed.offload",
        "ds.param_dtype": "training.precision",
        "ds.load_in_4bit": "model.quantization",
        "reward.model_name_or_path": "method.reward_model",
        "*.model_name_or_path": "model.name_or_path",
        "data.dataset": "data.train.path",
        "data.prompt_dataset": "data.train.path",
        "eval.dataset": "data.eval.path",
        "data.image_key": "data.images",
        "data.max_images_per_prompt": "data.images.max_per_record",
        "ckpt.output_dir": "output.dir",
        "ckpt.path": "output.dir",
        "logger.tensorboard_dir": "output.dir",
        "algo.advantage.estimator": "method.name",
        "*.num_nodes": "distributed.nodes",
        "*.num_gpus_per_node": "distributed.gpus_per_node",
    }
    capabilities = (
        *caps("method", "sft", T, SFT_CPU, note=SMOKE),
        *caps("method", "dpo", T, DPO_CPU, note=SMOKE),
        *caps("method", "ipo", V, PARSERS),
        *caps("method", "ppo grpo rloo reinforce_pp", V, PARSERS),
        *caps("loss", "dpo:sigmoid grpo:grpo grpo:dr_grpo", V, PARSERS),
        *caps("adapter", "lora", T, SFT_CPU, note="SFT-LoRA " + SMOKE),
        *caps("adapter", "full", T, DPO_CPU, note="full DPO " + SMOKE),
        *caps(
            "adapter", "qlora", V, PARSERS, note="--ds.load_in_4bit; not run in its CPU smoke mode (no quantized_cpu)"
        ),
        *caps(
            "strategy",
            "ddp deepspeed_zero0 deepspeed_zero1 deepspeed_zero2 deepspeed_zero3",
            V,
            PARSERS,
            note="OpenRLHF always trains with DeepSpeed; ddp is ZeRO stage 0",
        ),
        *caps("topology", "multi_node ray_cluster", V, PARSERS),
        *caps(
            "device",
            "cpu",
            T,
            SFT_CPU,
            note="SFT and DPO only, one process, bf16, in CPU smoke mode (cpu_smoke.py: a flash_attn stand-in and "
            "CUDA-only calls redirected; DeepSpeed's CPU accelerator); also " + DPO_CPU.rsplit("::", 1)[1],
        ),
        *caps("reward", "functions", V, TESTS + "test_reward_bridge_scores_in_openrlhf"),
        *caps("reward", "model", V, PARSERS, note="--reward.model_name_or_path"),
        *caps("rollout", "vllm", V, PARSERS),
        *caps(
            "feature",
            "images:grpo images:rloo images:reinforce_pp",
            V,
            IMAGES,
            note=f"{IMAGES_SOURCE}; the model's AutoProcessor renders and tokenizes each prompt with its images "
            "(openrlhf/utils/vlm_utils.py:68-117); no critic, so no PPO (train_ppo_ray.py:662-666); no "
            "--ds.packing_samples; vLLM generates on GPUs",
        ),
        *caps(
            "feature",
            "padding_free",
            V,
            PARSERS,
            note="--ds.packing_samples: each micro-batch unpadded and concatenated, positions restarting per sequence "
            "(flash-attn varlen; openrlhf/models/actor.py unpad_and_slice_tensor); GPU only",
        ),
        *caps(
            "feature",
            "token_batching",
            V,
            PARSERS,
            note="online RL only: --train.dynamic_batch_enable --train.max_tokens_per_gpu (padding-free)",
        ),
        *caps(
            "feature",
            "kl_in_loss:k1 kl_in_loss:k2 kl_in_loss:k3",
            V,
            PARSERS,
            note="--algo.kl.use_loss, --algo.kl.estimator",
        ),
        *caps(
            "feature",
            "kl_in_reward:k1 kl_in_reward:k2 kl_in_reward:k3",
            V,
            PARSERS,
            note="--algo.kl.init_coef in the token rewards, --algo.kl.estimator",
        ),
        *caps("feature", "several_steps_per_rollout", V, PARSERS, note="--rollout.batch_size prompts"),
        *caps("feature", "epochs_per_rollout", V, PARSERS, note="--train.max_epochs (passes over each rollout)"),
        *caps("feature", "dataset_subset", V, PARSERS, note="read by the preparation step (prepare_openrlhf.py)"),
        *caps("feature", "adam_betas", T, SETTINGS_CPU, note="--adam.betas, --adam.eps; " + SMOKE),
        *caps("feature", "min_lr", T, SETTINGS_CPU, note="--lr_scheduler cosine_with_min_lr --min_lr_ratio; " + SMOKE),
        *caps(
            "feature",
            "eval_split",
            T,
            SETTINGS_CPU,
            note="held out (seeded) by the preparation step into data/eval.jsonl, --eval.dataset; " + SMOKE,
        ),
        *caps(
            "feature",
            "instruction_records",
            T,
            SETTINGS_CPU,
            note="Alpaca prompt rendered by the preparation step, loss on the output; " + SMOKE,
        ),
        *caps(
            "feature",
            "message_mapping",
            T,
            CONVERSATIONS_CPU,
            note="data.message_keys/role_names applied by the preparation step to SFT messages, DPO conversations and "
            "RL prompts (written as {role, content}; thinking as reasoning_content, which OpenRLHF hands to the chat "
            f"template); DPO {SMOKE}; OpenRLHF's SFT, reward and prompt datasets tokenize mapped records exactly as "
            f"canonical ones ({DATASETS})",
        ),
        *caps(
            "feature",
            "implicit_prompt",
            T,
            CONVERSATIONS_CPU,
            note="the shared leading turns of chosen/rejected written as the prompt column by the preparation step; "
            f"{SMOKE}; OpenRLHF's reward dataset tokenizes them as the explicit-prompt records ({DATASETS})",
        ),
        *caps(
            "feature",
            "tracking_tensorboard",
            T,
            SFT_CPU,
            note=f"always on (--logger.tensorboard_dir {TENSORBOARD}): ptsdk reads every OpenRLHF run's metrics from "
            f"its event files; {SMOKE}. No W&B (OpenRLHF turns it on only with an API key, and then writes no "
            "TensorBoard logs), MLflow or Trackio logger",
        ),
    )

    # --- environment ------------------------------------------------------------------

    @classmethod
    def environment(cls) -> EnvironmentSpec:
        """torch alone first; openrlhf without its pins (it pins flash-attn, which only builds with
        CUDA); then every other pin of requirements.txt (deepspeed built without its CUDA ops)."""
        reqs = read_requirements(HERE / "requirements.txt")
        pin = {requirement_name(r): r for r in reqs}
        rest = tuple(r for r in reqs if requirement_name(r) not in ("torch", "openrlhf"))
        return EnvironmentSpec(
            (
                InstallStep("install torch (first, so no CUDA build is pulled)", (pin["torch"],)),
                InstallStep(
                    "install openrlhf alone (--no-deps: it pins flash-attn)",
                    (pin["openrlhf"],),
                    pip_args=("--no-deps",),
                ),
                InstallStep(f"install its {len(rest)} pinned requirements", rest, env=(("DS_BUILD_OPS", "0"),)),
            )
        )

    # --- what OpenRLHF cannot do (no framework needed) ----------------------------------

    def static_problems(self, job: Job) -> list[str]:
        launched = [] if job.method.family == "rl" else rendezvous_problems(job, "deepspeed")
        return _static_problems(job) + launched + passthrough_problems(self, job)

    # --- translation -------------------------------------------------------------------

    def translate(self, job: Job) -> Plan:
        from ptsdk.errors import UnsupportedError

        problems = _static_problems(job)
        if problems:
            raise UnsupportedError(f"backend {self.name} cannot run this job", lines=problems)
        notes: list[Note] = []
        family = job.method.family
        flags = Flags()
        data_spec = _data(job, flags, notes)
        if family == "rl":
            _rl(job, flags, notes)
        else:
            _deepspeed_trainer(job, flags, notes)
        _output(job, flags, notes, rl=family == "rl")
        _passthrough(job, flags, notes)
        files = [
            PlanFile(PREPARE, copy_from=str(HERE / "prepare_openrlhf.py")),
            PlanFile(DATA_SPEC, content=json.dumps(data_spec, indent=2, sort_keys=True) + "\n"),
            runtime_file(),  # prepare_openrlhf.py reads records with it; ptsdk_reward.py loads rewards with it
        ]
        if isinstance(job.method, _OnlineRL) and job.method.rewards:
            files += [
                PlanFile(REWARD, copy_from=str(HERE / "reward_bridge.py")),
                PlanFile(REWARD_SPEC, content=json.dumps(_reward_spec(job), indent=2) + "\n"),
            ]
        launcher = _launcher(job, notes)
        entrypoint = ["-m", MODULES[family]]
        env = {**common_env(job), "PYTHONUNBUFFERED": "1"}
        if job.distributed.device == "cpu":
            files.append(PlanFile(CPU_SMOKE, copy_from=str(HERE / CPU_SMOKE)))
            entrypoint = [CPU_SMOKE, *entrypoint]
            env["DS_ACCELERATOR"] = "cpu"
        if launcher.hostfile:
            files.append(PlanFile(HOSTFILE, content=_hostfile(job)))
        if family == "rl":
            files.append(PlanFile(RAY_NOTES, content=_ray_notes(job, launcher)))
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=entrypoint,
            args=flags.argv(),
            launcher=launcher,
            env=env,
            native_config=None,
            prepare=[
                Command([PYTHON, PREPARE, DATA_SPEC], {"HF_HUB_OFFLINE": "1"}, "convert the data to OpenRLHF's keys")
            ],
            notes=notes,
            effective=self.effective(job, flags),
            inputs=local_inputs(job),
            job=job,
        )

    def effective(self, job: Job, flags: Flags) -> dict[str, Any]:
        rl = job.method.family == "rl"
        prefix = "actor." if rl else ""
        t = job.training
        lora = job.adapter.type != "full"
        cpu = job.distributed.device == "cpu"
        if flags.has("--ds.adam_offload"):
            optimizer = "adamw (DeepSpeedCPUAdam, optimizer offloaded)"
        else:
            optimizer = "adamw (DeepSpeed's CPU FusedAdam)" if cpu else "adamw (DeepSpeed FusedAdam)"
        if job.method.family == "sft":
            normalization = LOSS_NORMALIZATION["tokens"]
        elif rl:
            normalization = f"per policy loss ({flags.get('--actor.loss_agg_mode') or 'token-mean'})"
        else:
            normalization = "pairs per micro-batch (DPO loss mean; DeepSpeed averages the accumulation)"
        return Effective.from_job(
            job,
            micro_batch=t.micro_batch_size,
            gradient_accumulation=job.gradient_accumulation_steps,
            learning_rate=float(flags.get(f"--{prefix}adam.lr") or t.learning_rate or 0.0),
            lr_scheduler=str(flags.get(f"--{prefix}lr_scheduler")),
            # OpenRLHF warms up for ceil(steps x --lr_warmup_ratio) (openrlhf/utils/deepspeed/deepspeed.py:381): the
            # job's whole steps when the run length is known, as ptsdk gives the other backends.
            warmup=job.warmup_steps if job.warmup_steps is not None else t.warmup_ratio,
            max_length=int(flags.get("--data.max_len") or job.data.max_length),
            truncation="drop long prompts, truncate the rest"
            if not rl
            else "prompts kept whole, sequences cut at max_len",
            packing=False,  # OpenRLHF packs nothing into blocks (--ds.packing_samples is padding-free)
            loss_mask="all" if flags.has("--model.pretrain_mode_enable") else "completion",
            data_order=(owned_order(job) if t.shuffle else "file order")
            if lays_out_epochs(job)
            else data_order(self.name, job, True),
            optimizer=optimizer,
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            adapter_init="seeded random" if lora else None,
            loss_normalization=normalization,
            precision=f"{t.precision} weights, fp32 master copy (DeepSpeed {t.precision} optimizer)",
            load_dtype={"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[t.precision],
            attn_implementation=str(flags.get("--ds.attn_implementation") or "flash_attention_2"),
            sources={
                "load_dtype": "OpenRLHF loads the weights in --ds.param_dtype (the training precision), whatever "
                "model.dtype says (openrlhf/models/actor.py: torch_dtype from param_dtype)",
                "attn_implementation": "--ds.attn_implementation (OpenRLHF's own default: flash_attention_2)",
                "precision": f"OpenRLHF loads the model in {t.precision} (--ds.param_dtype); DeepSpeed keeps fp32 "
                "master weights and steps them",
                "optimizer": "DeepSpeed builds AdamW from OpenRLHF's optimizer config"
                + (" (on its CPU accelerator: a C++ FusedAdam, JIT-built)" if cpu else ""),
                "loss_normalization": "OpenRLHF's SFT loss divides by the loss tokens of the whole optimizer step; "
                "its DPO loss is a mean over pairs",
                "zero_stage": "OpenRLHF always trains through a DeepSpeed engine (stage 0: nothing sharded)",
                "module": "the OpenRLHF CLI module that trains",
                "padding_free": "--ds.packing_samples: each micro-batch unpadded into one row (flash-attn varlen)",
                # What ptsdk measures for frameworks it runs through its own runner or plugin.
                "tokenized_data_sha": "not measured: OpenRLHF tokenizes inside its own CLI (no ptsdk fingerprint)",
                "tokenized_rows": "not measured: OpenRLHF tokenizes inside its own CLI (no ptsdk fingerprint)",
                "global_batch_tokens": "not measured: OpenRLHF logs no token counts",
                "data_order": f"{OWNED_ORDER_SOURCE} ({PREPARE} writes every epoch for OpenRLHF's one-pass sampler)"
                if lays_out_epochs(job) and t.shuffle
                else (
                    f"training.shuffle: false: {PREPARE} writes every epoch in the file's order for OpenRLHF's "
                    "one-pass sampler (DistributedSampler, seed --train.seed)"
                    if lays_out_epochs(job)
                    else "OpenRLHF always shuffles with its DistributedSampler (seed --train.seed)"
                ),
                "epoch_end_step": EPOCH_END_SOURCE,
                "truncation": "SFT drops records whose prompt fills max_length; the rest is truncated",
                "adapter_init": "peft's initialization after transformers.set_seed(--train.seed)",
            },
            extra={
                **({"epoch_end_step": EPOCH_END} if lays_out_epochs(job) else {}),
                "zero_stage": flags.get("--ds.zero_stage"),
                "module": MODULES[job.method.family],
                "padding_free": flags.has("--ds.packing_samples"),
            },
        ).to_dict()

    def import_native(self, source: Path) -> ImportResult:
        """An OpenRLHF launch script (python -m openrlhf.cli.* --flags) as a job (importer.py)."""
        from ptsdk.backends.openrlhf.importer import import_openrlhf

        return import_openrlhf(source, dict(self.passthrough_owned))

    # --- native check, resume, results ------------------------------------------------

    def check_request(self, plan: Plan, workdir: Path) -> dict[str, Any]:
        request = super().check_request(plan, workdir)
        request["module"] = plan.entrypoint[-1]
        request["prepare"] = DATA_SPEC
        return request

    def resume(self, plan: Plan, run_dir: Path) -> Plan:
        """OpenRLHF continues from its own DeepSpeed checkpoint under checkpoints/ (--ckpt.load_enable);
        without one it would silently start over, so that is refused."""
        folder = run_dir / "checkpoints"
        # DeepSpeed writes `latest` (the tag) after each checkpoint: at --ckpt.path for SFT/DPO, under _actor for RL.
        if not any(folder.glob("latest")) and not any(folder.glob("*/latest")):
            raise no_checkpoint_error(self.name, plan.job, run_dir)
        if plan.args and "--ckpt.load_enable" not in plan.args:
            return replace(plan, args=[*plan.args, "--ckpt.load_enable"])
        return plan

    def parse_metrics(self, run_dir: Path) -> Iterator[MetricRecord]:
        from ptsdk.backends.openrlhf.metrics import tensorboard_records

        return tensorboard_records(run_dir / TENSORBOARD)

    def artifacts_problems(self, run_dir: Path) -> list[str]:
        model = run_dir / MODEL
        if (model / "adapter_model.safetensors").exists():
            return []
        return model_dir_problems(run_dir)


# --- flags -------------------------------------------------------------------------------


class Flags:
    """OpenRLHF's flags in the order they were set; a flag set twice keeps its first position."""

    def __init__(self) -> None:
        self._items: dict[str, list[str] | None] = {}

    def set(self, flag: str, *values: Any) -> None:
        self._items[flag] = [_text(v) for v in values]

    def on(self, flag: str, enabled: bool = True) -> None:
        """A store_true flag: present or absent."""
        if enabled:
            self._items[flag] = None
        else:
            self._items.pop(flag, None)

    def has(self, flag: str) -> bool:
        return flag in self._items

    def get(self, flag: str) -> str | None:
        values = self._items.get(flag)
        return values[0] if values else None

    def argv(self) -> list[str]:
        out: list[str] = []
        for flag, values in self._items.items():
            out.append(flag)
            out += values or []
        return out


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- refusals ----------------------------------------------------------------------------


def _static_problems(job: Job) -> list[str]:
    """`field: reason and fix` for what OpenRLHF 0.11.2 cannot express."""
    t, d, m = job.training, job.distributed, job.method
    out: list[str] = []
    if isinstance(m, _OnlineRL) and m.max_prompt_length is None:
        out.append(
            "method.max_prompt_length: OpenRLHF budgets every sequence as prompt plus response (--data.max_len); "
            "give the prompt a limit (e.g. 512)"
        )
    if d.device == "cpu":
        out += _cpu_problems(job)
    out += _setting_problems(job)
    if t.precision == "fp32":
        out.append("training.precision: OpenRLHF trains in bf16 or fp16 (--ds.param_dtype); set bf16")
    if t.optimizer != "adamw":
        out.append(f"training.optimizer: {_optimizer_refusal(t.optimizer)}")
    if t.epochs is not None and t.epochs != int(t.epochs):
        out.append(
            f"training.epochs: OpenRLHF counts whole passes over the data, not {t.epochs}; "
            "use a whole number or training.max_steps"
        )
    if job.model.quantization == "8bit":
        out.append("model.quantization: OpenRLHF loads 4-bit bases only (--ds.load_in_4bit); use 4bit or none")
    if getattr(job.adapter, "init_path", None):
        out.append("adapter.init_path: OpenRLHF 0.11.2 cannot start LoRA from a saved adapter; remove init_path")
    if d.offload == "optimizer_and_params":
        out.append("distributed.offload: OpenRLHF offloads the optimizer only (--ds.adam_offload); use optimizer")
    if job.model.trust_remote_code:
        out.append("model.trust_remote_code: OpenRLHF always loads with trust_remote_code; this job forbids it")
    if m.family == "sft" and job.data.format == "messages" and getattr(m, "loss_on", "") == "all":
        out.append("method.loss_on: OpenRLHF trains chat records on the assistant turns only; set loss_on: completion")
    out += _image_problems(job)
    if isinstance(m, _OnlineRL):
        if m.rewards and m.reward_model:
            out.append(
                "method.reward_model: OpenRLHF 0.11.2 scores with reward functions or a reward model, not both; "
                "keep one"
            )
        if job.model.chat_template:
            out.append(
                "model.chat_template: train_ppo_ray has no template flag; save the template with the tokenizer "
                "(chat_template.jinja) and remove model.chat_template"
            )
        if job.rollout is not None and job.rollout.engine != "vllm":
            out.append(f"rollout.engine: OpenRLHF generates with vLLM only, not {job.rollout.engine}; use vllm")
        if job.rollout is not None:
            out += _rollout_problems(job)
    return out


def _image_problems(job: Job) -> list[str]:
    """What OpenRLHF 0.11.2 refuses with images (train_ppo_ray.py:661-671), beyond the methods it has none for."""
    if job.data.images is None or job.method.family != "rl":
        return []
    t, out = job.training, []
    if t.padding_free:
        out.append(
            "training.padding_free: OpenRLHF 0.11.2 refuses --ds.packing_samples with images (packing breaks the "
            "alignment of image tokens and pixel values: openrlhf/cli/train_ppo_ray.py:667-671); "
            "set padding_free: false"
        )
    if t.max_tokens_per_micro_batch is not None:
        out.append(
            "training.max_tokens_per_micro_batch: OpenRLHF's token batches (--train.dynamic_batch_enable) are "
            "padding-free (--ds.packing_samples), which it refuses with images "
            "(openrlhf/cli/train_ppo_ray.py:667-671); remove it"
        )
    return out


def _setting_problems(job: Job) -> list[str]:
    """The spec's optional settings OpenRLHF 0.11.2 has no flag for (checked against its parsers)."""
    t, m, o = job.training, job.method, job.output
    out: list[str] = []
    if t.packing:
        out.append(
            "training.packing: OpenRLHF 0.11.2 does not pack sequences into blocks; its --ds.packing_samples only "
            "removes the padding of each micro-batch: set training.padding_free: true instead"
        )
    if t.max_tokens_per_micro_batch is not None and not isinstance(m, _OnlineRL):
        out.append(
            "training.max_tokens_per_micro_batch: OpenRLHF 0.11.2 batches by tokens (--train.dynamic_batch_enable) "
            "in train_ppo_ray only, not in train_sft / train_dpo; remove it (or use --backend trl)"
        )
    if job.model.pad_token or job.model.eos_token:
        field = "model.pad_token" if job.model.pad_token else "model.eos_token"
        out.append(
            f"{field}: OpenRLHF 0.11.2 has no flag for the tokenizer's pad/eos token (it pads with eos when the "
            "tokenizer has no pad token); save the tokenizer with the tokens you want and remove it"
        )
    for per_epoch, steps, flag in (
        ("saves_per_epoch", "save_steps", "--ckpt.save_steps"),
        ("evals_per_epoch", "eval_steps", "--eval.steps"),
    ):
        if getattr(o, per_epoch) is not None:
            out.append(
                f"output.{per_epoch}: OpenRLHF 0.11.2 counts its cadence in optimizer steps only ({flag}); "
                f"set output.{steps} instead"
            )
    if job.rollout is not None and job.rollout.server:
        out.append(
            "rollout.server: OpenRLHF 0.11.2 generates with the vLLM engines it starts as Ray actors (--vllm.*) and "
            "cannot send prompts to a separate server; remove rollout.server"
        )
    if _mapped(job) and job.data.format == "instruction":
        out.append(
            "data.message_keys: Alpaca instruction records hold no message lists to map; remove data.message_keys "
            "and data.role_names"
        )
    elif _mapped(job) and m.family == "sft" and getattr(m, "loss_on", "") == "all" and job.data.format != "messages":
        out.append(
            "data.message_keys: loss_on all trains prompt + completion as one plain text (OpenRLHF's pretrain mode), "
            "not message lists; remove data.message_keys and data.role_names, or use data.format: messages"
        )
    if isinstance(m, _OnlineRL) and job.data.truncation == "drop":
        out.append(
            "data.truncation: OpenRLHF 0.11.2 keeps every prompt (only the whole sequence is cut at --data.max_len); "
            "it cannot drop long prompts: set truncation: truncate, or filter the data beforehand"
        )
    return out


def _cpu_problems(job: Job) -> list[str]:
    """What OpenRLHF's CPU smoke mode (cpu_smoke.py) cannot do."""
    d, m = job.distributed, job.method
    out: list[str] = []
    if m.name not in CPU_METHODS:
        out.append(
            f"distributed.device: OpenRLHF's CPU smoke mode runs {' and '.join(CPU_METHODS)} only, not {m.name} "
            "(OpenRLHF 0.11.2 needs GPUs otherwise); use device: gpu"
        )
    if d.world_size > 1:
        out.append(
            f"distributed.gpus_per_node: OpenRLHF's CPU smoke mode runs one process, not {d.world_size}; "
            "set nodes: 1 and gpus_per_node: 1"
        )
    if job.training.padding_free:
        out.append(
            "training.padding_free: OpenRLHF runs unpadded batches with flash-attn's varlen kernels (GPU only); "
            "set false"
        )
    if (job.model.attn_implementation or "").startswith(("flash", "kernels-")):
        out.append(
            f"model.attn_implementation: {job.model.attn_implementation} needs a GPU; "
            "use sdpa or eager with device: cpu"
        )
    return out


def _rollout_problems(job: Job) -> list[str]:
    r, d = job.rollout, job.distributed
    assert r is not None
    engines = _num_engines(job)
    if r.colocate and engines * r.tensor_parallel_size != d.world_size:
        return [
            f"rollout.num_engines: colocated engines must cover the training GPUs exactly "
            f"({engines} x tensor_parallel_size {r.tensor_parallel_size} != {d.world_size}); "
            f"set num_engines to {d.world_size // r.tensor_parallel_size} or colocate: false"
        ]
    return []


def _num_engines(job: Job) -> int:
    r = job.rollout
    tp = r.tensor_parallel_size if r else 1
    if r is not None and r.num_engines is not None:
        return r.num_engines
    return max(1, job.distributed.world_size // tp)


# --- data ---------------------------------------------------------------------------------


def _chat(job: Job) -> bool:
    """Whether OpenRLHF applies the chat template: chat records, a job that names a template, or records that
    are conversations by the job's own word (a message mapping, a prompt inside chosen/rejected)."""
    d = job.data
    return (
        d.format == "messages"
        or job.model.chat_template is not None
        or d.prompt_in_answers
        or _mapped(job)
        or d.images is not None  # image prompts are message lists (preflight); the processor's template renders them
    )


def _mapped(job: Job) -> bool:
    return bool(job.data.message_keys or job.data.role_names)


def _records_for(job: Job, steps: int) -> tuple[int, int]:
    """(records, optimizer steps they make) for at least `steps` steps: sequences (SFT), pairs (DPO), or whole
    rollouts of prompts (RL: a rollout makes rollout x generations / global batch steps per PPO epoch)."""
    m, g = job.method, job.training.global_batch_size
    if not isinstance(m, _OnlineRL):
        return steps * g, steps
    prompts = _rollout_prompts(job)
    per_rollout = prompts * m.num_generations // g * m.epochs_per_rollout
    rollouts = -(-steps // per_rollout)
    return rollouts * prompts, rollouts * per_rollout


def lays_out_epochs(job: Job) -> bool:
    """Whether prepare_openrlhf.py lays out every epoch of an SFT or DPO/IPO run for OpenRLHF's sampler, so that it
    reads ptsdk's order of each epoch (kit.owns_order) or the file's order in every epoch (training.shuffle: false)
    in one pass (--train.max_epochs 1). Online RL samples prompts into rollouts of its own."""
    t = job.training
    return job.method.family in ("sft", "preference") and not t.packing and (owns_order(job) or not t.shuffle)


def _order_spec(job: Job) -> dict[str, Any]:
    """What prepare_openrlhf.lay_out needs: ptsdk's seed (None: the file's order), the run's length, the global batch,
    and the seed and data-parallel size of OpenRLHF's DistributedSampler."""
    t = job.training
    return {
        "seed": t.seed if t.shuffle else None,
        "epochs": None if t.max_steps is not None else int(t.epochs or 1),
        "max_steps": t.max_steps,
        "global_batch": t.global_batch_size,
        "sampler_seed": t.seed,  # --train.seed
        "world_size": job.distributed.data_parallel_size,
    }


def _data(job: Job, flags: Flags, notes: list[Note]) -> dict[str, Any]:
    """The data flags, and the spec prepare_openrlhf.py converts the data with."""
    data, m = job.data, job.method
    chat = _chat(job)
    spec: dict[str, Any] = {
        "family": m.family,
        "format": data.format,
        "columns": data.columns,
        "chat": chat,
        "train": _source(data.train),
        "train_out": TRAIN_DATA,
        "repeat_to": None,
        # SFT on every token: prompt + completion as one text column (OpenRLHF's pretrain mode).
        "sft_text": m.family == "sft" and data.format != "messages" and getattr(m, "loss_on", "") == "all",
        # Online RL with reward functions: scored once on a sample record after conversion.
        "reward_file": REWARD if m.family == "rl" and getattr(m, "rewards", None) else None,
    }
    if data.eval is not None:
        spec["eval"] = _source(data.eval)
        spec["eval_out"] = EVAL_DATA
    if data.eval_split is not None:
        # Held out of the records read (after max_samples), before max_steps repeats them.
        spec["eval_split"] = {"fraction": data.eval_split, "seed": job.training.seed}
        spec["eval_out"] = EVAL_DATA
        notes.append(
            Note(
                "data.eval_split",
                "set",
                f"{data.eval_split:g} of the training records held out by {PREPARE} into {EVAL_DATA} (the same "
                f"indices as datasets' train_test_split(test_size={data.eval_split:g}, seed={job.training.seed})), "
                "read by --eval.dataset",
            )
        )
    _conversations(job, spec, notes)
    if data.images is not None and m.family == "rl":
        _images(job, spec, flags, notes)
    if data.format == "instruction":
        spec["alpaca"] = True  # prepare_openrlhf renders ptsdk_runtime.alpaca_prompt
        notes.append(
            Note(
                "data.format",
                "set",
                f"instruction: {PREPARE} renders each record's prompt with the Alpaca template (with or without "
                "its input); the output is the completion the loss covers",
            )
        )
    for which, source in (("train", data.train), ("eval", data.eval)):
        if source is not None and source.subset:
            notes.append(Note(f"data.{which}.subset", "set", f"{source.subset}: read by {PREPARE}"))
    if lays_out_epochs(job):
        t = job.training
        spec["order"] = _order_spec(job)
        whose = f"ptsdk's order (seed {t.seed}, a new one each epoch)" if t.shuffle else "the file's order"
        length = f"{t.max_steps} optimizer steps of" if t.max_steps is not None else f"{int(t.epochs or 1)} epochs of"
        notes.append(
            Note(
                "training.shuffle",
                "set",
                f"{whose}: OpenRLHF's sampler always shuffles (DistributedSampler, seed --train.seed), so {PREPARE} "
                f"writes {length} the records, epoch after epoch, placed where that sampler's one pass "
                "(--train.max_epochs 1) reads them in that order (OpenRLHF tokenizes each copy: a record is "
                "tokenized once per epoch)"
                + ("; each epoch's order in logs/data_order.jsonl" if t.shuffle else "")
                + f". {EPOCH_END_SOURCE}",
            )
        )
    elif job.training.max_steps is not None:
        # OpenRLHF has no step limit: it trains whole passes. The prepared file holds exactly
        # max_steps x (records per step) records, the source repeated in order and cut there,
        # trained for one pass, so the run makes exactly max_steps optimizer steps.
        records, steps = _records_for(job, job.training.max_steps)
        spec["repeat_to"] = records
        notes.append(
            Note(
                "training.max_steps",
                "derived" if steps == job.training.max_steps else "approximated",
                f"OpenRLHF has no step limit: {TRAIN_DATA} holds {records} records (the data repeated in order) for "
                f"{steps} optimizer steps, trained for one pass"
                + ("" if steps == job.training.max_steps else " (whole rollouts: rounded up)"),
            )
        )
    flags.set("--data.max_samples", NO_CAP)
    if data.train.max_samples:
        notes.append(Note("data.train.max_samples", "derived", f"applied when {TRAIN_DATA} is written"))
    train_flag = "--data.prompt_dataset" if m.family == "rl" else "--data.dataset"
    flags.set(train_flag, TRAIN_DATA)
    if data.eval is not None or data.eval_split is not None:
        flags.set("--eval.dataset", EVAL_DATA)
        flags.set("--eval.split", "train")  # a .jsonl file is one "train" split (DPO's default is "test")
    if chat:
        flags.on("--data.apply_chat_template")
        if job.model.chat_template and m.family != "rl":
            flags.set("--data.tokenizer_chat_template", _template_text(job.model.chat_template))
        own = job.model.chat_template is None and data.format != "messages"  # conversations by a data.* setting
        notes.append(
            Note(
                "model.chat_template",
                "derived" if own else "set",
                "--data.apply_chat_template: records are message lists (strings are wrapped as user/assistant turns)"
                + ("; the tokenizer's own template (the data are conversations)" if own else ""),
            )
        )
    if m.family == "sft":
        _sft_keys(job, flags, notes)
    elif m.family == "preference":
        flags.set("--data.prompt_key", "prompt")
        flags.set("--data.chosen_key", "chosen")
        flags.set("--data.rejected_key", "rejected")
    else:
        flags.set("--data.input_key", "prompt")
        flags.set("--data.label_key", LABEL_KEY)
    if isinstance(m, _OnlineRL):
        # --data.max_len is prompt plus response: exactly the spec's two budgets, so OpenRLHF's
        # prompt budget (max_len - max_new_tokens) is max_prompt_length.
        assert m.max_prompt_length is not None  # refused by _static_problems
        total = m.max_prompt_length + m.max_completion_length
        flags.set("--data.max_len", total)
        notes.append(
            Note(
                "data.max_length",
                "derived",
                f"--data.max_len {total} = max_prompt_length {m.max_prompt_length} + max_completion_length "
                f"{m.max_completion_length} (prompt plus response; OpenRLHF cuts no prompt: a longer one leaves "
                "less room for the response, the sequence being cut at max_len)",
            )
        )
    else:
        flags.set("--data.max_len", data.max_length)
    if data.truncation == "drop":
        notes.append(
            Note(
                "data.truncation",
                "approximated",
                "OpenRLHF truncates long sequences; it drops only those whose prompt fills max_len",
            )
        )
    return spec


def _images(job: Job, spec: dict[str, Any], flags: Flags, notes: list[Note]) -> None:
    """Images in RL prompts: the preparation step writes each record's image files (absolute) to IMAGE_KEY and its
    prompt as message parts; train_ppo_ray reads them with --data.image_key and turns its VLM path on with
    --data.max_images_per_prompt (vLLM's limit_mm_per_prompt: openrlhf/trainer/ray/vllm_engine.py:290-291)."""
    images = job.data.images
    assert images is not None
    spec["images"] = {"column": images.column, "root": images.root, "key": IMAGE_KEY}
    flags.set("--data.image_key", IMAGE_KEY)
    flags.set("--data.max_images_per_prompt", images.max_per_record)
    where = f"under {images.root}" if images.root else "relative to the data file's folder"
    notes.append(
        Note(
            "data.images",
            "set",
            f"{PREPARE} writes each record's image files ({images.column}, {where}) as absolute paths to "
            f"'{IMAGE_KEY}' (--data.image_key {IMAGE_KEY}) and every prompt turn as parts, one {{type: image}} per "
            "image (before the first user turn's text for string contents); OpenRLHF loads the model's AutoProcessor "
            "as its tokenizer (a config with vision_config: openrlhf/utils/utils.py:40-66), renders the prompt with "
            "its chat template and tokenizes it with the images (openrlhf/utils/vlm_utils.py:68-117)",
        )
    )
    notes.append(
        Note(
            "data.images.max_per_record",
            "set",
            f"--data.max_images_per_prompt {images.max_per_record}: vLLM's limit_mm_per_prompt, and OpenRLHF's "
            "vision-language path on (no critic, no --ds.packing_samples: train_ppo_ray.py:661-671)",
        )
    )
    notes.append(
        Note(
            "method.max_prompt_length",
            "set",
            "with images OpenRLHF cuts no prompt: one longer than --data.max_len - --rollout.max_new_tokens tokens "
            "(image tokens included) stops the run (openrlhf/utils/agent.py:227-233); the native check measures "
            "every prompt with the processor",
        )
    )


def _conversations(job: Job, spec: dict[str, Any], notes: list[Note]) -> None:
    """Message key and role mappings, and a prompt inside chosen/rejected: applied by the preparation step, which
    writes OpenRLHF's {role, content} lists (OpenRLHF reads no other keys) and a prompt column."""
    d = job.data
    if d.message_keys:
        spec["message_keys"] = dict(d.message_keys)
        shown = ", ".join(f"{k}: {v}" for k, v in d.message_keys.items())
        notes.append(
            Note(
                "data.message_keys",
                "set",
                f"{{{shown}}}: {PREPARE} writes each message as {{role, content}}, the keys OpenRLHF's datasets read",
            )
        )
        if "thinking" in d.message_keys:
            notes.append(
                Note(
                    "data.message_keys.thinking",
                    "set",
                    f"{d.message_keys['thinking']} -> reasoning_content: OpenRLHF passes whole messages to the chat "
                    "template (tokenizer.apply_chat_template), which renders it where the template reads "
                    "reasoning_content; the JSONL loader gives turns without one reasoning_content null",
                )
            )
    if d.role_names:
        notes.append(
            Note(
                "data.role_names",
                "set",
                ", ".join(f"{k} -> {v}" for k, v in d.role_names.items()) + f": renamed by {PREPARE}",
            )
        )
        spec["role_names"] = dict(d.role_names)
    if d.prompt_in_answers:
        spec["prompt_in_answers"] = True
        notes.append(
            Note(
                "data.prompt_in_answers",
                "set",
                f"{PREPARE} writes the turns chosen and rejected share (up to the last) as the prompt column "
                "(--data.prompt_key prompt) and the rest as each answer. OpenRLHF's own implicit prompt (no "
                "--data.prompt_key: chosen's turns before its last) is the same only when the two differ in their "
                "last turn alone",
            )
        )


def _source(source: DataSource) -> dict[str, Any]:
    return {"path": source.path, "split": source.split, "subset": source.subset, "max_samples": source.max_samples}


def _sft_keys(job: Job, flags: Flags, notes: list[Note]) -> None:
    m = job.method
    if job.data.format == "messages":
        flags.set("--data.input_key", "messages")
        # multiturn: the loss covers every assistant turn, not only the last one.
        flags.on("--data.multiturn")
        return
    if getattr(m, "loss_on", "completion") == "all":
        # Pretrain mode trains on every token of one text column (it would drop output_key).
        flags.set("--data.input_key", "text")
        flags.on("--model.pretrain_mode_enable")
        notes.append(
            Note(
                "method.loss_on",
                "derived",
                "prompt + completion written as one 'text' column, trained in pretrain mode",
            )
        )
        return
    flags.set("--data.input_key", "prompt")
    flags.set("--data.output_key", "completion")
    if not _chat(job):
        # "{}": the prompt as written (OpenRLHF's default wraps it in "User: {}\nAssistant: ").
        flags.set("--data.input_template", "{}")


def _template_text(template: str) -> str:
    """The chat template itself: OpenRLHF's flag takes the Jinja text, not a path."""
    if template.endswith(".jinja") and Path(template).is_file():
        return Path(template).read_text()
    return template


# --- SFT / DPO ------------------------------------------------------------------------------


def _deepspeed_trainer(job: Job, flags: Flags, notes: list[Note]) -> None:
    m, t = job.method, job.training
    flags.set("--model.model_name_or_path", job.model.name_or_path)
    if isinstance(m, (DPO, IPO)):
        flags.set("--ref.model_name_or_path", job.model.name_or_path)
        flags.set("--model.beta", m.beta)
        if isinstance(m, IPO):
            flags.on("--model.ipo_enable")
        elif m.label_smoothing:
            flags.set("--model.label_smoothing", m.label_smoothing)
    flags.set("--train.micro_batch_size", t.micro_batch_size)
    flags.set("--train.batch_size", t.global_batch_size)
    notes.append(
        Note(
            "training.global_batch_size",
            "derived",
            f"--train.batch_size {t.global_batch_size} {'pairs' if m.family == 'preference' else 'sequences'} per "
            f"optimizer step; OpenRLHF derives accumulation {job.gradient_accumulation_steps} = batch / "
            f"(micro {t.micro_batch_size} x data-parallel {job.distributed.data_parallel_size})",
        )
    )
    # One pass over every laid-out epoch (lays_out_epochs), or over the data repeated to max_steps.
    flags.set("--train.max_epochs", 1 if t.max_steps is not None or lays_out_epochs(job) else int(t.epochs or 1))
    flags.on("--model.gradient_checkpointing_enable", t.gradient_checkpointing)
    _optimizer(job, flags, notes, prefix="")
    _deepspeed(job, flags, notes)


def _optimizer_refusal(name: str) -> str:
    """Why OpenRLHF 0.11.2 cannot run training.optimizer `name`: its only choices are --optim adam or muon
    (openrlhf/cli/train_sft.py:223), and adam is DeepSpeed's AdamW ("type": "AdamW",
    openrlhf/utils/deepspeed/deepspeed.py:359), for which DeepSpeed picks its own kernel: FusedAdam on GPUs,
    DeepSpeedCPUAdam with the optimizer offloaded (openrlhf/utils/deepspeed/deepspeed_utils.py:71)."""
    if name == "adamw_fused":
        return (
            "OpenRLHF 0.11.2 has one AdamW, DeepSpeed's, which already runs its fused kernel (FusedAdam) on GPUs "
            "and cannot be switched; set optimizer: adamw"
        )
    if name in ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"):
        return (
            f"OpenRLHF 0.11.2 offers DeepSpeed's AdamW and Muon (--optim adam|muon), no bitsandbytes optimizer like "
            f"{name}; set optimizer: adamw, or use --backend trl / axolotl"
        )
    return (
        f"OpenRLHF 0.11.2 offers DeepSpeed's AdamW and Muon (--optim adam|muon), not {name}; "
        "set optimizer: adamw, or use --backend trl / axolotl"
    )


def _optimizer(
    job: Job, flags: Flags, notes: list[Note], prefix: str, learning_rate: float | None = None, *, note: bool = True
) -> None:
    """The AdamW and schedule flags of one model (prefix "" for SFT/DPO, "actor." / "critic." for RL)."""
    t = job.training
    flags.set(f"--{prefix}adam.lr", t.learning_rate if learning_rate is None else learning_rate)
    flags.set(f"--{prefix}adam.betas", t.adam_beta1, t.adam_beta2)
    if t.adam_epsilon != 1e-8:  # OpenRLHF's default is the spec's
        flags.set(f"--{prefix}adam.eps", t.adam_epsilon)
    flags.set(f"--{prefix}adam.weight_decay", t.weight_decay)
    if t.min_lr_ratio > 0:
        # The cosine with a floor: transformers' cosine_with_min_lr, min_lr_rate = the ratio
        # (openrlhf/utils/deepspeed/deepspeed.py passes --min_lr_ratio as min_lr_rate).
        flags.set(f"--{prefix}lr_scheduler", "cosine_with_min_lr")
        flags.set(f"--{prefix}min_lr_ratio", t.min_lr_ratio)
    else:
        # transformers' scheduler names; OpenRLHF's default is cosine_with_min_lr (floor 10% of the peak).
        flags.set(f"--{prefix}lr_scheduler", t.lr_scheduler)
    flags.set(f"--{prefix}lr_warmup_ratio", t.warmup_ratio)
    flags.set(f"--{prefix}max_norm", t.max_grad_norm)
    if not note:
        return
    betas = f"{t.adam_beta1:g} {t.adam_beta2:g}"
    notes.append(
        Note(
            "training.optimizer",
            "set",
            f"AdamW with betas {betas}, eps {t.adam_epsilon:g} (OpenRLHF's default betas are "
            f"{' '.join(map(str, OPENRLHF_BETAS))})",
        )
    )
    if t.min_lr_ratio > 0:
        notes.append(
            Note(
                "training.min_lr_ratio",
                "set",
                f"--{prefix}lr_scheduler cosine_with_min_lr --{prefix}min_lr_ratio {t.min_lr_ratio:g}",
            )
        )
    notes.append(
        Note(
            "training.warmup_ratio",
            "derived",
            "OpenRLHF warms up for ceil(total steps x ratio) steps",
        )
    )


def _deepspeed(job: Job, flags: Flags, notes: list[Note]) -> None:
    d, t, a = job.distributed, job.training, job.adapter
    stage = d.zero_stage if d.strategy == "deepspeed" else 0
    if d.strategy != "deepspeed":
        notes.append(
            Note(
                "distributed.strategy",
                "derived",
                f"{d.effective_strategy}: OpenRLHF always runs DeepSpeed; ZeRO stage 0 is plain data parallelism",
            )
        )
    flags.set("--ds.zero_stage", stage)
    flags.set("--ds.param_dtype", t.precision)
    flags.on("--ds.adam_offload", d.offload == "optimizer")
    if job.model.attn_implementation:
        flags.set("--ds.attn_implementation", job.model.attn_implementation)
    elif d.device == "cpu":
        flags.set("--ds.attn_implementation", "sdpa")
        notes.append(
            Note("model.attn_implementation", "defaulted", "sdpa (OpenRLHF's default flash_attention_2 needs a GPU)")
        )
    else:
        notes.append(
            Note("model.attn_implementation", "defaulted", "OpenRLHF's default flash_attention_2 (needs flash-attn)")
        )
    if job.model.dtype not in ("auto", {"bf16": "bfloat16", "fp16": "float16"}[t.precision]):
        notes.append(Note("model.dtype", "approximated", f"OpenRLHF loads weights in --ds.param_dtype {t.precision}"))
    # --ds.packing_samples unpads each micro-batch into one row (positions restart per sequence, flash-attn's
    # varlen kernel keeps sequences apart): ptsdk's padding_free, not packing into blocks.
    flags.on("--ds.packing_samples", t.padding_free or flags.has("--train.dynamic_batch_enable"))
    if a.type != "full":
        flags.set("--ds.lora.rank", a.r)
        flags.set("--ds.lora.alpha", a.alpha)
        flags.set("--ds.lora.dropout", a.dropout)
        targets = a.target_modules
        if isinstance(targets, list):
            flags.set("--ds.lora.target_modules", *targets)
        else:
            # OpenRLHF's default is the string "all-linear"; the flag (nargs="*") would make it the
            # list ["all-linear"], which peft looks for as a module name and fails.
            notes.append(Note("adapter.target_modules", "defaulted", "all-linear: OpenRLHF's default (flag left out)"))
    flags.on("--ds.load_in_4bit", job.model.quantization == "4bit")
    flags.set("--train.seed", t.seed)
    if not t.shuffle and not lays_out_epochs(job):
        notes.append(
            Note(
                "training.shuffle",
                "approximated",
                "OpenRLHF always shuffles (seeded by --train.seed); shuffle the file beforehand for a fixed order",
            )
        )


# --- online RL --------------------------------------------------------------------------------

#: ptsdk method (and GRPO loss) -> OpenRLHF advantage estimator.
ESTIMATORS: dict[str | tuple[str, str], str] = {
    "ppo": "gae",
    "rloo": "rloo",
    ("grpo", "grpo"): "group_norm",
    ("grpo", "dr_grpo"): "dr_grpo",
}


def rl_method(job: Job) -> _OnlineRL:
    """The job's online RL method (the RL translation runs only for those)."""
    assert isinstance(job.method, _OnlineRL), f"{job.method.name} is not online RL"
    return job.method


def estimator_of(job: Job) -> str:
    m = rl_method(job)
    if isinstance(m, GRPO):
        return ESTIMATORS[("grpo", m.loss_type)]
    if job.method.name == "reinforce_pp":
        # REINFORCE++ with several samples per prompt subtracts the group mean first
        # (REINFORCE++-baseline); with one sample the batch is its baseline.
        return "reinforce_baseline" if m.num_generations > 1 else "reinforce"
    return ESTIMATORS[job.method.name]


def _rl(job: Job, flags: Flags, notes: list[Note]) -> None:
    m, t = rl_method(job), job.training
    model = job.model.name_or_path
    estimator = estimator_of(job)
    flags.set("--actor.model_name_or_path", model)
    flags.set("--algo.advantage.estimator", estimator)
    notes.append(Note("method.name", "derived", f"--algo.advantage.estimator {estimator}"))
    if job.method.name == "reinforce_pp":
        notes.append(
            Note(
                "method.num_generations",
                "derived",
                f"{m.num_generations} per prompt: "
                + ("REINFORCE++-baseline (group mean subtracted)" if m.num_generations > 1 else "plain REINFORCE++"),
            )
        )
    if isinstance(m, GRPO):
        # GRPO averages tokens per sequence first.
        flags.set("--actor.loss_agg_mode", "seq-mean-token-mean" if m.loss_type == "grpo" else "token-mean")
        if m.loss_type == "dr_grpo":
            notes.append(
                Note(
                    "method.loss_type",
                    "approximated",
                    "dr_grpo: no std normalization, token-mean loss "
                    "(Dr. GRPO's constant length normalizer is not offered)",
                )
            )
    if m.kl_coef > 0:
        _kl(m, flags, notes)
    flags.set("--algo.kl.init_coef", m.kl_coef)
    if m.kl_coef == 0:
        notes.append(Note("method.kl_coef", "derived", "0: OpenRLHF starts no reference model"))
    # Units: ptsdk's global batch counts completions per optimizer step, as --train.batch_size does;
    # --rollout.batch_size counts prompts (unset: one generation batch feeds one optimizer step).
    prompts = _rollout_prompts(job)
    flags.set("--rollout.batch_size", prompts)
    flags.set("--rollout.n_samples_per_prompt", m.num_generations)
    flags.set("--train.batch_size", t.global_batch_size)
    flags.set("--train.micro_batch_size", t.micro_batch_size)
    flags.set("--rollout.micro_batch_size", t.micro_batch_size)
    steps = prompts * m.num_generations // t.global_batch_size
    notes.append(
        Note(
            "training.global_batch_size",
            "derived",
            f"--train.batch_size {t.global_batch_size} completions per optimizer step; each rollout of "
            f"--rollout.batch_size {prompts} prompts x --rollout.n_samples_per_prompt {m.num_generations} makes "
            f"{steps} step(s) per pass",
        )
    )
    # --train.max_epochs: passes of the actor (and critic) over each rollout's replay buffer
    # (openrlhf/trainer/ray/ppo_actor.py ppo_train), i.e. PPO epochs.
    flags.set("--train.max_epochs", m.epochs_per_rollout)
    if m.epochs_per_rollout > 1:
        notes.append(
            Note("method.epochs_per_rollout", "set", f"--train.max_epochs {m.epochs_per_rollout} passes per rollout")
        )
    if t.max_tokens_per_micro_batch is not None:
        flags.on("--train.dynamic_batch_enable")
        flags.set("--train.max_tokens_per_gpu", t.max_tokens_per_micro_batch)
        notes.append(
            Note(
                "training.max_tokens_per_micro_batch",
                "set",
                f"--train.dynamic_batch_enable --train.max_tokens_per_gpu {t.max_tokens_per_micro_batch} (the "
                "rollout's log-prob passes use the same budget); OpenRLHF runs token-budget batches padding-free "
                "(--ds.packing_samples, flash-attn)",
            )
        )
    flags.set("--train.num_episodes", 1 if t.max_steps is not None else int(t.epochs or 1))
    flags.set("--rollout.max_new_tokens", m.max_completion_length)
    flags.set("--rollout.temperature", m.temperature)
    flags.set("--actor.eps_clip", m.clip_epsilon)
    flags.on("--actor.gradient_checkpointing_enable", t.gradient_checkpointing)
    _optimizer(job, flags, notes, prefix="actor.")
    if isinstance(m, PPO):
        _critic(job, m, flags, notes)
    _reward(job, flags, notes)
    _topology(job, flags, notes, critic=estimator == "gae")
    _deepspeed(job, flags, notes)


def _kl(m: _OnlineRL, flags: Flags, notes: list[Note]) -> None:
    """KL to the reference: in the loss (--algo.kl.use_loss, the actor's loss, openrlhf/trainer/ray/ppo_actor.py)
    or in each token's reward (experience_maker.py compute_reward), with the estimator of compute_approx_kl."""
    if m.kl_placement == "loss":
        flags.on("--algo.kl.use_loss")
    if m.kl_placement == "loss" or m.kl_estimator != "k1":  # reward with k1 is OpenRLHF's default
        flags.set("--algo.kl.estimator", m.kl_estimator)
    notes.append(
        Note(
            "method.kl_placement",
            "set",
            f"{m.kl_placement} ("
            + ("--algo.kl.use_loss" if m.kl_placement == "loss" else "subtracted from the token rewards")
            + f"), estimator {m.kl_estimator} (--algo.kl.estimator)",
        )
    )


def _rollout_prompts(job: Job) -> int:
    """Prompts per rollout: method.rollout_batch_size, or one optimizer step's worth."""
    m = rl_method(job)
    if m.rollout_batch_size is not None:
        return m.rollout_batch_size
    return job.training.global_batch_size // m.num_generations


def _critic(job: Job, m: PPO, flags: Flags, notes: list[Note]) -> None:
    """PPO's value model: its own learning rate, the actor's optimizer and schedule otherwise; GAE's gamma and
    lambda (OpenRLHF's defaults are 9e-6, betas 0.9 0.95, 1.0 and 1.0)."""
    lr = m.critic_learning_rate if m.critic_learning_rate is not None else job.training.learning_rate
    _optimizer(job, flags, notes, prefix="critic.", learning_rate=lr, note=False)
    flags.set("--algo.advantage.gamma", m.gamma)
    flags.set("--algo.advantage.lambd", m.lam)
    notes.append(
        Note(
            "method.critic_learning_rate",
            "set" if m.critic_learning_rate is not None else "defaulted",
            f"--critic.adam.lr {lr:g}"
            + ("" if m.critic_learning_rate is not None else " (the policy's)")
            + "; the critic's AdamW and schedule are the policy's",
        )
    )


def _reward(job: Job, flags: Flags, notes: list[Note]) -> None:
    m = rl_method(job)
    if m.rewards:
        flags.set("--reward.remote_url", REWARD)
        notes.append(
            Note(
                "method.rewards",
                "set",
                f"{REWARD} serves {', '.join(m.rewards)} through reward_func(queries, prompts, labels); "
                "their sum is the reward",
            )
        )
    elif m.reward_model:
        flags.set("--reward.model_name_or_path", m.reward_model)


def _topology(job: Job, flags: Flags, notes: list[Note], *, critic: bool) -> None:
    """GPUs per role: actor, reference, critic and reward model each get the job's nodes x GPUs."""
    d, m = job.distributed, rl_method(job)
    roles = ["actor", "ref"] + (["critic"] if critic else []) + (["reward"] if m.reward_model else [])
    for role in roles:
        flags.set(f"--{role}.num_nodes", d.nodes)
        flags.set(f"--{role}.num_gpus_per_node", d.gpus_per_node)
    if critic:
        flags.set("--critic.model_name_or_path", job.model.name_or_path)
        notes.append(Note("method.name", "defaulted", "ppo: the critic starts from the policy model"))
    r = job.rollout
    engines, tp = _num_engines(job), (r.tensor_parallel_size if r else 1)
    flags.set("--vllm.num_engines", engines)
    flags.set("--vllm.tensor_parallel_size", tp)
    flags.set("--vllm.gpu_memory_utilization", r.gpu_memory_utilization if r else 0.5)
    if r is None:
        notes.append(
            Note(
                "rollout",
                "defaulted",
                f"OpenRLHF generates with vLLM: {engines} engine(s), tensor parallel 1, colocated",
            )
        )
    if r is None or r.colocate:
        # Engines and every model share the training GPUs, sleeping between phases.
        flags.on("--train.colocate_all")
        flags.on("--vllm.enable_sleep")
        flags.on("--ds.enable_sleep")
    else:
        flags.on("--train.colocate_actor_ref")
        if critic and m.reward_model:
            flags.on("--train.colocate_critic_reward")
        notes.append(
            Note(
                "rollout.colocate",
                "derived",
                f"false: the vLLM engines need {engines * tp} GPUs of their own in the Ray cluster; actor and "
                "reference share theirs",
            )
        )


# --- output, checkpoints, passthrough ------------------------------------------------------------


def _output(job: Job, flags: Flags, notes: list[Note], *, rl: bool) -> None:
    o = job.output
    flags.set("--ckpt.output_dir", MODEL)
    flags.set("--ckpt.path", CHECKPOINTS)
    if o.save_steps:
        flags.set("--ckpt.save_steps", o.save_steps)
        flags.set("--ckpt.max_num", o.save_total_limit or 1)
    flags.set("--logger.logging_steps", o.logging_steps)
    flags.set("--logger.tensorboard_dir", TENSORBOARD)
    if o.eval_steps:
        flags.set("--eval.steps", o.eval_steps)
    if "tensorboard" in o.report_to:
        notes.append(
            Note(
                "output.report_to",
                "set",
                f"tensorboard: OpenRLHF's event files in {TENSORBOARD}/<--logger.wandb.run_name>/ (always written: "
                "ptsdk reads the run's metrics from them)",
            )
        )
    dropped = [r for r in o.report_to if r != "tensorboard"]
    if dropped:  # refused before translation (no tracking_* capability): no OpenRLHF logger that keeps TensorBoard
        notes.append(
            Note(
                "output.report_to",
                "dropped",
                f"{', '.join(dropped)}: ptsdk reads OpenRLHF's TensorBoard logs; set backend_options for wandb",
            )
        )


def _passthrough(job: Job, flags: Flags, notes: list[Note]) -> None:
    """backend_options.openrlhf: flag name (without --) -> value (true: a bare flag; false: left out; a list:
    several values), checked against the flags ptsdk set (ptsdk.plugins.kit.apply_flag_passthrough)."""
    ours = parse_flags(flags.argv())
    merged = dict(ours)
    apply_flag_passthrough(job, "openrlhf", merged, notes, owned=OpenRLHFBackend.passthrough_owned)
    for flag in ours.keys() - merged.keys():
        flags.on(flag, False)
    for flag, values in merged.items():
        if values is None:
            flags.on(flag)
        else:
            flags.set(flag, *values)


# --- launchers ---------------------------------------------------------------------------------------


def _launcher(job: Job, notes: list[Note]) -> Launcher:
    d = job.distributed
    if job.method.family == "rl":
        notes.append(
            Note(
                "distributed.ray_address",
                "set",
                f"ray job submit to {d.ray_address}"
                if d.ray_address
                else f"a local Ray started by the module ({RAY_NOTES})",
            )
        )
        return Launcher("ray", nproc_per_node=d.gpus_per_node, nnodes=d.nodes, address=d.ray_address)
    if d.device == "cpu":
        # CPU smoke mode: one process started by torchrun (DeepSpeed's init_distributed needs its
        # rendezvous environment; the deepspeed launcher counts accelerators).
        notes.append(
            Note(
                "distributed.device",
                "set",
                f"cpu: CPU smoke mode, {CPU_SMOKE} runs {MODULES[job.method.family]} unchanged on DeepSpeed's CPU "
                "accelerator (gloo, ZeRO stage 0) after a flash_attn stand-in and CUDA-only calls redirected",
            )
        )
        return Launcher("torchrun", nproc_per_node=1, nnodes=1)
    launcher = launcher_for(job, "deepspeed")
    if launcher.kind == "python":
        # One GPU still goes through the launcher: without its environment DeepSpeed looks for MPI.
        launcher = Launcher("deepspeed", nproc_per_node=1, nnodes=1)
    if d.nodes > 1:
        launcher.hostfile = HOSTFILE
        notes.append(
            Note(
                "distributed.nodes",
                "set",
                f"DeepSpeed's launcher reaches the other nodes by ssh from {HOSTFILE}: add one "
                f"'HOST slots={d.gpus_per_node}' line per node",
            )
        )
    return launcher


def _hostfile(job: Job) -> str:
    d = job.distributed
    return (
        f"# DeepSpeed hostfile: one line per node, 'HOST slots=GPUS'. The master is listed; add the other "
        f"{d.nodes - 1} node(s).\n{d.master_addr} slots={d.gpus_per_node}\n"
    )


def _ray_notes(job: Job, launcher: Launcher) -> str:
    d = job.distributed
    gpus = d.world_size
    return f"""# Ray for this run

OpenRLHF's `train_ppo_ray` places actor, reference, critic and vLLM engines as Ray actors.

Without `distributed.ray_address`, command.sh runs the module directly and it starts a local Ray
(`ray.init()`), which needs {gpus} GPU(s) on this machine. Workers run in this directory, where
`{REWARD}` and `{TRAIN_DATA}` are read.

With a cluster, every node must see the model, the reward files and the data at the paths the
command line names (`--working-dir=.` uploads this directory only). Start the cluster first,
then set `distributed.ray_address` (ptsdk submits the job with
`ray job submit --address=... --working-dir=.`):

    # on the head node
    ray start --head --port=6379 --dashboard-host=0.0.0.0 --num-gpus={d.gpus_per_node}
    # on each of the other {d.nodes - 1} node(s)
    ray start --address=HEAD:6379 --num-gpus={d.gpus_per_node}
    # then, from this directory
    ray job submit --address=http://HEAD:8265 --working-dir=. -- python3 -m {MODULES["rl"]} ...

The address of `ray job submit` is the dashboard (http://HEAD:8265), not the GCS port.
"""


def _reward_spec(job: Job) -> dict[str, Any]:
    return {"rewards": list(rl_method(job).rewards), "model": job.model.name_or_path}
