"""TRL: a ptsdk job as a TRL config YAML, run by train_trl.py with TRL's own parser and trainers."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import yaml
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import ImportResult, Note, Plan, PlanFile
from ptsdk.plugins.kit import (
    HF_OPTIMIZERS,
    OWNED_ADAPTER_SOURCE,
    OWNED_NORMALIZATION_SOURCE,
    OWNED_ORDER_SOURCE,
    Effective,
    TrainerBackend,
    apply_passthrough,
    chat_template_text,
    common_env,
    data_order,
    hf_loss_normalization,
    hf_training_args,
    launcher_for,
    local_inputs,
    no_checkpoint_error,
    owned_adapter,
    owned_env,
    owned_order,
    owns_order,
    owns_start_adapter,
    passthrough_problems,
    rendezvous_problems,
    repeat_sampler_order,
    runtime_file,
    tracking_env,
    tracking_files,
    tracking_notes,
)
from ptsdk.plugins.runtime import START_ADAPTER, TRACKING_JOB
from ptsdk.spec import Job
from ptsdk.spec.method import DPO_LOSSES, GRPO_LOSSES, _OnlineRL

HERE = Path(__file__).resolve().parent
T, V = Verified.trained, Verified.validated
TESTS = "tests/backends/test_trl.py::"
#: The GRPO example run on TRL and Axolotl side by side: the evidence for GRPO and reward functions on both.
GRPO_EXAMPLE = "tests/backends/test_compare_backends.py::test_trl_and_axolotl_agree_on_the_grpo_example"

# ptsdk method -> (TRL method, fixed TRL keys)
METHOD_MAP: dict[str, tuple[str, dict[str, Any]]] = {
    "sft": ("sft", {}),
    "dpo": ("dpo", {}),
    "ipo": ("dpo", {"loss_type": ["ipo"]}),
    "kto": ("kto", {}),
    "orpo": ("orpo", {}),
    "cpo": ("cpo", {}),
    "simpo": ("cpo", {"loss_type": "simpo"}),
    "grpo": ("grpo", {}),
    "rloo": ("rloo", {}),
}
CONFIG = "trl_config.yaml"
PARSER_TEST = "test_every_loss_variant_passes_trl_parser"
SFT_TEST = "test_sft_instruction_records_with_new_settings"
RL_TEST = "test_grpo_rollout_settings"
ROLLOUT_TEST = "test_rollout_settings_pass_trl_parser"
#: Where each online RL trainer puts its KL penalty (beta), and the estimator: GRPO adds
#: exp(ref - logp) - (ref - logp) - 1 (k3) per token to the loss (trl/trainer/grpo_trainer.py:3098-3150); RLOO
#: subtracts beta x the summed log-ratio (k1) from each sequence's reward (rloo_trainer.py:1664-1673).
KL_OF = {"grpo": ("loss", "k3"), "rloo": ("reward", "k1")}
DPO_TRAINED = ("sigmoid", "robust", "hinge")
DEEPSPEED = "ds_config.json"


class TRLBackend(TrainerBackend):
    name = "trl"
    framework = "trl"
    description = "Hugging Face TRL: SFT, DPO-family, KTO, ORPO, CPO/SimPO, GRPO and RLOO trainers."
    verified_with: ClassVar[dict[str, str]] = {
        "trl": "1.16.0",
        "transformers": "5.24.0",
        "torch": "2.13.0",
        "peft": "0.21.2",
    }
    install_hint = "ptsdk env create trl   (or: pip install torch==2.13.0 && pip install trl==1.16.0 peft)"
    #: TRL keys the job owns even where ptsdk sets nothing: backend_options refuses them unless ptsdk_override
    #: names them.
    passthrough_owned: ClassVar[dict[str, str]] = {
        "method": "method.name",
        "model_name_or_path": "model.name_or_path",
        "dtype": "model.dtype",
        "train_path": "data.train.path",
        "eval_path": "data.eval.path",
        "bf16": "training.precision",
        "fp16": "training.precision",
        "use_peft": "adapter.type",
        "load_in_4bit": "model.quantization",
        "load_in_8bit": "model.quantization",
        "use_cpu": "distributed.device",
        "deepspeed": "distributed.strategy",
        "fsdp": "distributed.strategy",
        "fsdp_config": "distributed.strategy",
        "output_dir": "output.dir",
    }
    reported_packages = ("peft", "accelerate", "datasets")
    warm_modules = ("torch",)  # its first command is a script: `ptsdk run` imports torch while checking the job
    check_script = HERE / "check_trl.py"
    capabilities = (
        *caps("method", "sft", T, TESTS + "test_sft_full"),
        *caps("method", "dpo", T, TESTS + "test_dpo_lora"),
        *caps("method", "ipo", T, TESTS + "test_preference_variants"),
        *caps("method", "kto", T, TESTS + "test_kto_lora"),
        *caps("method", "orpo", T, TESTS + "test_orpo_full"),
        *caps("method", "cpo simpo", T, TESTS + "test_preference_variants"),
        *caps("method", "grpo", T, GRPO_EXAMPLE),
        *caps("method", "rloo", T, TESTS + "test_rloo_reward_function"),
        *caps("loss", "dpo:sigmoid", T, TESTS + "test_dpo_lora"),
        *caps("loss", "dpo:robust dpo:hinge", T, TESTS + "test_preference_variants"),  # with sigmoid: DPO_TRAINED
        *caps("loss", " ".join(f"dpo:{v}" for v in DPO_LOSSES if v not in DPO_TRAINED), V, TESTS + PARSER_TEST),
        *caps("loss", "cpo:sigmoid", T, TESTS + "test_preference_variants"),
        *caps("loss", "cpo:hinge cpo:ipo", V, TESTS + PARSER_TEST),
        *caps("loss", "grpo:grpo", T, GRPO_EXAMPLE),
        *caps("loss", " ".join(f"grpo:{v}" for v in GRPO_LOSSES if v != "grpo"), V, TESTS + PARSER_TEST),
        *caps("adapter", "full", T, TESTS + "test_sft_full"),
        *caps("adapter", "lora", T, TESTS + "test_sft_lora"),
        *caps(
            "adapter",
            "qlora",
            T,
            TESTS + "test_quantized_base_trains_on_cpu",
            note="trained on CPU (bitsandbytes 0.50's CPU kernels)",
        ),
        *caps(
            "feature",
            "quantized_cpu:4bit quantized_cpu:8bit",
            T,
            TESTS + "test_quantized_base_trains_on_cpu",
            note="bitsandbytes 0.50's CPU kernels: Linear4bit / Linear8bitLt layers in the trained model",
        ),
        *caps("strategy", "ddp", T, TESTS + "test_sft_ddp_two_processes"),
        *caps("strategy", "fsdp", V, TESTS + "test_qlora_and_fsdp_pass_trl_parser", note="FSDP needs GPUs"),
        *caps(
            "strategy",
            "deepspeed_zero1 deepspeed_zero2 deepspeed_zero3",
            V,
            TESTS + "test_deepspeed_passes_trl_parser",
            note="DeepSpeed needs GPUs",
        ),
        *caps("topology", "multi_node", V, TESTS + "test_multi_node_launcher_passes_torchrun_parser"),
        *caps("device", "cpu", T, TESTS + "test_sft_full"),
        *caps("reward", "functions", T, GRPO_EXAMPLE),
        *caps("reward", "model", T, TESTS + "test_grpo_reward_model"),
        *caps(
            "feature",
            "loss_per_micro_batch",
            T,
            "tests/backends/test_compare_backends.py::test_loss_normalization_per_micro_batch_agrees",
            note="SFT: ptsdk_runtime.own_the_optimization turns transformers' model_accepts_loss_kwargs off",
        ),
        *caps("feature", "packing", T, TESTS + "test_sft_packing"),
        *caps("feature", "kl_in_loss:k3", T, TESTS + RL_TEST, note="GRPO (beta; k3 x importance ratio)"),
        *caps("feature", "kl_in_reward:k1", T, TESTS + "test_rloo_reward_function", note="RLOO (beta, per sequence)"),
        *caps("feature", "adam_betas min_lr eval_split per_epoch_cadence", T, TESTS + SFT_TEST),
        *caps("feature", "instruction_records", T, TESTS + SFT_TEST, note="SFT, Axolotl's Alpaca text"),
        *caps(
            "feature",
            "special_tokens",
            T,
            TESTS + SFT_TEST,
            note="SFT trained; every trainer reads the tokenizer's pad/eos, set before it starts",
        ),
        *caps("feature", "padding_free", T, TESTS + "test_sft_padding_free_matches_padded", note="SFT"),
        *caps(
            "feature", "dataset_subset", V, TESTS + "test_dataset_subset_loads", note="datasets' load_dataset(name=)"
        ),
        *caps(
            "feature",
            "unlimited_prompt several_steps_per_rollout epochs_per_rollout",
            T,
            TESTS + RL_TEST,
            note="GRPO trained, RLOO parsed",
        ),
        *caps(
            "feature",
            "message_mapping",
            T,
            TESTS + "test_sft_sharegpt_messages_with_thinking",
            note="every message column; thinking -> reasoning_content (trained on where the chat template renders "
            "it); preference pairs in test_preference_variants",
        ),
        *caps(
            "feature",
            "implicit_prompt",
            T,
            TESTS + "test_preference_variants",
            note="TRL's own extract_prompt: DPO and CPO trained (IPO runs DPOTrainer, SimPO CPOTrainer; ORPOTrainer "
            "calls the same maybe_extract_prompt, orpo_trainer.py:362)",
        ),
        *caps(
            "feature",
            "images:sft",
            T,
            TESTS + "test_vlm_sft",
            note="SFTTrainer with the model's processor: an images column (sft_trainer.py:761-767), string contents "
            "or {type: image} parts (trl/data_utils.py:32-122); tiny LLaVA trained, full and LoRA (test_vlm_sft_lora)",
        ),
        *caps(
            "feature",
            "images:dpo",
            T,
            TESTS + "test_vlm_dpo",
            note="DPOTrainer's DataCollatorForVisionPreference (dpo_trainer.py:740-745, 786-790); tiny LLaVA trained",
        ),
        *caps(
            "feature",
            "images:grpo",
            T,
            TESTS + "test_vlm_grpo",
            note="GRPOTrainer puts each row's images into its conversational prompt (grpo_trainer.py:2400-2423) and "
            "generates with the processor; tiny LLaVA trained",
        ),
        *caps("rollout", "vllm", V, TESTS + ROLLOUT_TEST, note="vLLM needs GPUs"),
        *caps("feature", "rollout_server", V, TESTS + ROLLOUT_TEST, note="trl vllm-serve"),
        *caps(
            "feature",
            "tracking_tensorboard tracking_mlflow tracking_wandb tracking_trackio",
            T,
            "tests/backends/test_tracking.py::test_trl_run_in_every_tracker",
            note="the Trainer's own callbacks; MLflow a local file store, W&B offline, Trackio a local database",
        ),
    )

    # --- refusals ----------------------------------------------------------------------

    def static_problems(self, job: Job) -> list[str]:
        out = list(super().static_problems(job))
        trl_method = METHOD_MAP.get(job.method.name, (job.method.name, {}))[0]
        if job.training.packing and job.method.name != "sft":
            # TRL 1.16's only `packing` field is SFTConfig's (trl/trainer/sft_config.py:222). DPOConfig has
            # `padding_free` (dpo_config.py:210), which DPOTrainer turns off again with a warning since its
            # refactor (dpo_trainer.py:732-739); GRPO, RLOO, KTO, ORPO and CPO configs have neither, and TrlParser
            # refuses a config key no dataclass takes (trl/scripts/utils.py:353-357).
            out.append(
                f"training.packing: TRL {self.verified_with['trl']} packs sequences for SFT only; its "
                f"{trl_method} trainer has no packing (DPO's padding_free is switched off by "
                "DPOTrainer itself). Set packing: false"
            )
        out += self._new_field_problems(job) + self._image_problems(job)
        return out + rendezvous_problems(job, "torchrun") + passthrough_problems(self, job)

    def _image_problems(self, job: Job) -> list[str]:
        """What TRL's trainers refuse with images, and what ptsdk does not yet run with them."""
        if job.data.images is None:
            return []
        version, t = self.verified_with["trl"], job.training
        out = []
        if t.packing or t.padding_free:
            # sft_trainer.py:779-786: "Packing is not supported for vision datasets" (and padding-free).
            key = "packing" if t.packing else "padding_free"
            out.append(
                f"training.{key}: TRL {version} does not pack image records (sft_trainer.py:779-786); set {key}: false"
            )
        return out

    def _new_field_problems(self, job: Job) -> list[str]:
        """Settings of the spec that one TRL trainer honours and another does not."""
        m, t, o, version = job.method, job.training, job.output, self.verified_with["trl"]
        trl_method = METHOD_MAP.get(m.name, (m.name, {}))[0]
        out: list[str] = []
        if t.padding_free and m.name != "sft":
            # SFTConfig.padding_free (sft_config.py:238); DPOTrainer switches its own off again
            # (dpo_trainer.py:732-739); the other trainers' configs have no such field.
            out.append(
                f"training.padding_free: TRL {version} runs padding-free batches for SFT only; its {trl_method} "
                "trainer pads (DPO's padding_free is switched off by DPOTrainer itself). Set padding_free: false"
            )
        if t.max_tokens_per_micro_batch is not None:
            out.append(
                f"training.max_tokens_per_micro_batch: TRL {version} has no token-budget batching (each "
                "micro-batch is per_device_train_batch_size sequences); remove it and set "
                "training.micro_batch_size, or use a backend with dynamic batching"
            )
        if t.max_steps is not None:
            for key in ("saves_per_epoch", "evals_per_epoch"):
                n = getattr(o, key)
                if n is not None and n > 1:
                    # transformers reads a fractional save_steps/eval_steps as a share of the whole run
                    # (trainer_callback.py:156-166), which is a share of an epoch only when the run is given in epochs.
                    out.append(
                        f"output.{key}: TRL can do {n} per epoch only for a run given in training.epochs (a "
                        f"fraction of the run); with max_steps set output.{key.split('s_per')[0]}_steps, or "
                        f"{key}: 1 (the epoch strategy)"
                    )
        want = KL_OF.get(m.name)
        if isinstance(m, _OnlineRL) and want is not None:
            if m.kl_coef > 0 and (m.kl_placement, m.kl_estimator) != want:
                out.append(
                    f"method.kl_placement: TRL {version}'s {m.name} puts its KL penalty (beta) in the "
                    f"{want[0]} with the {want[1]} estimator; kl_placement {m.kl_placement} / kl_estimator "
                    f"{m.kl_estimator} it cannot. Set kl_placement: {want[0]} and kl_estimator: {want[1]}, or "
                    "kl_coef: 0"
                )
        r = job.rollout
        if r is not None and r.server is None:
            if not r.colocate:
                out.append(
                    "rollout.colocate: TRL runs vLLM on dedicated GPUs only as a separate server "
                    "(`trl vllm-serve`); start one and set rollout.server, or colocate: true"
                )
            if r.num_engines is not None:
                out.append(
                    "rollout.num_engines: TRL's colocated vLLM runs one engine per tensor-parallel group of the "
                    "training processes (world size / rollout.tensor_parallel_size); remove num_engines"
                )
        return out

    # --- translation -------------------------------------------------------------------

    def translate(self, job: Job) -> Plan:
        notes: list[Note] = []
        trl_method, fixed = METHOD_MAP[job.method.name]
        cfg: dict[str, Any] = {"method": trl_method}
        cfg.update(self._data(job, notes))
        cfg.update(self._model(job))
        cfg.update(self._training(job, notes))
        cfg.update(self._method(job, notes))
        cfg.update(fixed)
        cfg.update(self._output(job, notes))
        files = [PlanFile("train_trl.py", copy_from=str(HERE / "train_trl.py")), runtime_file()]
        files += tracking_files(job, self.name)
        if cfg.get("deepspeed") == DEEPSPEED:
            files.append(PlanFile(DEEPSPEED, content=json.dumps(deepspeed_config(job), indent=2) + "\n"))
        if cfg.get("tokenizer_chat_template") == "chat_template.jinja":
            files.append(PlanFile("chat_template.jinja", content=job.model.chat_template or ""))
        apply_passthrough(job, self.name, cfg, notes, owned=self.passthrough_owned)
        files.append(PlanFile(CONFIG, content=_yaml(cfg)))
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=["train_trl.py"],
            args=["--config", CONFIG],
            launcher=launcher_for(job),
            env={**common_env(job), **owned_env(job), **tracking_env(job, self.name)},
            native_config=CONFIG,
            notes=notes,
            effective=self.effective(job, cfg),
            inputs=_inputs(job),
            job=job,
        )

    def _data(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        data = job.data
        out: dict[str, Any] = {"train_path": data.train.path, "train_split": data.train.split}
        if data.train.subset:
            out["train_subset"] = data.train.subset
        if data.train.max_samples:
            out["max_train_samples"] = data.train.max_samples
        if data.eval is not None:
            out.update(eval_path=data.eval.path, eval_split=data.eval.split)
            if data.eval.subset:
                out["eval_subset"] = data.eval.subset
        if data.eval_split is not None:
            out["eval_holdout"] = data.eval_split
            notes.append(
                Note(
                    "data.eval_split",
                    "set",
                    f"eval_holdout={data.eval_split}: train_trl.py holds out that fraction of the training records "
                    f"(datasets' train_test_split, seed {job.training.seed}) after max_samples",
                )
            )
        if data.format == "instruction":
            out["instruction_records"] = True
            notes.append(
                Note(
                    "data.format",
                    "set",
                    "instruction_records: train_trl.py renders each Alpaca record's prompt with Axolotl's Alpaca "
                    "text (instruct style) and trains on output as the completion",
                )
            )
        renames = dict(data.columns)
        if data.images is not None:
            # TRL finds images in a column named images (sft_trainer.py:762, dpo_trainer.py:741).
            renames["images"] = data.images.column
            out["images"] = True
            if data.images.root:
                out["images_root"] = data.images.root
            notes.append(
                Note(
                    "data.images",
                    "set",
                    "images: train_trl.py loads the model's processor (AutoProcessor) as TRL's processing_class and "
                    "makes each image path absolute; TRL's vision collators open the files and place one image per "
                    "{type: image} part (before the first user turn's text for string contents)",
                )
            )
        renames = {canon: src for canon, src in renames.items() if canon != src}
        if renames:
            # TRL reads the canonical names (prompt/completion/messages/chosen/rejected/label, images).
            out["rename_columns"] = [f"{src}={canon}" for canon, src in sorted(renames.items())]
        out.update(self._messages(job, notes))
        if job.method.family != "rl":
            out["max_length"] = data.max_length
        if data.truncation == "drop" and job.method.family != "rl":
            notes.append(
                Note(
                    "data.truncation", "approximated", "TRL truncates long sequences (keep_start); it cannot drop them"
                )
            )
        if job.model.chat_template:
            if job.model.chat_template.endswith(".jinja"):
                out["tokenizer_chat_template"] = job.model.chat_template
            else:
                notes.append(Note("model.chat_template", "set", "inline template written as chat_template.jinja"))
                out["tokenizer_chat_template"] = "chat_template.jinja"
        return out

    def _messages(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        """Message key/role mappings and an implicit prompt: applied by train_trl.py before TRL sees the data."""
        data = job.data
        out: dict[str, Any] = {}
        if data.message_keys:
            out["message_keys"] = [f"{canon}={key}" for canon, key in sorted(data.message_keys.items())]
        if data.role_names:
            out["role_names"] = [f"{name}={role}" for name, role in sorted(data.role_names.items())]
        if out:
            notes.append(
                Note(
                    "data.message_keys",
                    "set",
                    "train_trl.py rewrites every message column (messages, prompt, completion, chosen, rejected) "
                    "to role/content with ptsdk_runtime.canonical_messages before TRL reads it; other message keys "
                    "are dropped",
                )
            )
        thinking = data.message_keys.get("thinking")
        if thinking:
            template = chat_template_text(job)
            renders = template is None or "reasoning_content" in template
            notes.append(
                Note(
                    "data.message_keys",
                    "set" if renders else "dropped",
                    f"thinking: each message's {thinking!r} reaches TRL's apply_chat_template as reasoning_content"
                    + (
                        ""
                        if renders
                        else "; this chat template never reads reasoning_content, so the reasoning is not trained on"
                    ),
                )
            )
        if data.prompt_in_answers:
            out["prompt_in_answers"] = True
            notes.append(
                Note(
                    "data.prompt_in_answers",
                    "set",
                    "TRL extracts the prompt itself: DPOTrainer runs trl's extract_prompt on data without a prompt "
                    "column, ORPO/CPO maybe_extract_prompt (the longest shared leading turns; for plain text the "
                    "longest shared prefix, a space before the answers going to them); train_trl.py drops any "
                    "prompt column so that TRL does",
                )
            )
        return out

    def _model(self, job: Job) -> dict[str, Any]:
        m, a = job.model, job.adapter
        out: dict[str, Any] = {
            "model_name_or_path": m.name_or_path,
            "dtype": m.dtype,
            "trust_remote_code": m.trust_remote_code,
        }
        if m.attn_implementation:
            out["attn_implementation"] = m.attn_implementation
        if m.pad_token:
            # The trainers read the tokenizer's pad token (SFT/DPO's own pad_token field is deprecated:
            # sft_config.py:297, dpo_config.py:350); train_trl.py sets it before the trainer starts.
            out["tokenizer_pad_token"] = m.pad_token
        if m.eos_token:
            # SFTConfig.eos_token also updates the model's eos ids (sft_trainer.py:728-746); the other trainers
            # read the tokenizer's (GRPO stops generation at it, grpo_trainer.py:409-416).
            out["eos_token" if job.method.name == "sft" else "tokenizer_eos_token"] = m.eos_token
        if a.type != "full":
            targets = a.target_modules
            out.update(
                use_peft=True,
                lora_r=a.r,
                lora_alpha=a.alpha,
                lora_dropout=a.dropout,
                lora_target_modules=targets if isinstance(targets, list) else "all-linear",
            )
            if a.init_path:
                out["adapter_init_path"] = a.init_path
            elif owns_start_adapter(job):
                # train_trl.py makes ptsdk's seeded starting adapter there first (ptsdk_runtime.make_start_adapter).
                out.update(adapter_init_path=START_ADAPTER, start_adapter_seed=job.training.seed)
        if m.quantization == "4bit":
            out.update(load_in_4bit=True, bnb_4bit_quant_type="nf4")
        elif m.quantization == "8bit":
            out["load_in_8bit"] = True
        return out

    def _training(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t, d = job.training, job.distributed
        out: dict[str, Any] = {
            **hf_training_args(job),
            "activation_checkpointing": t.gradient_checkpointing,
            "train_sampling_strategy": "random" if t.shuffle else "sequential",
        }
        if job.method.family == "rl" and not t.shuffle:
            # GRPOTrainer/RLOOTrainer sample through their own RepeatSampler, which shuffles unless
            # shuffle_dataset is off (grpo_trainer.py:1280-1316, rloo_trainer.py:887-923): train_sampling_strategy
            # alone leaves them shuffling.
            out["shuffle_dataset"] = False
        if job.method.name == "kto" and t.shuffle:
            # TRL's KTO estimates its KL term against neighbouring rows of a fixed-order batch.
            out["train_sampling_strategy"] = "sequential"
            notes.append(
                Note(
                    "training.shuffle",
                    "approximated",
                    "TRL's KTO reads the data in file order (its KL estimate "
                    "pairs neighbouring rows); shuffle the file beforehand",
                )
            )
        if (t.adam_beta1, t.adam_beta2, t.adam_epsilon) != (0.9, 0.999, 1e-8):
            out.update(adam_beta1=t.adam_beta1, adam_beta2=t.adam_beta2, adam_epsilon=t.adam_epsilon)
        if t.min_lr_ratio > 0:
            # transformers' cosine with a floor: factor * (1 - min_lr_rate) + min_lr_rate (optimization.py:326-334)
            out.update(lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": t.min_lr_ratio})
        if t.packing:
            out["packing"] = True
        if t.padding_free:
            out["padding_free"] = True
            if not t.packing:
                # SFTTrainer refuses padding_free with a max_length and no packing (sft_trainer.py:999-1004).
                out["max_length"] = None
                notes.append(
                    Note(
                        "data.max_length",
                        "approximated",
                        f"not enforced: TRL's padding-free batches without packing take max_length null "
                        f"(sft_trainer.py:999-1004); records longer than {job.data.max_length} tokens are kept whole",
                    )
                )
            notes.append(
                Note(
                    "training.padding_free",
                    "set",
                    "padding_free: the micro-batch is one row; transformers masks attention per sequence from the "
                    "restarting position ids (masking_utils.find_packed_sequence_indices), flash_attention_2 on GPUs",
                )
            )
        if d.device == "cpu":
            out["use_cpu"] = True  # several CPU processes get gloo from torchrun's environment
        if d.effective_strategy == "fsdp":
            out["fsdp"] = "full_shard auto_wrap" + (" offload" if d.offload != "none" else "")
            out["fsdp_config"] = {"version": 2}
        elif d.effective_strategy == "deepspeed":
            out["deepspeed"] = DEEPSPEED
        notes.append(
            Note(
                "training.gradient_checkpointing",
                "set",
                f"activation_checkpointing={t.gradient_checkpointing} (TRL's default is on)",
            )
        )
        notes.append(Note("training.optimizer", "set", _optimizer_note(t.optimizer, d.device)))
        return out

    def _method(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        m = job.method
        out: dict[str, Any] = {}
        if m.name == "sft":
            on_completion = m.loss_on == "completion"
            if job.data.format == "messages":
                out["assistant_only_loss"] = on_completion
                if on_completion:
                    notes.append(
                        Note(
                            "method.loss_on",
                            "set",
                            "assistant_only_loss: the chat template needs {% generation %} markers",
                        )
                    )
            else:
                out["completion_only_loss"] = on_completion
        elif m.name == "dpo":
            out.update(beta=m.beta, loss_type=[m.loss_type], label_smoothing=m.label_smoothing)
        elif m.name == "ipo":
            out["beta"] = m.beta
        elif m.name == "kto":
            out.update(beta=m.beta, desirable_weight=m.desirable_weight, undesirable_weight=m.undesirable_weight)
        elif m.name == "orpo":
            out["beta"] = m.beta
        elif m.name == "cpo":
            out.update(beta=m.beta, loss_type=m.loss_type, cpo_alpha=m.sft_weight)
        elif m.name == "simpo":
            out.update(beta=m.beta, simpo_gamma=m.gamma, cpo_alpha=m.sft_weight)
        elif m.family == "rl":
            out.update(
                num_generations=m.num_generations,
                max_completion_length=m.max_completion_length,
                temperature=m.temperature,
                beta=m.kl_coef,
                epsilon=m.clip_epsilon,
                reward_funcs=[*m.rewards, *([m.reward_model] if m.reward_model else [])],
            )
            if m.name == "grpo":
                out["loss_type"] = m.loss_type
            self._rollout(job, out, notes)
            if job.data.eval is not None or job.data.eval_split is not None:
                micro, world = job.training.micro_batch_size, job.distributed.world_size
                out["per_device_eval_batch_size"] = eval_batch = rl_eval_batch(micro, m.num_generations, world)
                notes.append(
                    Note(
                        "data.eval",
                        "derived",
                        f"per_device_eval_batch_size={eval_batch}: TRL needs per_device_eval_batch_size x "
                        f"{world} process(es) to be a multiple of num_generations={m.num_generations}; the "
                        f"smallest such size >= micro_batch_size={micro}",
                    )
                )
            if m.reward_model:
                notes.append(
                    Note(
                        "method.reward_model",
                        "set",
                        "last of reward_funcs: TRL loads it as AutoModelForSequenceClassification (num_labels=1) "
                        "with the policy's model_init_kwargs (dtype, attention, quantization) and its own tokenizer",
                    )
                )
            if m.max_prompt_length is not None and job.data.truncation == "drop":
                # GRPOConfig/RLOOConfig 1.16 have no prompt limit; train_trl.py drops the long prompts itself.
                out["drop_prompts_over"] = m.max_prompt_length
                notes.append(
                    Note(
                        "data.truncation",
                        "set",
                        f"drop_prompts_over={m.max_prompt_length}: train_trl.py drops records whose prompt is longer "
                        "(tokens as the trainer encodes it: chat template with generation prompt for messages)",
                    )
                )
            elif m.max_prompt_length is not None:
                notes.append(
                    Note(
                        "method.max_prompt_length",
                        "dropped",
                        f"TRL {self.verified_with['trl']} has no prompt-length limit for {m.name}; prompts are kept "
                        "whole (data.truncation: drop drops the longer ones instead)",
                    )
                )
        return out

    def _rollout(self, job: Job, out: dict[str, Any], notes: list[Note]) -> None:
        """Generation batch, passes per rollout, KL and the vLLM engine of GRPO/RLOO."""
        m, r = job.method, job.rollout
        assert isinstance(m, _OnlineRL)
        steps = "one generation batch per optimizer step"
        if m.rollout_batch_size is not None:
            # generation_batch_size counts completions and must split into per-device x processes
            # (grpo_config.py:1096-1114, rloo_config.py the same); ptsdk's spec already holds it to global batches.
            out["generation_batch_size"] = m.rollout_batch_size * m.num_generations
            per_rollout = out["generation_batch_size"] // job.training.global_batch_size
            steps = f"one generation batch of {out['generation_batch_size']} completions per {per_rollout} step(s)"
        notes.append(Note("training.global_batch_size", "set", f"counts completions: {steps}"))
        if m.epochs_per_rollout > 1:
            # The buffered generation batch is reused num_iterations times (grpo_trainer.py _prepare_inputs).
            out["num_iterations"] = m.epochs_per_rollout
        if m.kl_coef > 0:
            where = {"loss": "k3 per token in the loss, times the importance ratio (use_bias_correction_kl)"}
            notes.append(
                Note(
                    "method.kl_coef",
                    "set",
                    f"beta={m.kl_coef}: "
                    + where.get(KL_OF[m.name][0], "k1 summed over each completion, subtracted from its reward"),
                )
            )
        if r is None:
            return
        out["use_vllm"] = True
        if r.server is not None:
            host, port = r.server.rsplit(":", 1)
            out.update(vllm_mode="server", vllm_server_host=host, vllm_server_port=int(port))
            notes.append(
                Note(
                    "rollout.server",
                    "set",
                    "vllm_mode server: start `trl vllm-serve --model <model>` there first; the server's own "
                    "tensor/data parallel and memory settings apply (rollout.tensor_parallel_size, "
                    "gpu_memory_utilization are not sent)",
                )
            )
        else:
            out.update(
                vllm_mode="colocate",
                vllm_gpu_memory_utilization=r.gpu_memory_utilization,
                vllm_tensor_parallel_size=r.tensor_parallel_size,
            )

    def _output(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        o = job.output
        out: dict[str, Any] = {
            "output_dir": "checkpoints",
            "logging_steps": o.logging_steps,
            "save_strategy": "steps" if o.save_steps else "no",
            "report_to": o.report_to or ["none"],
            "disable_tqdm": True,
        }
        # The Trainer's own tracker callbacks (transformers/integrations/integration_utils.py), kept local by
        # tracking_env; ptsdk_runtime.tracking_callback names the run and records the job.
        notes += tracking_notes(
            job,
            {
                "tensorboard": "report_to and TENSORBOARD_LOGGING_DIR",
                "wandb": "report_to and WANDB_MODE=offline, WANDB_DIR, WANDB_PROJECT (the job's name)",
                "mlflow": "report_to and MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME (the job's name)",
                "trackio": "report_to and TRACKIO_DIR, project the job's name",
            },
            f"run_name is the run directory's name and the job ({TRACKING_JOB}) is recorded in each",
        )
        if o.save_steps:
            out.update(save_steps=o.save_steps, save_total_limit=o.save_total_limit)
        elif o.saves_per_epoch:
            out.update(self._per_epoch(job, o.saves_per_epoch, "save"), save_total_limit=o.save_total_limit)
        if o.eval_steps:
            out.update(eval_strategy="steps", eval_steps=o.eval_steps)
        elif o.evals_per_epoch:
            out.update(self._per_epoch(job, o.evals_per_epoch, "eval"))
        return out

    @staticmethod
    def _per_epoch(job: Job, n: int, what: str) -> dict[str, Any]:
        """N saves/evaluations per epoch: the epoch strategy for one, else a fraction of the run, which
        transformers turns into ceil(total steps x fraction) (trainer_callback.py:156-166). static_problems
        refuses N > 1 for a run given in max_steps."""
        if n == 1:
            return {f"{what}_strategy": "epoch"}
        # A run shorter than 1/N epoch saves (evaluates) once, at its end: a fraction just below 1.
        fraction = min(1 / (n * (job.training.epochs or 1.0)), 1 - 1e-9)
        return {f"{what}_strategy": "steps", f"{what}_steps": fraction}

    def effective(self, job: Job, cfg: dict[str, Any]) -> dict[str, Any]:
        """What TRL will really use, in ptsdk's units (for parity tables)."""
        return Effective.from_job(
            job,
            micro_batch=cfg["per_device_train_batch_size"],
            gradient_accumulation=cfg["gradient_accumulation_steps"],
            learning_rate=cfg["learning_rate"],
            lr_scheduler=cfg["lr_scheduler_type"],
            warmup=cfg["warmup_steps"],
            max_length=cfg.get("max_length"),
            truncation="keep_start",
            packing=bool(cfg.get("packing")),
            loss_mask=_loss_mask(cfg),
            data_order=owned_order(job)
            if owns_order(job)
            else (
                repeat_sampler_order(job)
                if cfg["method"] in ("grpo", "rloo") and _shuffled(cfg)
                else data_order(self.name, job, _shuffled(cfg))
            ),
            optimizer=cfg["optim"],
            load_dtype=cfg["dtype"],
            # Unset: transformers takes sdpa, or eager for a model without it (modeling_utils.py:1855-1889).
            attn_implementation=cfg.get("attn_implementation", "sdpa"),
            weight_decay=cfg["weight_decay"],
            max_grad_norm=cfg["max_grad_norm"],
            adapter_init=_adapter_init(job, cfg),
            loss_normalization=hf_loss_normalization(job),
            sources={
                "truncation": "TRL truncates long sequences at the end (keep_start)",
                "adapter_init": OWNED_ADAPTER_SOURCE
                if "start_adapter_seed" in cfg
                else "a saved adapter (adapter.init_path), loaded trainable",
                "loss_normalization": OWNED_NORMALIZATION_SOURCE
                if job.method.name == "sft"
                else "TRL's loss: each micro-batch's mean over its sequences, averaged over the accumulation steps",
                "data_order": _order_source(job, cfg),
                **(
                    {}
                    if "attn_implementation" in cfg
                    else {"attn_implementation": "transformers' default when unset: sdpa (eager for a model without)"}
                ),
            },
        ).to_dict()

    def import_native(self, source: Path) -> ImportResult:
        """A TRL launch (command line, `trl <method>`, accelerate launch) or --config YAML; see importer.py."""
        from ptsdk.backends.trl.importer import import_trl

        return import_trl(source)

    # --- native check, resume ---------------------------------------------------------

    def check_request(self, plan: Plan, workdir: Path) -> dict[str, Any]:
        """check_trl.py parses the config as rank 0 of the job's world (processes per node: local_world_size)."""
        return {**super().check_request(plan, workdir), "local_world_size": plan.launcher.nproc_per_node}

    def resume(self, plan: Plan, run_dir: Path) -> Plan:
        """train_trl.py continues from the last complete checkpoint under checkpoints/, named in
        PTSDK_RESUME_FROM (PTSDK_RESUME=1 for runners written by earlier ptsdk versions); a run that
        saved none is refused."""
        found = self.resume_checkpoint(run_dir)
        if found is None:
            raise no_checkpoint_error(self.name, plan.job, run_dir)
        checkpoint = found[1].relative_to(run_dir).as_posix()
        return replace(plan, env={**plan.env, "PTSDK_RESUME": "1", "PTSDK_RESUME_FROM": checkpoint})


def deepspeed_config(job: Job) -> dict[str, Any]:
    """A DeepSpeed config whose batch, clipping and precision follow the trainer's arguments ('auto')."""
    d = job.distributed
    zero: dict[str, Any] = {"stage": d.zero_stage, "overlap_comm": True, "contiguous_gradients": True}
    if d.offload in ("optimizer", "optimizer_and_params"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if d.offload == "optimizer_and_params":
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "zero_optimization": zero,
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
    }


def _inputs(job: Job) -> list[str]:
    """local_inputs plus a local reward model folder (TRL loads it by path at start-up)."""
    reward_model = getattr(job.method, "reward_model", None)
    extra = [reward_model] if reward_model and reward_model.startswith("/") and Path(reward_model).is_dir() else []
    return sorted({*local_inputs(job), *extra})


def rl_eval_batch(micro_batch: int, num_generations: int, world_size: int) -> int:
    """per_device_eval_batch_size for GRPO/RLOO evaluation: GRPOConfig/RLOOConfig refuse an eval batch
    whose global size (per device x processes) is not a multiple of the eval group size (TRL 1.16
    trl/trainer/grpo_config.py:1118-1127, rloo_config.py:681-690; their RepeatSampler hands out whole groups,
    grpo_trainer.py:1318-1324). The smallest valid size not below the training micro-batch."""
    step = num_generations // math.gcd(num_generations, world_size)
    return -(-micro_batch // step) * step


def _optimizer_note(name: str, device: str) -> str:
    """How ptsdk's optimizer reaches TRL, against TRL's own default (transformers' adamw_torch_fused for
    torch >= 2.8, transformers/training_args.py:806-811)."""
    optim = HF_OPTIMIZERS[name]
    if name == "adamw":
        # fused=True is the only difference (transformers/trainer_optimizer.py:201-208); torch 2.13 has the
        # fused kernel on CPU too (torch.utils._foreach_utils._get_fused_kernels_supported_devices).
        return f"{optim}: torch's AdamW unfused, not TRL's default adamw_torch_fused (optimizer: adamw_fused)"
    if name == "adamw_fused":
        return f"{optim}: TRL's own default, torch's AdamW with fused=True"
    note = f"{optim} (not TRL's default adamw_torch_fused)"
    if name.startswith("paged_") and device == "cpu":
        # bitsandbytes 0.50: "Paged optimizers are not supported on CPU. Falling back to non-paged"
        # (bitsandbytes/optim/optimizer.py:374-381).
        note += "; on a CPU bitsandbytes does not page, it runs the non-paged optimizer"
    if optim in ("adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit"):
        note += "; a bitsandbytes optimizer (installed in ptsdk's TRL environment; one of your own needs it too)"
    return note


def _adapter_init(job: Job, cfg: dict[str, Any]) -> str | None:
    if "start_adapter_seed" in cfg:
        return owned_adapter(job)
    return "saved adapter" if cfg.get("adapter_init_path") else None


def _shuffled(cfg: dict[str, Any]) -> bool:
    if cfg["method"] in ("grpo", "rloo"):  # their RepeatSampler reads shuffle_dataset, not the sampling strategy
        return bool(cfg.get("shuffle_dataset", True))
    return bool(cfg["train_sampling_strategy"] == "random")


def _order_source(job: Job, cfg: dict[str, Any]) -> str:
    """Why TRL reads the training rows in the order Effective.data_order says."""
    held = (
        f"; data.eval_split holds out rows chosen with seed {job.training.seed}, the rest keep their file order"
        if cfg.get("eval_holdout")
        else ""
    )
    if cfg["method"] == "kto" and job.training.shuffle:
        return (
            "ptsdk forces file order for TRL's KTO (train_sampling_strategy sequential): its KL estimate pairs each "
            "row with its neighbours in a fixed-order batch, and KTOTrainer refuses any other sampler "
            "(kto_trainer.py:837-843)" + held
        )
    if not _shuffled(cfg):
        return "training.shuffle: false: TRL reads the rows in file order (a sequential sampler)" + held
    if owns_order(job):
        return OWNED_ORDER_SOURCE + held
    if cfg["method"] in ("grpo", "rloo"):
        return (
            f"TRL's RepeatSampler permutes the prompts with seed {job.training.seed} and repeats each "
            "num_generations times" + held
        )
    return f"TRL's random sampler (transformers' RandomSampler, data_seed {job.training.seed})" + held


def _loss_mask(cfg: dict[str, Any]) -> str:
    if cfg.get("assistant_only_loss") or cfg.get("completion_only_loss"):
        return "completion"
    if cfg["method"] == "sft":
        return "all"
    return "completion"  # preference and RL losses score the completion only


def _yaml(cfg: dict[str, Any]) -> str:
    head = "# TRL config generated by ptsdk. Run: python train_trl.py --config trl_config.yaml\n"
    return head + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
