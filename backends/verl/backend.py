"""vERL 0.9.1: a ptsdk job as Hydra overrides of vERL's own configs, checked by vERL itself.

- SFT: ``torchrun -m verl.trainer.sft_trainer`` with overrides of ``sft_trainer_engine`` (no config file).
- Online RL (GRPO and its loss variants, PPO with a critic, RLOO, REINFORCE++): ``python -m
  verl.trainer.main_ppo`` with overrides of ``ppo_trainer``; vERL starts Ray itself, or joins the
  cluster at ``distributed.ray_address``.

Units (ptsdk -> vERL), converted exactly or refused:
  ptsdk ``global_batch_size`` counts sequences (RL: completions) per optimizer step;
  vERL SFT ``data.train_batch_size`` counts sequences, RL ``data.train_batch_size`` and
  ``actor.ppo_mini_batch_size`` count prompts (= completions / num_generations), and every
  ``*micro_batch_size_per_gpu`` counts responses per GPU. Gradient accumulation is implied.

The data is converted to vERL's parquet layouts by ``verl_data.py`` (a ``prepare`` command, in the run
directory; for SFT it also fingerprints the rows as vERL's dataset class tokenizes them, and lays out every epoch
of the run so that vERL's always-shuffling SFT sampler reads ptsdk's order of each epoch, or the file's, in the
Hugging Face Trainer's optimizer steps: :func:`lays_out_epochs`; a LoRA SFT job starts from ptsdk's seeded adapter,
loaded through ``model.lora_adapter_path``) and the job's
reward functions are served through vERL's ``custom_reward_function`` by ``verl_reward.py``; a reward
model (``method.reward_model``) is served by vERL's reward loop on the rollout engine. A CPU job runs
through ``cpu_smoke.py`` (the only file with device adaptations).

Precision: vERL's FSDP engine computes in ``mixed_precision.param_dtype``, bf16 unless set (its ``dtype``
key is read by the Megatron engine only); ptsdk sets it from ``training.precision`` on every engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import PYTHON, Backend, Command, ImportResult, Launcher, Note, Plan, PlanFile
from ptsdk.plugins.kit import (
    LOSS_NORMALIZATION,
    OWNED_ADAPTER_SOURCE,
    OWNED_ORDER_SOURCE,
    Effective,
    apply_override_passthrough,
    common_env,
    data_order,
    local_inputs,
    model_dir_problems,
    no_checkpoint_error,
    owned_adapter,
    owned_order,
    owns_order,
    owns_start_adapter,
    passthrough_problems,
    rendezvous_problems,
    runtime_file,
    start_adapter_command,
    tracking_env,
    tracking_notes,
)
from ptsdk.plugins.runtime import START_ADAPTER
from ptsdk.spec import Job
from ptsdk.spec.adapter import FullFineTune
from ptsdk.spec.method import GRPO, PPO, RLOO, SFT, ReinforcePP

RLMethod = GRPO | PPO | RLOO | ReinforcePP

#: Why ptsdk refuses each training.optimizer other than adamw for vERL 0.9.1. vERL builds
#: `getattr(import_module(optim.optimizer_impl), optim.optimizer)(params, lr, weight_decay, betas)`,
#: torch.optim.AdamW unless both are set (verl/workers/config/optimizer.py:106-107, 298-349); ptsdk sets neither.
_VERL_ONLY_ADAMW = "ptsdk gives vERL torch.optim.AdamW only (vERL's default optim.optimizer_impl/optimizer)"
VERL_OPTIMIZER_REFUSALS = {
    "adamw_fused": f"{_VERL_ONLY_ADAMW}, built without fused=True; use adamw (same update, unfused kernel) "
    "or --backend trl / axolotl for adamw_fused",
    **{
        name: f"{_VERL_ONLY_ADAMW}, not bitsandbytes' {name} (bitsandbytes is not in vERL's environment); "
        f"use adamw, or --backend trl / axolotl for {name}"
        for name in ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit")
    },
    **{
        name: f"{_VERL_ONLY_ADAMW}, not {name}; use adamw, or --backend trl / axolotl for {name}"
        for name in ("sgd", "adafactor", "rmsprop")
    },
}

HERE = Path(__file__).resolve().parent
T, V, D = Verified.trained, Verified.validated, Verified.declared
TESTS = "tests/backends/test_verl.py::"
#: The processors vERL 0.9.1 loads (verl/utils/tokenizer/tokenizer.py:182-236, hf_processor): any other raises
#: "Unsupported processor type" inside it, is swallowed with a warning and becomes None (tokenizer.py:242-246), and
#: vERL's datasets then assert "processor is needed" on the first row with images (rl_dataset.py:323).
VERL_PROCESSORS = (
    "Qwen2VLProcessor",
    "Qwen2_5_VLProcessor",
    "Qwen3VLProcessor",
    "Glm4vProcessor",
    "Glm46VProcessor",
    "MllamaProcessor",
    "Gemma4Processor",
)
#: What vERL's image path imports that ptsdk's vERL environment lacks: qwen_vl_utils (rl_dataset.py:442, 491;
#: vision_utils.py:23), whose vision_process.py imports torchvision at module level (qwen-vl-utils 0.0.14).
VERL_IMAGE_PACKAGES = "qwen-vl-utils (which imports torchvision)"
IMAGES_TEST = (
    "tests/backends/test_images_rl_native.py::test_verl_takes_a_processor_it_loads_but_not_without_its_image_reader"
)

#: Files the plan writes into the run directory (the modules keep their names: vERL imports them by path).
DATA_MODULE, DATA_SPEC = "verl_data.py", "verl_data.json"
REWARD_MODULE, REWARD_SPEC = "verl_reward.py", "verl_reward.json"
CPU_SMOKE, EXPORT = "cpu_smoke.py", "verl_export.py"
TRAIN_PARQUET, EVAL_PARQUET = "data/train.parquet", "data/eval.parquet"
#: The converted RL rows' image files (data.image_key), absolute paths, one per <image> placeholder.
IMAGE_COLUMN = "images"
#: verl_data.py's layout of the training rows (layout ``epochs``): epochs, steps per epoch, filler rows per step.
LAYOUT_FILE = "data/train_layout.json"
#: vERL's file logger writes one JSON line per step here (VERL_FILE_LOGGER_PATH, relative to the run directory).
METRICS_FILE = "logs/verl_metrics.jsonl"
CHECKPOINTS = "checkpoints"

SFT_ENTRY = ["-m", "verl.trainer.sft_trainer"]
#: vERL's SFT trainer reads this save_freq / test_freq as "its steps per epoch" (the PPO trainer has no such value).
AFTER_EACH_EPOCH = "after_each_epoch"
#: The chat template an Alpaca job gives vERL's SFT dataset (data.apply_chat_template_kwargs.chat_template): each
#: turn as plain text, the assistant's followed by EOS, as Axolotl tokenizes Alpaca records (no template markup).
ALPACA_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
)
#: vERL's SFT trainer builds DistributedSampler(shuffle=True) with its default seed, whatever the job says.
SFT_SAMPLER_SEED = 0
RL_ENTRY = ["-m", "verl.trainer.main_ppo"]

# ptsdk method -> vERL advantage estimator (algorithm.adv_estimator).
ADV_ESTIMATOR = {"grpo": "grpo", "ppo": "gae", "rloo": "rloo", "reinforce_pp": "reinforce_plus_plus"}
# GRPO loss variant -> (actor.loss_agg_mode, actor.policy_loss.loss_mode, extra overrides, why).
GRPO_LOSS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "grpo": (
        "seq-mean-token-mean",
        "vanilla",
        {},
        "token mean per sequence, then mean over sequences (the GRPO paper)",
    ),
    "dr_grpo": (
        "seq-mean-token-sum-norm",
        "vanilla",
        {"algorithm.norm_adv_by_std_in_grpo": False},
        "token sum per sequence over a constant, advantages not divided by the group std (Dr. GRPO)",
    ),
    "dapo": ("token-mean", "vanilla", {}, "token mean over the whole mini-batch (DAPO's token-level loss)"),
    "cispo": ("token-mean", "cispo", {}, "vERL's cispo policy loss (clipped importance-sampling weights)"),
    "sapo": ("token-mean", "sapo", {}, "vERL's sapo policy loss (soft adaptive gating)"),
}
#: ptsdk's KL estimator -> vERL's name for it (kl_loss_type / kl_penalty; verl/trainer/ppo/core_algos.py
#: kl_penalty_forward accepts kl|k1, mse|k2, low_var_kl|k3). vERL's k3 is clipped: the log-ratio to [-20, 20] and
#: the estimate to [-10, 10] ("low_var_kl" and "k3" are the same code); k1 and k2 are not clipped.
KL_ESTIMATOR = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}
KL_K3_CLIPPED = "vERL's k3 (low_var_kl) clamps the log-ratio to [-20, 20] and each token's estimate to [-10, 10]"
SCHEDULERS = {"cosine": "cosine", "constant": "constant", "constant_with_warmup": "constant"}
PRECISION = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
MODEL_DTYPE = {"auto": "fp32", "float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
REPORT_TO = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}


def rl_method(job: Job) -> RLMethod:
    """The job's online-RL method (translate only reaches here for the RL family)."""
    assert isinstance(job.method, (GRPO, PPO, RLOO, ReinforcePP)), job.method.name
    return job.method


def steps_per_rollout(job: Job) -> int:
    """Optimizer steps in one vERL step. vERL counts its steps (total_training_steps, save_freq, test_freq, the
    scheduler) in rollouts; each rollout of rollout_batch_size prompts takes rollout_batch_size / prompts per
    optimizer step mini-batches, epochs_per_rollout times. 1 for SFT and for one step per rollout."""
    m = job.method
    if not isinstance(m, (GRPO, PPO, RLOO, ReinforcePP)):
        return 1
    prompts = max(job.training.global_batch_size // max(m.num_generations, 1), 1)
    return max((m.rollout_batch_size or prompts) // prompts, 1) * m.epochs_per_rollout


def lays_out_epochs(job: Job) -> bool:
    """Whether verl_data.py lays out every epoch of an SFT run for vERL's sampler (layout ``epochs``), so that vERL
    reads ptsdk's order of each epoch (kit.owns_order) or the file's order in every epoch (training.shuffle: false),
    in the Hugging Face Trainer's optimizer steps. vERL then makes one pass over the laid-out rows, so its own
    per-epoch cadence (after_each_epoch: len(train_dataloader)) would mean the whole run: a job with
    output.saves_per_epoch / evals_per_epoch keeps vERL's own epochs (and sampler) instead."""
    t, out = job.training, job.output
    return (
        job.method.family == "sft"
        and not t.packing
        and (owns_order(job) or not t.shuffle)
        and out.saves_per_epoch is None
        and out.evals_per_epoch is None
    )


class VerlBackend(Backend):
    name = "verl"
    framework = "verl"
    description = "vERL: Ray-based RL post-training with vLLM/SGLang rollouts (PPO, GRPO, RLOO, REINFORCE++) and SFT."
    verified_with: ClassVar[dict[str, str]] = {
        "verl": "0.9.1",
        "transformers": "5.10.4",
        "torch": "2.13.0",
        "ray": "2.60.0",
    }
    install_hint = (
        "ptsdk env create verl   (or: pip install torch==2.13.0 && pip install verl==0.9.1 fastapi uvicorn "
        "pyzmq msgspec cachetools 'TransferQueue>=0.1.10')"
    )
    reported_packages = ("transformers", "ray", "hydra-core", "datasets", "peft")
    check_script = HERE / "check_verl.py"
    #: vERL keys the job owns even where ptsdk sets nothing: backend_options refuses them unless ptsdk_override
    #: names them (``*`` matches any part of a dotted key).
    passthrough_owned: ClassVar[dict[str, str]] = {
        "algorithm.adv_estimator": "method.name",
        "actor_rollout_ref.actor.strategy": "distributed.strategy",
        "critic.strategy": "distributed.strategy",
        "engine.strategy": "distributed.strategy",
        "*.fsdp_config.strategy": "distributed.strategy",
        "critic.fsdp.strategy": "distributed.strategy",
        "engine.dtype": "training.precision",
        "engine.mixed_precision": "training.precision",
        "*.fsdp_config.dtype": "training.precision",
        "*.fsdp_config.mixed_precision": "training.precision",
        "critic.fsdp.dtype": "training.precision",
        "critic.fsdp.mixed_precision": "training.precision",
        "engine.model_dtype": "model.dtype",
        "*.fsdp_config.model_dtype": "model.dtype",
        "critic.fsdp.model_dtype": "model.dtype",
        "model.path": "model.name_or_path",
        "actor_rollout_ref.model.path": "model.name_or_path",
        "critic.model.path": "model.name_or_path",
        "data.train_files": "data.train.path",
        "data.val_files": "data.eval.path",
        "data.image_key": "data.images",
        "actor_rollout_ref.rollout.name": "rollout.engine",
        "trainer.default_local_dir": "output.dir",
        "trainer.n_gpus_per_node": "distributed.gpus_per_node",
        "trainer.nnodes": "distributed.nodes",
        "trainer.device": "distributed.device",
        "ray_kwargs.ray_init.address": "distributed.ray_address",
    }
    capabilities = (
        *caps(
            "method",
            "sft",
            T,
            TESTS + "test_sft_lora_trains_in_cpu_smoke_mode",
            note="trained in CPU smoke mode (cpu_smoke.py)",
        ),
        *caps(
            "method",
            "grpo ppo rloo reinforce_pp",
            V,
            TESTS + "test_every_generated_config_composes_and_validates_in_verl",
            note="RL needs vLLM/SGLang on GPUs: validated by vERL, GPU script backends/verl/gpu_check.sh",
        ),
        *caps(
            "loss",
            " ".join(f"grpo:{v}" for v in GRPO_LOSS),
            V,
            TESTS + "test_every_generated_config_composes_and_validates_in_verl",
            note="actor.loss_agg_mode / policy_loss.loss_mode",
        ),
        *caps(
            "adapter",
            "full",
            T,
            TESTS + "test_resume_continues_from_verls_own_checkpoint",
            note="SFT trained in CPU smoke mode (and compared with TRL); RL validated",
        ),
        *caps(
            "adapter",
            "lora",
            T,
            TESTS + "test_sft_lora_trains_in_cpu_smoke_mode",
            note="SFT trained in CPU smoke mode; RL validated",
        ),
        *caps(
            "strategy",
            "fsdp",
            V,
            TESTS + "test_every_generated_config_composes_and_validates_in_verl",
            note="vERL's fsdp2 engine",
        ),
        *caps("topology", "multi_node", V, TESTS + "test_every_generated_config_composes_and_validates_in_verl"),
        *caps(
            "topology",
            "ray_cluster",
            V,
            TESTS + "test_every_generated_config_composes_and_validates_in_verl",
            note="+ray_kwargs.ray_init.address",
        ),
        *caps(
            "device",
            "cpu",
            T,
            TESTS + "test_sft_lora_trains_in_cpu_smoke_mode",
            note="SFT only, single process, in CPU smoke mode (cpu_smoke.py)",
        ),
        *caps("reward", "functions", V, TESTS + "test_reward_bridge_scores_through_verls_loader"),
        *caps(
            "reward",
            "model",
            V,
            TESTS + "test_reward_model_is_served_by_verls_reward_loop",
            note="reward.reward_model on the rollout engine (vllm /classify, sglang); not summed with functions",
        ),
        *caps("rollout", "vllm sglang", V, TESTS + "test_every_generated_config_composes_and_validates_in_verl"),
        *caps(
            "feature",
            "kl_in_loss:k1 kl_in_loss:k2 kl_in_loss:k3",
            V,
            TESTS + "test_kl_placements_and_estimators_run_in_verls_kl_code",
            note=f"actor.use_kl_loss, kl_loss_type kl/mse/low_var_kl; {KL_K3_CLIPPED}",
        ),
        *caps(
            "feature",
            "kl_in_reward:k1 kl_in_reward:k2 kl_in_reward:k3",
            V,
            TESTS + "test_kl_placements_and_estimators_run_in_verls_kl_code",
            note="algorithm.use_kl_in_reward, kl_penalty kl/mse/low_var_kl, fixed kl_ctrl; every RL method",
        ),
        *caps(
            "feature",
            "several_steps_per_rollout epochs_per_rollout",
            V,
            TESTS + "test_rollout_batches_and_ppo_epochs_validate_in_verl",
            note="data.train_batch_size / ppo_mini_batch_size, actor.ppo_epochs; vERL steps count rollouts",
        ),
        *caps(
            "feature",
            "adam_betas min_lr token_batching eval_split",
            T,
            TESTS + "test_sft_token_batches_optimizer_and_eval_split_train_in_cpu_smoke_mode",
            note="SFT trained in CPU smoke mode; RL validated (optim.betas / override_optimizer_config.eps / "
            "min_lr_ratio, use_dynamic_bsz + *max_token_len_per_gpu, a seeded held-out parquet)",
        ),
        *caps(
            "feature",
            "message_mapping per_epoch_cadence",
            T,
            TESTS + "test_sharegpt_messages_and_per_epoch_cadence_train_in_cpu_smoke_mode",
            note=f"the data conversion applies message_keys/role_names (thinking -> reasoning_content, which vERL's "
            f"dataset gives the chat template); SFT saves/evals once per epoch ({AFTER_EACH_EPOCH}); RL and other "
            "per-epoch counts refused",
        ),
        *caps(
            "feature",
            "instruction_records",
            T,
            TESTS + "test_alpaca_records_train_in_cpu_smoke_mode",
            note="Axolotl's Alpaca prompt text rendered without chat markup, the loss on output + EOS; no BOS added",
        ),
        *caps(
            "feature",
            "padding_free",
            V,
            TESTS + "test_padding_free_and_token_batching_compose_in_verl",
            note="model.use_remove_padding (actor, critic, SFT); varlen attention needs flash-attn on GPUs",
        ),
        *caps(
            "feature",
            "images:grpo images:ppo images:rloo images:reinforce_pp",
            D,
            IMAGES_TEST,
            note="declared, not validated: vERL's hf_processor loads a tiny Mllama's processor, its RLHFDataset "
            "reads data.image_key and the <image> placeholders (verl/utils/dataset/rl_dataset.py:299-384) of ptsdk's "
            "converted rows and build_multimodal_processor_inputs tokenizes them with their pictures, but a run needs "
            f"{VERL_IMAGE_PACKAGES}, which ptsdk's vERL environment lacks (the native check fails naming them), and a "
            "processor vERL's hf_processor loads (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, GLM-4V, GLM-4.6V, Mllama, Gemma4: "
            "verl/utils/tokenizer/tokenizer.py:182-236); SFT with images (multiturn_sft_dataset.py:243-288) is "
            "not translated",
        ),
        *caps(
            "feature",
            "tracking_tensorboard tracking_wandb tracking_trackio",
            T,
            "tests/backends/test_tracking.py::test_verl_sft_in_tensorboard_wandb_trackio",
            note="vERL's own Tracking (trainer.logger); SFT trained in CPU smoke mode; W&B offline; Trackio a local "
            "database; no MLflow in vERL's environment",
        ),
    )

    # --- what vERL cannot run, before anything starts ------------------------------------

    def static_problems(self, job: Job) -> list[str]:
        t, d, m = job.training, job.distributed, job.method
        out = []
        if m.family == "rl" and d.device == "cpu":
            out.append(
                "distributed.device: vERL generates RL rollouts with vLLM or SGLang, which need GPUs; "
                "use device: gpu, or --backend trl for GRPO/RLOO on CPU"
            )
        if t.epochs is not None and t.epochs != int(t.epochs):
            out.append(
                f"training.epochs: vERL trains whole epochs, not {t.epochs}; use a whole number or training.max_steps"
            )
        if t.optimizer != "adamw":
            out.append(f"training.optimizer: {VERL_OPTIMIZER_REFUSALS[t.optimizer]}")
        if t.lr_scheduler not in SCHEDULERS:
            out.append(
                f"training.lr_scheduler: vERL schedules {' or '.join(sorted(set(SCHEDULERS.values())))} "
                f"after warmup, not {t.lr_scheduler}; pick one of those"
            )
        if isinstance(m, SFT) and m.loss_on == "all":
            out.append(
                "method.loss_on: vERL's SFT dataset computes the loss on assistant turns only; use loss_on: completion"
            )
        if job.model.chat_template:
            out.append(
                "model.chat_template: vERL reads the tokenizer's own template; save yours as chat_template.jinja in "
                "the model folder and remove model.chat_template"
            )
        for key in ("train", "eval"):
            source = getattr(job.data, key)
            if source is not None and not source.is_local:
                out.append(
                    f"data.{key}.path: ptsdk converts local .jsonl/.json/.parquet files to vERL's parquet layout; "
                    f"download {source.path} first"
                )
        for field, value, steps in (
            ("saves_per_epoch", job.output.saves_per_epoch, "save_steps"),
            ("evals_per_epoch", job.output.evals_per_epoch, "eval_steps"),
        ):
            if value is None:
                continue
            if m.family == "rl":
                out.append(
                    f"output.{field}: vERL's PPO trainer counts save_freq / test_freq in rollouts and has no "
                    f"per-epoch setting; use output.{steps}"
                )
            elif value != 1:
                out.append(
                    f"output.{field}: vERL's SFT trainer's one per-epoch cadence is {AFTER_EACH_EPOCH} (once per "
                    f"epoch), not {value} times; use 1, or output.{steps}"
                )
        if d.strategy == "megatron":
            out.append(
                "distributed.strategy: ptsdk runs vERL's FSDP workers; vERL's Megatron workers (ppo_megatron_trainer) "
                "need megatron-core, which ptsdk's vERL environment does not have; use strategy: fsdp, or another "
                "backend for Megatron"
            )
        elif d.tensor_parallel_size > 1:
            out.append(
                f"distributed.tensor_parallel_size: vERL's FSDP engine shards parameters but has no tensor "
                f"parallelism for training (only its rollout engines do: rollout.tensor_parallel_size); set "
                f"{d.tensor_parallel_size} there and tensor_parallel_size: 1 here"
            )
        if t.padding_free and d.device == "cpu":
            out.append(
                "training.padding_free: vERL's remove-padding needs flash-attn's varlen kernels (CUDA); CPU smoke "
                "mode trains padded batches: set padding_free: false, or device: gpu"
            )
        if t.max_tokens_per_micro_batch is not None:
            longest = job.data.max_length if m.family == "sft" else _rl_length(job)
            if longest is not None and t.max_tokens_per_micro_batch < longest:
                out.append(
                    f"training.max_tokens_per_micro_batch: {t.max_tokens_per_micro_batch} tokens cannot hold one "
                    f"sequence of {longest} tokens (vERL never splits a sequence across micro-batches); use at "
                    f"least {longest}"
                )
        if m.family == "rl":
            out += self._rollout_problems(job)
            assert isinstance(m, (GRPO, PPO, RLOO, ReinforcePP))
            if m.max_prompt_length is None:
                out.append(
                    "method.max_prompt_length: vERL sizes and left-pads every prompt to data.max_prompt_length, "
                    "which has no unlimited value; set the longest prompt length in tokens"
                )
            spr = steps_per_rollout(job)
            for key, value in (
                ("training.max_steps", t.max_steps),
                ("output.save_steps", job.output.save_steps),
                ("output.eval_steps", job.output.eval_steps),
            ):
                if value is not None and value % spr:
                    out.append(
                        f"{key}: vERL counts steps in rollouts of {spr} optimizer steps (rollout_batch_size / "
                        f"prompts per step x epochs_per_rollout); {value} is not a multiple: use "
                        f"{max(spr, value - value % spr)}"
                    )
            if job.rollout is not None and job.rollout.server:
                out.append(
                    "rollout.server: vERL starts its own vLLM/SGLang engines beside its training workers and "
                    "cannot send rollouts to a server started separately; remove rollout.server, or use "
                    "--backend trl"
                )
            if getattr(m, "rewards", None) and getattr(m, "reward_model", None):
                out.append(
                    "method.reward_model: vERL scores with reward functions or a reward model, not their sum "
                    "(a custom reward function replaces the model's score); keep one, or use --backend trl"
                )
        out += image_problems(job)
        launched = [] if m.family == "rl" else rendezvous_problems(job, "torchrun")
        return out + launched + passthrough_problems(self, job)

    def _rollout_problems(self, job: Job) -> list[str]:
        r, world = job.rollout, job.distributed.world_size
        if r is None:
            return []
        out = []
        if not r.colocate:
            out.append(
                "rollout.colocate: ptsdk's vERL translation runs rollouts on the training GPUs (hybrid engine); "
                "set colocate: true"
            )
        if world % r.tensor_parallel_size:
            out.append(
                f"rollout.tensor_parallel_size: {r.tensor_parallel_size} does not divide the {world} GPUs; "
                f"use a divisor of {world}"
            )
        elif r.num_engines is not None and r.num_engines != world // r.tensor_parallel_size:
            out.append(
                f"rollout.num_engines: vERL runs one engine per {r.tensor_parallel_size} GPU(s), "
                f"{world // r.tensor_parallel_size} in all; remove num_engines or set it to that"
            )
        return out

    # --- translation -------------------------------------------------------------------

    def translate(self, job: Job) -> Plan:
        notes: list[Note] = []
        sft = job.method.family == "sft"
        overrides = self._sft(job, notes) if sft else self._rl(job, notes)
        apply_override_passthrough(job, self.name, overrides, notes, owned=self.passthrough_owned)  # "+key": new key
        args = [f"{k}={hydra_value(v)}" for k, v in overrides.items()]
        files = [
            PlanFile(DATA_MODULE, copy_from=str(HERE / DATA_MODULE)),
            PlanFile(DATA_SPEC, content=json.dumps(data_spec(job, args), indent=1, sort_keys=True) + "\n"),
            PlanFile(EXPORT, copy_from=str(HERE / EXPORT)),
            runtime_file(),  # verl_data.py reads records and fingerprints with it; verl_reward.py loads rewards
        ]
        if not sft and rl_method(job).rewards:
            files += [
                PlanFile(REWARD_MODULE, copy_from=str(HERE / REWARD_MODULE)),
                PlanFile(REWARD_SPEC, content=json.dumps({"rewards": list(rl_method(job).rewards)}, indent=1) + "\n"),
            ]
        entry = SFT_ENTRY if sft else RL_ENTRY
        if job.distributed.device == "cpu":
            files.append(PlanFile(CPU_SMOKE, copy_from=str(HERE / CPU_SMOKE)))
            entry = [CPU_SMOKE]
            notes.append(
                Note(
                    "distributed.device",
                    "set",
                    f"CPU smoke mode: {CPU_SMOKE} registers a CPU platform and gloo "
                    "for vERL (which has none), then runs verl.trainer.sft_trainer unchanged",
                )
            )
        d = job.distributed
        if sft:
            # vERL's SFT trainer always joins a process group: torchrun even for one process.
            launcher = Launcher(
                "torchrun",
                nproc_per_node=d.gpus_per_node,
                nnodes=d.nodes,
                master_addr=d.master_addr,
                master_port=d.master_port,
                rdzv_id=job.name or "ptsdk",
            )
        else:
            launcher = Launcher("python")  # main_ppo starts Ray (or joins ray_address) and places every worker itself
        env = {
            **common_env(job),
            **tracking_env(job, self.name, tensorboard_var="TENSORBOARD_DIR"),
            "VERL_FILE_LOGGER_PATH": METRICS_FILE,
        }
        prepare = [Command([PYTHON, DATA_MODULE, DATA_SPEC], description="convert the data to vERL's parquet layout")]
        if starts_from_ptsdks_adapter(job):  # model.lora_adapter_path: start_adapter
            prepare.insert(0, start_adapter_command(job))
        finalize_export = Command(
            [PYTHON, EXPORT, CHECKPOINTS, "model"], description="export the trained weights to model/"
        )
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=entry,
            args=args,
            launcher=launcher,
            env=env,
            native_config=None,
            prepare=prepare,
            finalize=[finalize_export],
            notes=notes,
            effective=self.effective(job, overrides),
            inputs=sorted({*local_inputs(job), *reward_model_input(job)}),
            job=job,
        )

    # SFT ------------------------------------------------------------------------------

    def _sft(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d = job.training, job.distributed
        o: dict[str, Any] = {
            "data.train_files": TRAIN_PARQUET,
            "data.val_files": EVAL_PARQUET if has_eval(job) else None,
        }
        o["data.train_batch_size"] = t.global_batch_size
        o["data.micro_batch_size_per_gpu"] = t.micro_batch_size
        # Unset: the micro batch counts sequences exactly, not tokens (vERL's SFT default is token batches).
        o.update(self._token_batching(job, "data", "max_token_len_per_gpu", notes))
        notes.append(
            Note(
                "training.global_batch_size",
                "derived",
                f"data.train_batch_size={t.global_batch_size}: vERL's SFT "
                "batch counts sequences across all GPUs, as ptsdk's does",
            )
        )
        notes.append(
            Note(
                "training.micro_batch_size",
                "derived",
                f"data.micro_batch_size_per_gpu={t.micro_batch_size}; gradient accumulation is implied: "
                f"{t.global_batch_size} / ({t.micro_batch_size} x {d.data_parallel_size} GPUs) = "
                f"{job.gradient_accumulation_steps}",
            )
        )
        o["data.max_length"] = job.data.max_length
        o["data.truncation"] = "right"
        if job.data.truncation == "drop":
            notes.append(
                Note(
                    "data.truncation",
                    "approximated",
                    "vERL's SFT dataset truncates (right) or errors; it cannot drop rows",
                )
            )
        if job.data.train.max_samples and not lays_out_epochs(job):  # laid out: verl_data.py took them already
            o["data.train_max_samples"] = job.data.train.max_samples
        if job.data.eval is not None and job.data.eval.max_samples:
            o["data.val_max_samples"] = job.data.eval.max_samples
        if job.data.format == "instruction":
            o["+data.apply_chat_template_kwargs.chat_template"] = ALPACA_TEMPLATE
            notes.append(
                Note(
                    "data.format",
                    "set",
                    f"instruction: {DATA_MODULE} writes each Alpaca record as a user turn holding Axolotl's Alpaca "
                    "prompt text and an assistant turn holding the output; data.apply_chat_template_kwargs gives "
                    "vERL's SFT dataset a template that renders them as plain text, EOS after the output (the loss "
                    "falls on output and EOS). No BOS token is added (Axolotl adds one where the tokenizer does)",
                )
            )
        self._mapping_notes(job, notes)
        o.update(self._model(job, "model", notes))
        o.update(self._padding_free(job, "model", notes))
        o.update(self._engine(job, "engine"))
        if d.device == "cpu":
            # CPU smoke mode (cpu_smoke.py): flash-attn's varlen kernels behind remove-padding are CUDA-only.
            o.update({"model.use_remove_padding": False, "data.num_workers": 0})
        o.update(self._optim(job, "optim", notes))
        o.update(self._trainer(job, notes))
        o["trainer.seed"] = t.seed
        o["trainer.max_ckpt_to_keep"] = job.output.save_total_limit
        # The full HF model is saved with the last checkpoint: verl_export.py copies it to model/.
        o["checkpoint.save_contents"] = ["model", "optimizer", "extra", "hf_model"]
        if lays_out_epochs(job):
            whose = (
                "the file's order" if not t.shuffle else f"ptsdk's seeded order (seed {t.seed}, a new one each epoch)"
            )
            notes.append(
                Note(
                    "training.shuffle",
                    "set",
                    f"{whose}: vERL's SFT sampler always shuffles (DistributedSampler, seed {SFT_SAMPLER_SEED}), so "
                    f"{DATA_MODULE} lays out every epoch the run reads as one pass that this sampler reads in that "
                    "order, step for step as the Hugging Face Trainer reads them (a short last step of an epoch is "
                    "filled with rows that carry no loss token); trainer.total_epochs=1"
                    + ("" if not t.shuffle else "; each epoch's order in logs/data_order.jsonl"),
                )
            )
        elif not t.shuffle:
            notes.append(
                Note(
                    "training.shuffle",
                    "approximated",
                    f"vERL's SFT sampler always shuffles (DistributedSampler, seed {SFT_SAMPLER_SEED}): {DATA_MODULE} "
                    "lays the rows out so that its first epoch draws them in file order; later epochs are reshuffled "
                    "(output.saves_per_epoch / evals_per_epoch keep vERL's own epochs)",
                )
            )
        else:
            notes.append(
                Note(
                    "training.seed",
                    "approximated",
                    f"vERL's SFT sampler shuffles with its own seed {SFT_SAMPLER_SEED} (DistributedSampler's default), "
                    f"not {t.seed}; the seed still initializes the model engine"
                    + (
                        " (ptsdk's order needs one pass over every epoch, which vERL's per-epoch cadence of "
                        "output.saves_per_epoch / evals_per_epoch would read as the whole run)"
                        if owns_order(job)
                        else ""
                    ),
                )
            )
        return o

    # RL -------------------------------------------------------------------------------

    def _rl(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d, m = job.training, job.distributed, rl_method(job)
        n = m.num_generations
        prompts = t.global_batch_size // n  # exact: the job's cross-field checks require divisibility
        rollout_prompts = m.rollout_batch_size or prompts  # a multiple of prompts (the spec's cross-field check)
        o: dict[str, Any] = {"algorithm.adv_estimator": ADV_ESTIMATOR[m.name]}
        o["data.train_files"] = TRAIN_PARQUET
        # vERL builds a validation set even when it never validates: give it the eval data, else the training data.
        o["data.val_files"] = EVAL_PARQUET if has_eval(job) else TRAIN_PARQUET
        o["data.prompt_key"] = "prompt"
        o["data.train_batch_size"] = rollout_prompts
        o["data.max_prompt_length"] = m.max_prompt_length
        o["data.max_response_length"] = m.max_completion_length
        o["data.truncation"] = "left"  # ptsdk keeps the end of a long prompt
        if job.data.truncation == "drop":
            # vERL's RLHFDataset drops rows whose chat-templated prompt is longer than data.max_prompt_length.
            o["data.filter_overlong_prompts"] = True
            notes.append(
                Note(
                    "data.truncation",
                    "set",
                    f"drop: data.filter_overlong_prompts=true (vERL drops prompts longer than "
                    f"{m.max_prompt_length} tokens, chat template included, when it loads the data)",
                )
            )
        o["data.shuffle"] = t.shuffle
        o["data.seed"] = t.seed
        self._mapping_notes(job, notes)
        o.update(self._images(job, notes))
        if job.data.train.max_samples:
            o["data.train_max_samples"] = job.data.train.max_samples
        if m.rollout_batch_size is None:
            notes.append(
                Note(
                    "training.global_batch_size",
                    "derived",
                    f"data.train_batch_size={prompts} prompts = {t.global_batch_size} "
                    f"completions / method.num_generations={n} (one rollout batch per optimizer step)",
                )
            )
        else:
            notes.append(
                Note(
                    "method.rollout_batch_size",
                    "set",
                    f"data.train_batch_size={rollout_prompts} prompts per rollout, split by vERL into "
                    f"{rollout_prompts // prompts} optimizer step(s) of ppo_mini_batch_size={prompts} prompts "
                    f"({t.global_batch_size} completions) per epoch over the rollout",
                )
            )
        a = "actor_rollout_ref.actor"
        o[f"{a}.ppo_mini_batch_size"] = prompts
        notes.append(
            Note(
                "training.global_batch_size",
                "derived",
                f"{a}.ppo_mini_batch_size={prompts} prompts (vERL multiplies "
                f"by rollout.n={n} inside the worker: {t.global_batch_size} completions per optimizer step)",
            )
        )
        o[f"{a}.ppo_micro_batch_size_per_gpu"] = t.micro_batch_size
        o.update(self._token_batching(job, a, "ppo_max_token_len_per_gpu", notes))
        o[f"{a}.ppo_epochs"] = m.epochs_per_rollout  # the critic's ppo_epochs follows the actor's (vERL's config)
        if m.epochs_per_rollout > 1:
            notes.append(
                Note(
                    "method.epochs_per_rollout",
                    "set",
                    f"{a}.ppo_epochs={m.epochs_per_rollout} (and critic.ppo_epochs, which vERL takes from the actor's)",
                )
            )
        o[f"{a}.shuffle"] = False
        o[f"{a}.data_loader_seed"] = t.seed
        notes.append(
            Note(
                "training.micro_batch_size",
                "derived",
                f"{a}.ppo_micro_batch_size_per_gpu={t.micro_batch_size} responses "
                f"per GPU; gradient accumulation is implied: {t.global_batch_size} / ({t.micro_batch_size} x "
                f"{d.world_size} GPUs) = {job.gradient_accumulation_steps}",
            )
        )
        o[f"{a}.strategy"] = "fsdp2"
        o[f"{a}.clip_ratio"] = m.clip_epsilon
        o[f"{a}.clip_ratio_low"] = m.clip_epsilon
        o[f"{a}.clip_ratio_high"] = m.clip_epsilon
        o[f"{a}.entropy_coeff"] = 0
        o.update(self._kl(job, notes))
        kl = m.kl_coef
        o.update(self._loss(job, notes))
        o.update(self._model(job, "actor_rollout_ref.model", notes))
        o.update(self._padding_free(job, "actor_rollout_ref.model", notes))
        o.update(self._engine(job, f"{a}.fsdp_config"))
        o.update(self._optim(job, f"{a}.optim", notes))
        if kl > 0:
            o["actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu"] = t.micro_batch_size
            o.update(self._engine(job, "actor_rollout_ref.ref.fsdp_config"))
        o.update(self._rollout(job, notes))
        if m.name == "ppo":
            o.update(self._critic(job, notes))
        if m.rewards:
            o["reward.custom_reward_function.path"] = REWARD_MODULE
            o["reward.custom_reward_function.name"] = "compute_score"
            notes.append(
                Note(
                    "method.rewards",
                    "set",
                    f"served to vERL by {REWARD_MODULE}:compute_score, which calls each "
                    "fn(prompts, completions, **columns) on one completion and sums the scores",
                )
            )
        else:
            o.update(self._reward_model(job, notes))
        o.update(self._trainer(job, notes))
        o["trainer.val_before_train"] = False
        o["trainer.max_actor_ckpt_to_keep"] = job.output.save_total_limit
        o[f"{a}.checkpoint.save_contents"] = ["model", "optimizer", "extra", "hf_model"]
        if d.ray_address:
            o["+ray_kwargs.ray_init.address"] = d.ray_address
            notes.append(Note("distributed.ray_address", "set", "vERL joins this Ray cluster instead of starting one"))
        return o

    def _images(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        """Images in RL prompts: verl_data.py writes each row's image files (absolute paths) to the images column
        and one <image> placeholder per image into the prompt's string contents, the form vERL's RLHFDataset
        expands into {type: image, image: PATH} parts for the processor (rl_dataset.py:299-384)."""
        images = job.data.images
        if images is None:
            return {}
        where = f"under {images.root}" if images.root else "relative to the data file's folder"
        notes.append(
            Note(
                "data.images",
                "set",
                f"data.image_key={IMAGE_COLUMN}: {DATA_MODULE} writes each record's image files ({images.column}, "
                f"{where}) as absolute paths to the parquet column {IMAGE_COLUMN} and one <image> per image into the "
                "prompt's text (before the first user turn's text for string contents; parts joined in order); "
                "vERL's RLHFDataset turns them into image parts for the model's processor, which vERL loads with "
                "hf_processor (Qwen-VL, GLM-4V, Mllama and Gemma4 processors only) and reads with "
                f"{VERL_IMAGE_PACKAGES}",
            )
        )
        return {"data.image_key": IMAGE_COLUMN}

    def _kl(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        """The KL penalty to the reference policy, in the actor's loss or in the reward (a fixed controller)."""
        a, m = "actor_rollout_ref.actor", rl_method(job)
        kl, name = m.kl_coef, KL_ESTIMATOR[m.kl_estimator]
        in_loss, in_reward = kl > 0 and m.kl_placement == "loss", kl > 0 and m.kl_placement == "reward"
        # vERL starts a reference model when either is on (need_reference_policy); none without a KL term.
        o: dict[str, Any] = {
            f"{a}.use_kl_loss": in_loss,
            f"{a}.kl_loss_coef": kl if in_loss or not in_reward else 0.0,
            f"{a}.kl_loss_type": name if in_loss else "low_var_kl",
            "algorithm.use_kl_in_reward": in_reward,
        }
        clipped = f"; {KL_K3_CLIPPED}" if m.kl_estimator == "k3" else ""
        if in_reward:
            o.update({"algorithm.kl_penalty": name, "algorithm.kl_ctrl.type": "fixed", "algorithm.kl_ctrl.kl_coef": kl})
            notes.append(
                Note(
                    "method.kl_placement",
                    "set",
                    f"reward: algorithm.use_kl_in_reward=true, kl_penalty={name} ({m.kl_estimator}), "
                    f"kl_ctrl fixed at {kl}: each token's reward minus {kl} x KL of the rollout policy to the "
                    f"reference, before advantages{clipped}",
                )
            )
        else:
            notes.append(
                Note(
                    "method.kl_coef",
                    "set",
                    f"{a}.use_kl_loss={in_loss}, kl_loss_coef={kl}, kl_loss_type={o[f'{a}.kl_loss_type']} "
                    f"({m.kl_estimator}) added to the policy loss, not a KL penalty in the reward{clipped}",
                )
            )
        return o

    def _loss(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        a, m = "actor_rollout_ref.actor", job.method
        if not isinstance(m, GRPO):
            return {f"{a}.loss_agg_mode": "token-mean", f"{a}.policy_loss.loss_mode": "vanilla"}
        agg, mode, extra, why = GRPO_LOSS[m.loss_type]
        notes.append(
            Note("method.loss_type", "set", f"{m.loss_type}: loss_agg_mode={agg}, policy_loss.loss_mode={mode}: {why}")
        )
        return {f"{a}.loss_agg_mode": agg, f"{a}.policy_loss.loss_mode": mode, **extra}

    def _rollout(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        r, m, t = job.rollout, rl_method(job), job.training
        p = "actor_rollout_ref.rollout"
        engine, tp, memory = (r.engine, r.tensor_parallel_size, r.gpu_memory_utilization) if r else ("vllm", 1, 0.5)
        if r is None:
            notes.append(
                Note(
                    "rollout",
                    "defaulted",
                    "vERL generates with an inference engine: vllm, tensor parallel 1, "
                    "colocated with training (set a rollout section to choose)",
                )
            )
        o = {
            f"{p}.name": engine,
            f"{p}.n": m.num_generations,
            f"{p}.temperature": m.temperature,
            f"{p}.tensor_model_parallel_size": tp,
            f"{p}.gpu_memory_utilization": memory,
            f"{p}.log_prob_micro_batch_size_per_gpu": t.micro_batch_size,
            f"{p}.seed": t.seed,
        }
        engines = job.distributed.world_size // tp
        notes.append(
            Note(
                "rollout.tensor_parallel_size",
                "derived",
                f"{engines} {engine} engine(s) of {tp} GPU(s), "
                f"colocated with training on {job.distributed.world_size} GPU(s)",
            )
        )
        return o

    def _reward_model(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        """A sequence-classification reward model, served by vERL's reward loop on the rollout engine."""
        m, r = rl_method(job), job.rollout
        assert m.reward_model is not None  # the spec requires rewards or a reward model
        engine, tp, memory = (r.engine, r.tensor_parallel_size, r.gpu_memory_utilization) if r else ("vllm", 1, 0.5)
        p = "reward.reward_model"
        notes.append(
            Note(
                "method.reward_model",
                "set",
                f"{p}.enable=true: vERL serves {m.reward_model} with {engine} (tensor parallel {tp}, "
                "colocated with training, asleep between reward computations) and scores each completion with "
                "its classification head on the chat template of prompt + completion (the last label's logit)",
            )
        )
        return {
            f"{p}.enable": True,
            f"{p}.model_path": m.reward_model,
            f"{p}.enable_resource_pool": False,
            f"{p}.rollout.name": engine,
            f"{p}.rollout.tensor_model_parallel_size": tp,  # vERL's default is 2
            f"{p}.rollout.gpu_memory_utilization": memory,
            f"{p}.rollout.prompt_length": m.max_prompt_length,
            f"{p}.rollout.response_length": m.max_completion_length,
        }

    def _critic(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        m, t = job.method, job.training
        assert isinstance(m, PPO)
        lr = m.critic_learning_rate or t.learning_rate
        o = {
            "critic.enable": True,
            "critic.strategy": "fsdp2",
            "critic.model.path": job.model.name_or_path,
            "critic.model.trust_remote_code": job.model.trust_remote_code,
            "critic.optim.lr": lr,
            **self._adam(job, "critic.optim", notes),
            "critic.ppo_micro_batch_size_per_gpu": t.micro_batch_size,
            "critic.model.enable_gradient_checkpointing": t.gradient_checkpointing,
            "algorithm.gamma": m.gamma,
            "algorithm.lam": m.lam,
        }
        o.update(self._padding_free(job, "critic.model", notes))
        if t.max_tokens_per_micro_batch is not None:  # critic.use_dynamic_bsz follows the actor's; its budget does not
            o["critic.ppo_max_token_len_per_gpu"] = t.max_tokens_per_micro_batch
        o.update(self._engine(job, "critic.fsdp"))
        if m.critic_learning_rate is None:
            notes.append(
                Note("method.critic_learning_rate", "defaulted", f"critic.optim.lr={lr}: the actor's learning rate")
            )
        notes.append(
            Note(
                "method.name",
                "set",
                f"PPO: a critic initialized from the model (full fine-tune), GAE gamma={m.gamma} lambda={m.lam}",
            )
        )
        return o

    # shared sections --------------------------------------------------------------------

    def _mapping_notes(self, job: Job, notes: list[Note]) -> None:
        """data.message_keys / role_names are applied by the data conversion; vERL reads canonical messages."""
        d = job.data
        if d.message_keys or d.role_names:
            notes.append(
                Note(
                    "data.message_keys",
                    "set",
                    f"{DATA_MODULE} reads each message through message_keys={dict(d.message_keys)} and "
                    f"role_names={dict(d.role_names)} (ptsdk_runtime.canonical_messages) and writes role/content "
                    "messages for vERL",
                )
            )
        if "thinking" in d.message_keys:
            notes.append(
                Note(
                    "data.message_keys",
                    "set",
                    f"thinking ({d.message_keys['thinking']}) is written as each message's reasoning_content, which "
                    "vERL's dataset passes to the chat template with the message; messages without one carry "
                    "reasoning_content null (one parquet schema); the template decides whether it is rendered",
                )
            )

    def _model(self, job: Job, p: str, notes: list[Note]) -> dict[str, Any]:
        mdl, a, t = job.model, job.adapter, job.training
        o: dict[str, Any] = {
            f"{p}.path": mdl.name_or_path,
            f"{p}.trust_remote_code": mdl.trust_remote_code,
            f"{p}.enable_gradient_checkpointing": t.gradient_checkpointing,
        }
        # vERL defaults to flash_attention_2, which is rarely installed: sdpa unless the job names a kernel.
        attn = mdl.attn_implementation or "sdpa"
        o[f"+{p}.override_config.attn_implementation"] = attn
        if mdl.attn_implementation is None:
            notes.append(
                Note(
                    "model.attn_implementation",
                    "defaulted",
                    "sdpa (vERL's own default, flash_attention_2, needs flash-attn)",
                )
            )
        if not isinstance(a, FullFineTune):
            o[f"{p}.lora_rank"] = a.r
            o[f"{p}.lora_alpha"] = a.alpha
            o[f"{p}.target_modules"] = a.target_modules
            if a.init_path:
                o[f"{p}.lora_adapter_path"] = a.init_path
            elif starts_from_ptsdks_adapter(job):
                # vERL's FSDP engine loads a saved adapter with peft (PeftModel.from_pretrained, is_trainable=True:
                # verl/workers/engine/fsdp/transformer_impl.py _build_lora_module) instead of creating one.
                o[f"{p}.lora_adapter_path"] = START_ADAPTER
                notes.append(
                    Note(
                        "adapter.type",
                        "set",
                        f"{p}.lora_adapter_path={START_ADAPTER}: vERL loads ptsdk's starting adapter (made from the "
                        f"job's seed by the plan's first command) instead of drawing its own",
                    )
                )
            if a.dropout and o.get(f"{p}.lora_adapter_path") == START_ADAPTER:
                notes.append(
                    Note(
                        "adapter.dropout",
                        "set",
                        f"lora_dropout={a.dropout} in the starting adapter's config, which peft applies when vERL "
                        "loads it (vERL has no dropout setting of its own)",
                    )
                )
            elif a.dropout:
                notes.append(
                    Note(
                        "adapter.dropout",
                        "dropped",
                        f"vERL's FSDP LoRA has no dropout setting; {a.dropout} is not applied"
                        + (
                            " (the adapter at init_path keeps the lora_dropout of its own config)"
                            if a.init_path
                            else ""
                        ),
                    )
                )
        return o

    def _engine(self, job: Job, p: str) -> dict[str, Any]:
        d, t = job.distributed, job.training
        o: dict[str, Any] = {
            f"{p}.strategy": "fsdp2",
            f"{p}.model_dtype": MODEL_DTYPE[job.model.dtype],
            f"{p}.dtype": PRECISION[t.precision],
            # vERL's FSDP engine ignores `dtype` (only its Megatron engine reads it): its compute precision is
            # `mixed_precision.param_dtype`, bf16 unless set, so an fp32 job would silently compute in bf16.
            f"+{p}.mixed_precision": {"param_dtype": t.precision, "reduce_dtype": "fp32", "buffer_dtype": "fp32"},
            f"{p}.seed": t.seed,
        }
        if d.offload != "none":
            o[f"{p}.optimizer_offload"] = True
            o[f"{p}.param_offload"] = d.offload == "optimizer_and_params"
        if d.device == "cpu":
            o[f"{p}.use_torch_compile"] = False  # CPU smoke mode (cpu_smoke.py): torch.compile targets GPUs here
        return o

    def _optim(self, job: Job, p: str, notes: list[Note]) -> dict[str, Any]:
        t = job.training
        o: dict[str, Any] = {
            f"{p}.lr": t.learning_rate,
            f"{p}.lr_scheduler_type": SCHEDULERS.get(t.lr_scheduler, t.lr_scheduler),
            f"{p}.weight_decay": t.weight_decay,
            f"{p}.clip_grad": t.max_grad_norm,
        }
        if job.warmup_steps is not None:
            # vERL's scheduler steps once per rollout (steps_per_rollout optimizer steps)
            o[f"{p}.lr_warmup_steps"] = -(-job.warmup_steps // steps_per_rollout(job))
        else:
            o[f"{p}.lr_warmup_steps_ratio"] = t.warmup_ratio
        if t.lr_scheduler == "cosine":
            o[f"{p}.min_lr_ratio"] = t.min_lr_ratio  # vERL's cosine: lr x max(min_lr_ratio, cosine factor)
        o.update(self._adam(job, p, notes))
        return o

    def _token_batching(self, job: Job, p: str, key: str, notes: list[Note]) -> dict[str, Any]:
        """training.max_tokens_per_micro_batch as vERL's dynamic batch size: micro-batches of whole sequences up to
        that many tokens per GPU (vERL's rearrange_micro_batches), the optimizer step unchanged."""
        n = job.training.max_tokens_per_micro_batch
        if n is None:
            return {f"{p}.use_dynamic_bsz": False}
        notes.append(
            Note(
                "training.max_tokens_per_micro_batch",
                "set",
                f"{p}.use_dynamic_bsz=true, {p}.{key}={n}: vERL fills each GPU's micro-batches with whole sequences "
                f"up to {n} tokens (balanced by length); training.micro_batch_size is not used for training",
            )
        )
        return {f"{p}.use_dynamic_bsz": True, f"{p}.{key}": n}

    def _padding_free(self, job: Job, p: str, notes: list[Note]) -> dict[str, Any]:
        """training.padding_free as vERL's use_remove_padding (on by default in vERL's model configs: set only when
        the job asks, so that existing translations are unchanged)."""
        if not job.training.padding_free:
            return {}
        if not any(n.field == "training.padding_free" for n in notes):
            notes.append(
                Note(
                    "training.padding_free",
                    "set",
                    f"{p}.use_remove_padding=true: vERL unpads each micro-batch into one row with per-sequence "
                    "position ids (varlen attention with flash_attention_2)",
                )
            )
        return {f"{p}.use_remove_padding": True}

    def _adam(self, job: Job, p: str, notes: list[Note]) -> dict[str, Any]:
        """Adam's betas and epsilon, set only where the job moves them off torch's defaults (vERL's build_optimizer
        passes optim.betas to AdamW, and optim.override_optimizer_config as further AdamW arguments)."""
        t = job.training
        o: dict[str, Any] = {}
        if (t.adam_beta1, t.adam_beta2) != (0.9, 0.999):
            o[f"{p}.betas"] = [t.adam_beta1, t.adam_beta2]
        if t.adam_epsilon != 1e-8:
            o[f"{p}.override_optimizer_config"] = {"eps": t.adam_epsilon}
        if o and not any(n.field == "training.adam_beta1" for n in notes):
            notes.append(
                Note(
                    "training.adam_beta1",
                    "set",
                    f"torch AdamW betas=({t.adam_beta1}, {t.adam_beta2}), eps={t.adam_epsilon}: optim.betas and "
                    "optim.override_optimizer_config.eps",
                )
            )
        return o

    def _trainer(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d, out = job.training, job.distributed, job.output
        o: dict[str, Any] = {
            "trainer.project_name": "ptsdk",
            "trainer.experiment_name": job.name or "job",
            "trainer.logger": ["console", "file", *(REPORT_TO[r] for r in out.report_to)],
            "trainer.nnodes": d.nodes,
            "trainer.n_gpus_per_node": d.gpus_per_node,
            "trainer.device": "cpu" if d.device == "cpu" else "cuda",
            "trainer.default_local_dir": CHECKPOINTS,
            "trainer.resume_mode": "disable",
            "trainer.save_freq": out.save_steps or -1,
            "trainer.test_freq": out.eval_steps or -1,
        }
        for key, per_epoch in (("trainer.save_freq", out.saves_per_epoch), ("trainer.test_freq", out.evals_per_epoch)):
            if per_epoch == 1:  # static_problems refuses other counts, and RL
                # vERL's SFT trainer sets the cadence to its own steps per epoch (len(train_dataloader)).
                o[key] = AFTER_EACH_EPOCH
                field = "output.saves_per_epoch" if key.endswith("save_freq") else "output.evals_per_epoch"
                notes.append(Note(field, "set", f"{key}={AFTER_EACH_EPOCH}: vERL's SFT trainer, once per epoch"))
        spr = steps_per_rollout(job)
        if spr > 1:
            o["trainer.save_freq"] = (out.save_steps or -spr) // spr
            o["trainer.test_freq"] = (out.eval_steps or -spr) // spr
        if lays_out_epochs(job):
            # One pass over every laid-out epoch: max_steps, or all the laid-out steps (total_training_steps null:
            # vERL takes len(train_dataloader) x total_epochs).
            o["trainer.total_training_steps"] = t.max_steps
            o["trainer.total_epochs"] = 1
        elif t.max_steps is not None:
            o["trainer.total_training_steps"] = t.max_steps // spr
            # vERL stops at total_training_steps or after total_epochs (default 4), whichever comes first;
            # an epoch holds at least one step, so max_steps epochs never stop the run early.
            o["trainer.total_epochs"] = t.max_steps // spr
        else:
            o["trainer.total_epochs"] = int(t.epochs or 1)
        if spr > 1:
            notes.append(
                Note(
                    "training.max_steps",
                    "derived",
                    f"vERL counts its steps (total_training_steps, save_freq, test_freq, the learning-rate "
                    f"schedule) in rollouts of {spr} optimizer steps: ptsdk's step counts divided by {spr}; the "
                    "learning rate is constant within a rollout",
                )
            )
        if "wandb" not in out.report_to:
            notes.append(
                Note(
                    "output.report_to",
                    "set",
                    f"trainer.logger={o['trainer.logger']}: no wandb (vERL's default) "
                    f"unless report_to asks; metrics from vERL's file logger ({METRICS_FILE})",
                )
            )
        # vERL's own Tracking (verl/utils/tracking.py) starts each logger of trainer.logger; tracking_env keeps them
        # local. It names W&B's run after trainer.experiment_name and hands it vERL's whole config.
        notes += tracking_notes(
            job,
            {
                "tensorboard": "trainer.logger and TENSORBOARD_DIR",
                "wandb": "trainer.logger and WANDB_MODE=offline, WANDB_DIR (project: trainer.project_name, ptsdk)",
                "trackio": "trainer.logger and TRACKIO_DIR (project: trainer.project_name, ptsdk)",
            },
            "the run is named after the job (trainer.experiment_name), tagged with the job's hash (W&B: "
            "ptsdk-job-<sha256>), with vERL's whole config",
        )
        notes.append(
            Note(
                "distributed.gpus_per_node",
                "derived",
                f"trainer.n_gpus_per_node={d.gpus_per_node}, nnodes={d.nodes} (vERL's default is 8 GPUs)",
            )
        )
        if out.logging_steps != 1:
            notes.append(Note("output.logging_steps", "dropped", "vERL logs every step"))
        notes.append(
            Note(
                "training.precision",
                "set",
                f"mixed_precision.param_dtype={t.precision} on every FSDP engine (vERL computes in bf16 unless "
                "told; its `dtype` setting is read by the Megatron engine only), gradients reduced in fp32",
            )
        )
        return o

    def effective(self, job: Job, o: dict[str, Any]) -> dict[str, Any]:
        """What vERL will really use, in ptsdk's units (for parity tables)."""
        sft, t = job.method.family == "sft", job.training
        optim = "optim" if sft else "actor_rollout_ref.actor.optim"
        micro = o["data.micro_batch_size_per_gpu"] if sft else o["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"]
        adapter = job.adapter
        laid_out = lays_out_epochs(job)
        if not sft:
            order = data_order(self.name, job, t.shuffle)
        elif laid_out:
            order = owned_order(job) if t.shuffle else "file order"
        elif t.shuffle:
            order = f"shuffled by verl (seed {SFT_SAMPLER_SEED})"
        else:
            order = "file order (first epoch; later epochs shuffled by verl)"
        extra: dict[str, Any] = {}
        if laid_out and t.shuffle:
            order_source = (
                f"{OWNED_ORDER_SOURCE} ({DATA_MODULE} lays out every epoch for vERL's one-pass sampler, short last "
                "steps filled with rows without loss tokens)"
            )
        elif laid_out:
            order_source = (
                f"training.shuffle: false: {DATA_MODULE} lays out every epoch in the file's order for vERL's "
                f"one-pass sampler (DistributedSampler, seed {SFT_SAMPLER_SEED}), short last steps filled with rows "
                "without loss tokens"
            )
        elif sft:
            order_source = (
                f"vERL's SFT sampler always shuffles (DistributedSampler, seed {SFT_SAMPLER_SEED}); for shuffle: false "
                f"{DATA_MODULE} lays the rows out so that its first epoch reads them in file order; ptsdk's order "
                "needs one pass over all epochs, which output.saves_per_epoch / evals_per_epoch (vERL's "
                "after_each_epoch) rule out"
            )
        else:
            order_source = "vERL's sampler, seeded with data.seed"
        sources = {
            "data_order": order_source,
            "loss_mask": "vERL's SFT dataset applies the chat template to every record, trains on assistant turns",
            "truncation": "vERL truncates SFT sequences at the end (right) and RL prompts at the start (left)",
            "loss_normalization": "vERL's sft_loss divides by the loss tokens of the whole global batch "
            "(every micro-batch and GPU)"
            if sft
            else "vERL's actor.loss_agg_mode",
            "adapter_init": f"{OWNED_ADAPTER_SOURCE} (vERL: model.lora_adapter_path)"
            if starts_from_ptsdks_adapter(job)
            else "vERL creates the adapter with peft after seeding",
            "tokenized_data_sha": f"{DATA_MODULE} tokenizes the converted rows with vERL's own SFT dataset class",
        }
        if o[f"{optim}.weight_decay"]:
            extra["weight_decay_scope"] = "every parameter"
            sources["weight_decay_scope"] = (
                "vERL's build_optimizer gives torch AdamW all parameters in one group (the HF Trainer exempts "
                "biases and norm weights)"
            )
        return Effective.from_job(
            job,
            micro_batch=micro,
            gradient_accumulation=job.gradient_accumulation_steps,
            learning_rate=o[f"{optim}.lr"],
            lr_scheduler=o[f"{optim}.lr_scheduler_type"],
            warmup=o.get(f"{optim}.lr_warmup_steps", o.get(f"{optim}.lr_warmup_steps_ratio")),
            max_length=o["data.max_length"] if sft else None,
            truncation="keep_start" if sft else "keep_end (prompts)",
            packing=False,
            loss_mask="completion",
            data_order=order,
            # torch.optim.AdamW with betas (0.9, 0.999) and eps 1e-8: the optimizer transformers calls adamw_torch.
            optimizer="adamw_torch",
            weight_decay=o[f"{optim}.weight_decay"],
            max_grad_norm=o[f"{optim}.clip_grad"],
            adapter_init=None
            if adapter.type == "full"
            else (
                "saved adapter"
                if getattr(adapter, "init_path", None)
                else (owned_adapter(job) if starts_from_ptsdks_adapter(job) else "seeded random")
            ),
            loss_normalization=LOSS_NORMALIZATION["tokens"] if sft else o["actor_rollout_ref.actor.loss_agg_mode"],
            load_dtype={"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[MODEL_DTYPE[job.model.dtype]],
            attn_implementation=job.model.attn_implementation or "sdpa",
            sources={
                **sources,
                "load_dtype": "vERL's engine model_dtype (verl/workers/config/engine.py: fp32 by default; "
                "model.dtype auto loads fp32, not the checkpoint's dtype)",
                "attn_implementation": "override_config.attn_implementation "
                "(sdpa when model.attn_implementation is unset)",
            },
            extra=extra,
        ).to_dict()

    # --- native check, after the run -----------------------------------------------------

    def check_request(self, plan: Plan, workdir: Path) -> dict[str, Any]:
        """The harness request plus what check_verl.py needs: SFT or RL, the data spec, a local model or not."""
        job = plan.job
        assert job is not None, "a vERL plan carries its job"
        return {
            **super().check_request(plan, workdir),
            "kind": "sft" if job.method.family == "sft" else "rl",
            "data_spec": DATA_SPEC,
            "local_model": Path(job.model.name_or_path).is_dir(),
        }

    def resume(self, plan: Plan, run_dir: Path) -> Plan:
        """vERL's own resume: trainer.resume_mode=auto continues from the last checkpoint under checkpoints/.
        Its file logger truncates its file, so the resumed run logs to a new one."""
        if self.resume_step(run_dir) is None:  # resume_mode=auto would silently start over
            raise no_checkpoint_error(self.name, plan.job, run_dir)
        args = [a for a in plan.args if not a.startswith("trainer.resume_mode=")] + ["trainer.resume_mode=auto"]
        n = len(list((run_dir / "logs").glob("verl_metrics*.jsonl")))
        env = {**plan.env, "VERL_FILE_LOGGER_PATH": METRICS_FILE.replace(".jsonl", f".resume{n}.jsonl")}
        return replace(plan, args=args, env=env, prepare=[])

    def resume_step(self, run_dir: Path) -> int | None:
        """The step of vERL's last checkpoint (checkpoints/latest_checkpointed_iteration.txt, which vERL writes
        after the checkpoint itself)."""
        try:
            text = (run_dir / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def parse_metrics(self, run_dir: Path) -> Iterator[Any]:
        return verl_metric_records(
            sorted((run_dir / "logs").glob("verl_metrics*.jsonl"), key=_resume_order), filler_tokens(run_dir)
        )

    def artifacts_problems(self, run_dir: Path) -> list[str]:
        return model_dir_problems(run_dir)

    def import_native(self, source: Path) -> ImportResult:
        """A vERL launch script (``python3 -m verl.trainer.main_ppo key=value ...``) as a ptsdk job (importer.py)."""
        from ptsdk.backends.verl.importer import import_verl

        return import_verl(self, source)


def starts_from_ptsdks_adapter(job: Job) -> bool:
    """An SFT LoRA job that names no adapter starts from ptsdk's seeded one (kit.owns_start_adapter), which vERL's SFT
    engine loads from model.lora_adapter_path. RL keeps vERL's own adapter: its rollout engines' LoRA sync from a
    loaded adapter is untested here (RL needs GPUs)."""
    return job.method.family == "sft" and owns_start_adapter(job)


def _rl_length(job: Job) -> int | None:
    """The longest RL sequence vERL trains on (prompt plus completion), if the prompt is bounded."""
    m = rl_method(job)
    return None if m.max_prompt_length is None else m.max_prompt_length + m.max_completion_length


def reward_model_input(job: Job) -> list[str]:
    """A local reward model folder, which a container must see too."""
    path = getattr(job.method, "reward_model", None)
    return [path] if path and path.startswith("/") and Path(path).exists() else []


def _resume_order(path: Path) -> int:
    stem = path.stem  # verl_metrics or verl_metrics.resumeN
    return int(stem.rsplit("resume", 1)[1]) + 1 if "resume" in stem else 0


def filler_tokens(run_dir: Path) -> dict[int, int]:
    """The tokens of the filler rows in each optimizer step (layout ``epochs``: data/train_layout.json), which
    vERL counts in train/global_tokens although no loss falls on them; empty when there are none or their token
    count is unknown (the fingerprint counts them; it needs a local model)."""
    try:
        layout = json.loads((run_dir / LAYOUT_FILE).read_text())
        tokens = int(layout["filler_row_tokens"])
        return {int(step): int(rows) * tokens for step, rows in layout["filler_rows"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def verl_metric_records(paths: list[Path], fillers: dict[int, int] | None = None) -> Iterator[Any]:
    """vERL's file-logger lines ({"step": N, "data": {...}}) as ptsdk MetricRecords; a resumed run's
    later lines replace the earlier ones for the same step. `fillers`: tokens of each step's filler rows
    (:func:`filler_tokens`), left out of the step's token count so it counts the rows the Trainer would read."""
    fillers = fillers or {}
    from ptsdk.metrics import MetricRecord

    by_step: dict[int, dict[str, Any]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                raw = json.loads(line)
                by_step.setdefault(int(raw["step"]), {}).update(raw.get("data") or {})
    tokens, wall = 0, 0.0
    for step in sorted(by_step):
        data = dict(by_step[step])

        def take(*keys: str, data: dict[str, Any] = data) -> Any:
            for key in keys:
                if key in data:
                    return data.pop(key)
            return None

        val = take("val/loss")
        step_tokens = take("train/global_tokens", "perf/total_num_tokens")
        if step_tokens is not None and step in fillers:
            step_tokens -= fillers[step]
        tokens += int(step_tokens or 0)
        # RL logs each step's seconds (SFT logs none: its trainer never times its steps); vERL's own
        # perf/throughput is per GPU, so tokens/s is computed from the step's tokens and time.
        seconds = data.get("timing_s/step")
        wall += float(seconds or 0)
        record = MetricRecord(
            step=step,
            kind="train",
            epoch=take("train/epoch", "training/epoch"),
            tokens_seen=tokens if step_tokens is not None else None,
            loss=take("train/loss", "actor/pg_loss"),
            learning_rate=take("train/lr", "actor/lr"),
            grad_norm=take("train/grad_norm", "actor/grad_norm"),
            reward=take("critic/score/mean"),
            tokens_per_s=step_tokens / seconds if step_tokens is not None and seconds else None,
            wall_time_s=wall if seconds is not None else None,
            extra=data,
        )
        if record.loss is not None or record.reward is not None:
            yield record
        if val is not None:
            yield MetricRecord(step=step, kind="eval", loss=val)


def has_eval(job: Job) -> bool:
    """Evaluation data: data.eval, or the share of the training data that data.eval_split holds out."""
    return job.data.eval is not None or job.data.eval_split is not None


def data_spec(job: Job, args: list[str]) -> dict[str, Any]:
    """What verl_data.py converts: each split's source, its parquet target, the record format and renames.

    SFT also: the row layout of the training split (``epochs`` with its ``order`` when :func:`lays_out_epochs`;
    else ``sampler_file_order`` when the job keeps the file's order, ``file`` when vERL shuffles: see verl_data.py),
    and the data and model overrides vERL's SFT dataset is built from, for the tokenized data's fingerprint. RL: the
    reward style recorded with each row."""
    kind = "sft" if job.method.family == "sft" else "rl"
    splits: dict[str, dict[str, Any]] = {
        "train": {"path": job.data.train.path, "max_samples": job.data.train.max_samples, "out": TRAIN_PARQUET}
    }
    if job.data.eval is not None:
        splits["eval"] = {"path": job.data.eval.path, "max_samples": job.data.eval.max_samples, "out": EVAL_PARQUET}
    elif job.data.eval_split is not None:
        # verl_data.py holds out this fraction of the training records (datasets' train_test_split, seeded).
        splits["train"]["hold_out"] = {
            "fraction": job.data.eval_split,
            "seed": job.training.seed,
            "out": EVAL_PARQUET,
            "name": "eval",
        }
    spec: dict[str, Any] = {"kind": kind, "format": job.data.format, "columns": dict(job.data.columns)}
    if job.data.message_keys or job.data.role_names:  # verl_data.py reads messages through them
        spec["message_keys"] = {str(k): v for k, v in job.data.message_keys.items()}
        spec["role_names"] = dict(job.data.role_names)
    if kind == "sft":
        t = job.training
        if lays_out_epochs(job):
            splits["train"]["layout"] = "epochs"
            # What verl_data.epoch_layout needs: ptsdk's seed (None: the file's order), the run's length, and the
            # Hugging Face Trainer's batches it reproduces (micro-batch per process, processes, global batch).
            spec["order"] = {
                "seed": t.seed if t.shuffle else None,
                "epochs": None if t.max_steps is not None else int(t.epochs or 1),
                "max_steps": t.max_steps,
                "micro_batch": t.micro_batch_size,
                "world_size": job.distributed.data_parallel_size,
                "global_batch": t.global_batch_size,
            }
        else:
            splits["train"]["layout"] = "file" if t.shuffle else "sampler_file_order"
        spec["sampler_seed"] = SFT_SAMPLER_SEED
        spec["fingerprint_overrides"] = [a for a in args if a.lstrip("+").startswith(("data.", "model."))]
    else:
        m = rl_method(job)
        spec["reward_style"] = "rule" if m.rewards else "model"
        if job.data.images is not None:
            spec["images"] = {"column": job.data.images.column, "root": job.data.images.root, "key": IMAGE_COLUMN}
    return {**spec, "splits": splits}


def processor_class(model: str) -> str | None:
    """The processor class a local model folder names (processor_config.json, preprocessor_config.json or
    tokenizer_config.json: what AutoProcessor reads); None for a hub id or a folder that names none."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        try:
            found = json.loads((folder / name).read_text(encoding="utf-8")).get("processor_class")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(found, str) and found:
            return found
    return None


def image_problems(job: Job) -> list[str]:
    """An images job whose model's processor vERL 0.9.1 does not load (hf_processor turns it into None and its
    dataset then stops on the first image): named before anything starts, with the backends that take images."""
    if job.data.images is None:
        return []
    found = processor_class(job.model.name_or_path)
    if found is None or found in VERL_PROCESSORS:
        return []
    from ptsdk.plugins.manager import get_backends  # the installed backends, for the alternatives

    key = ("feature", f"images:{job.method.name}")
    others = sorted(n for n, cls in get_backends().items() if n != "verl" and key in {c.key for c in cls.capabilities})
    return [
        f"model.name_or_path: vERL 0.9.1 loads only {', '.join(VERL_PROCESSORS)} processors "
        f"(verl/utils/tokenizer/tokenizer.py:182-236); {job.model.name_or_path} has a {found}, which vERL drops, so "
        f"its dataset stops on the first image (rl_dataset.py:323); use a model of those families, or a backend that "
        f"takes images in {job.method.name} records: {', '.join(others) or 'none installed'}"
    ]


def hydra_value(value: Any) -> str:
    """A Python value as a Hydra override value (lists as [a,b], dicts as {k:v}, None as null, odd strings quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    safe = text and all(c.isalnum() or c in "_-./:@+~" for c in text) and text not in ("true", "false", "null")
    if safe:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
