"""Axolotl: a ptsdk job as an Axolotl YAML config, checked by Axolotl's own validator."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import yaml
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins.backend import PYTHON, Command, ImportResult, Note, Plan, PlanFile
from ptsdk.plugins.kit import (
    HF_OPTIMIZERS,
    MLFLOW_URI,
    OWNED_ADAPTER_SOURCE,
    OWNED_NORMALIZATION_SOURCE,
    OWNED_ORDER_SOURCE,
    Effective,
    TrainerBackend,
    apply_passthrough,
    common_env,
    hf_loss_normalization,
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
    start_adapter_command,
    tracking_env,
    tracking_files,
    tracking_notes,
)
from ptsdk.plugins.runtime import START_ADAPTER, START_ADAPTER_ENV, TRACKING_JOB
from ptsdk.spec import Job
from ptsdk.spec.method import SFT

HERE = Path(__file__).resolve().parent
T, V = Verified.trained, Verified.validated
TESTS = "tests/backends/test_axolotl.py::"
#: The GRPO example run on TRL and Axolotl side by side: the evidence for GRPO and reward functions on both.
GRPO_EXAMPLE = "tests/backends/test_compare_backends.py::test_trl_and_axolotl_agree_on_the_grpo_example"
#: The SFT-LoRA and DPO examples, also run side by side with TRL: the evidence for SFT, LoRA and DPO.
SFT_EXAMPLE = "tests/backends/test_compare_backends.py::test_trl_and_axolotl_agree_on_the_ordinary_sft_lora_example"
DPO_EXAMPLE = "tests/backends/test_compare_backends.py::test_trl_and_axolotl_agree_on_the_dpo_example"
#: The full-SFT example on CPU, its losses read back from every tracker: the evidence for full fine-tunes on CPU.
FULL_SFT_RUN = "tests/backends/test_tracking.py::test_axolotl_run_in_every_tracker"
CONFIG = "axolotl_config.yaml"
DEEPSPEED = "ds_config.json"
PLUGIN = "ptsdk_axolotl_metrics"
#: Image records, rewritten for Axolotl's multimodal collator by axolotl_images.py (a prepare command).
IMAGES_SCRIPT, IMAGES_SPEC = "axolotl_images.py", "axolotl_images.json"
IMAGE_DATA = {"train": "data/train.jsonl", "eval": "data/eval.jsonl"}
#: Methods whose records Axolotl reads by their canonical names only (data.columns is refused for them).
#: DPO, IPO and SimPO map columns with Axolotl's user-defined DPO type, KTO with its user-defined KTO type
#: (see AxolotlBackend._data); these two have no such type.
COLUMNS_UNMAPPABLE = {
    # A dict `type:` is loaded as "user_defined.default" from the method's strategy package
    # (axolotl/utils/data/rl.py:319-329); ORPO's (axolotl/prompt_strategies/orpo/) has only chat_template.py,
    # whose loaders read fixed "chosen"/"rejected" message lists (orpo/chat_template.py:47-125, 251-278).
    "orpo": "Axolotl's ORPO datasets have no column mapping (its orpo strategies read fixed chosen/rejected "
    "columns: axolotl/prompt_strategies/orpo/chat_template.py; a user-defined type is looked up as "
    "orpo.user_defined, which does not exist: axolotl/utils/data/rl.py:319-323)",
    # GRPO goes to the DPO loader (rl.py:328-329), whose user-defined type requires chosen/rejected fields
    # (axolotl/prompt_strategies/dpo/user_defined.py:14-15, 34-35): an RL prompt record has neither.
    "grpo": "Axolotl's GRPO datasets have no column mapping (a user-defined type is loaded as the DPO one, which "
    "needs chosen and rejected fields: axolotl/utils/data/rl.py:328-329, prompt_strategies/dpo/user_defined.py)",
}
#: The record formats Axolotl's user-defined RL dataset types can map, and their fields.
USER_DEFINED_FIELDS = {
    "preference": ("prompt", "chosen", "rejected"),  # UserDefinedDPOType: dpo, ipo, simpo
    "unpaired_preference": ("prompt", "completion", "label"),  # UserDefinedKTOType: kto
}
#: Methods whose Axolotl dataset entries (DPODataset, KTODataset) have no `name` for a hub configuration.
SUBSETLESS = ("dpo", "ipo", "simpo", "orpo", "kto")
LORA_KERNELS = ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel")
#: The roles ptsdk's canonical messages use; a `roles:` mapping replaces Axolotl's default role map entirely
#: (axolotl/prompt_strategies/chat_template.py:70-80), so ptsdk lists each canonical role as its own source too.
CANONICAL_ROLES = ("system", "user", "assistant", "tool")
#: Methods whose Axolotl trainer draws its batches with transformers' RandomSampler whatever the config says: TRL's
#: DPO (IPO too), ORPO and CPO (SimPO) trainers do not override _get_train_sampler, their configs keep
#: train_sampling_strategy "random" (transformers/trainer.py:1022-1057), and Axolotl passes curriculum_sampling to
#: its SFT trainer alone (axolotl/core/builders/causal.py:272, axolotl/core/trainers/base.py:183-209).
RANDOM_SAMPLER = ("dpo", "ipo", "simpo", "orpo")


class AxolotlBackend(TrainerBackend):
    name = "axolotl"
    framework = "axolotl"
    description = "Axolotl: YAML-driven fine-tuning on top of transformers and TRL."
    verified_with: ClassVar[dict[str, str]] = {
        "axolotl": "0.19.0",
        "transformers": "5.16.1",
        "trl": "1.9.0",
        "torch": "2.13.0",
    }
    install_hint = "ptsdk env create axolotl   (or: pip install torch==2.13.0 && pip install axolotl==0.19.0)"
    #: Axolotl keys the job owns even where ptsdk sets nothing: backend_options refuses them unless ptsdk_override
    #: names them.
    passthrough_owned: ClassVar[dict[str, str]] = {
        "base_model": "model.name_or_path",
        "rl": "method.name",
        "datasets": "data.train",
        "test_datasets": "data.eval",
        "adapter": "adapter.type",
        "load_in_4bit": "model.quantization",
        "load_in_8bit": "model.quantization",
        "bf16": "training.precision",
        "fp16": "training.precision",
        "deepspeed": "distributed.strategy",
        "fsdp": "distributed.strategy",
        "fsdp_config": "distributed.strategy",
        "fsdp_version": "distributed.strategy",
        "output_dir": "output.dir",
    }
    reported_packages = ("trl", "peft", "accelerate", "datasets")
    # With ptsdk's starting adapter (a LoRA job's default) the first command is a script, which imports torch:
    # `ptsdk run` imports it while checking the job (its training command is a module, `-m axolotl.cli.train`).
    warm_modules = ("torch",)
    check_script = HERE / "check_axolotl.py"
    capabilities = (
        *caps("method", "sft", T, SFT_EXAMPLE),
        *caps("method", "dpo", T, DPO_EXAMPLE),
        *caps("method", "kto", T, TESTS + "test_kto"),
        *caps("method", "orpo", T, TESTS + "test_orpo"),
        *caps("method", "ipo simpo", T, TESTS + "test_ipo_simpo"),
        *caps("method", "grpo", T, GRPO_EXAMPLE),
        *caps("loss", "dpo:sigmoid", T, DPO_EXAMPLE),
        *caps("loss", "grpo:grpo", T, GRPO_EXAMPLE),
        *caps(
            "loss",
            "grpo:dr_grpo grpo:dapo grpo:bnpo",
            V,
            TESTS + "test_every_method_and_adapter_passes_axolotl_validator",
        ),
        *caps("adapter", "full", T, FULL_SFT_RUN),
        *caps("adapter", "lora", T, SFT_EXAMPLE),
        *caps(
            "adapter",
            "qlora",
            T,
            TESTS + "test_quantized_base_trains_on_cpu",
            note="trained on CPU (bitsandbytes 0.50's CPU kernels); every method's QLoRA config passes its validator",
        ),
        *caps(
            "feature",
            "quantized_cpu:4bit quantized_cpu:8bit",
            T,
            TESTS + "test_quantized_base_trains_on_cpu",
            note="bitsandbytes 0.50's CPU kernels: Linear4bit / Linear8bitLt layers in the trained model",
        ),
        *caps(
            "strategy",
            "ddp fsdp",
            V,
            TESTS + "test_distributed_configs_pass_axolotl_validator",
            note="multi-process training hard-codes cuda: not trainable on CPU",
        ),
        *caps(
            "strategy",
            "deepspeed_zero1 deepspeed_zero2 deepspeed_zero3",
            V,
            TESTS + "test_deepspeed_configs_pass_axolotl_validator",
            note="DeepSpeed needs GPUs",
        ),
        *caps("topology", "multi_node", V, TESTS + "test_distributed_configs_pass_axolotl_validator"),
        *caps("device", "cpu", T, FULL_SFT_RUN, note="single process only"),
        *caps("reward", "functions", T, GRPO_EXAMPLE),
        *caps(
            "feature",
            "loss_per_micro_batch",
            T,
            "tests/backends/test_compare_backends.py::test_loss_normalization_per_micro_batch_agrees",
            note="SFT: ptsdk_runtime.own_the_optimization turns transformers' model_accepts_loss_kwargs off",
        ),
        *caps(
            "feature",
            "packing",
            V,
            TESTS + "test_every_method_and_adapter_passes_axolotl_validator",
            note="SFT only: Axolotl's validator rejects sample_packing with every rl method "
            "(DPO, IPO, SimPO, ORPO, KTO, GRPO)",
        ),
        *caps("feature", "kl_in_loss:k3", T, TESTS + "test_grpo_rollout_settings", note="GRPO through TRL (trl.beta)"),
        *caps(
            "feature",
            "unlimited_prompt several_steps_per_rollout epochs_per_rollout",
            T,
            TESTS + "test_grpo_rollout_settings",
            note="GRPO: no prompt limit (TRL 1.9 through Axolotl has none), trl.generation_batch_size, "
            "trl.num_iterations",
        ),
        *caps(
            "feature",
            "instruction_records eval_split per_epoch_cadence adam_betas min_lr special_tokens",
            T,
            TESTS + "test_sft_instruction_records_and_optimizer_settings",
        ),
        *caps(
            "feature",
            "dataset_subset",
            V,
            TESTS + "test_new_settings_pass_axolotl_validator",
            note="SFT and GRPO (datasets[].name); Axolotl's DPO/IPO/SimPO/ORPO/KTO dataset entries have no name",
        ),
        *caps(
            "feature",
            "padding_free",
            V,
            TESTS + "test_new_settings_pass_axolotl_validator",
            note="SFT with attn_implementation flash_attention_2 (Axolotl's batch_flattening)",
        ),
        *caps(
            "rollout",
            "vllm",
            V,
            TESTS + "test_new_settings_pass_axolotl_validator",
            note="GRPO with an external vLLM server only (rollout.server: trl vllm_mode server)",
        ),
        *caps("feature", "rollout_server", V, TESTS + "test_new_settings_pass_axolotl_validator", note="GRPO"),
        *caps(
            "feature",
            "message_mapping",
            T,
            TESTS + "test_sft_sharegpt_messages_with_thinking",
            note="SFT chat records (chat_template message_property_mappings, roles; thinking -> reasoning_content); "
            "refused for DPO/IPO/SimPO/ORPO/KTO (their dataset entries drop the mappings) and GRPO",
        ),
        *caps(
            "feature",
            "implicit_prompt",
            T,
            TESTS + "test_dpo_prompt_in_answers",
            note="DPO trained, IPO and SimPO preprocessed (chat_template.argilla_chat: the prompt is chosen's turns "
            "but the last); ORPO preprocessed (chat_template.argilla: strictly alternating user/assistant turns)",
        ),
        *caps(
            "feature",
            "images:sft",
            T,
            TESTS + "test_vlm_sft",
            note="processor_type: AutoProcessor with skip_prepare_dataset: Axolotl's MultiModalChatDataCollator "
            "(axolotl/processing_strategies.py); tiny LLaVA trained on CPU. Its RL builder takes no processor "
            "(axolotl/core/builders/rl.py), so no images with DPO, KTO, ORPO or GRPO",
        ),
        *caps(
            "feature",
            "tracking_tensorboard tracking_mlflow tracking_wandb tracking_trackio",
            T,
            "tests/backends/test_tracking.py::test_axolotl_run_in_every_tracker",
            note="Axolotl's use_* settings, the Trainer's own callbacks; MLflow a local file store, W&B offline, "
            "Trackio a local database (Axolotl 0.19's pinned transformers passes trackio.init a bucket_id=None its "
            "pinned trackio 0.19 does not take: ptsdk's plugin drops that unset keyword)",
        ),
    )

    def static_problems(self, job: Job) -> list[str]:
        out = []
        m, d = job.method, job.distributed
        if d.device == "cpu" and d.world_size > 1:
            out.append(
                "distributed.gpus_per_node: Axolotl cannot run several processes on CPU "
                "(its DDP code hard-codes cuda); use one process or device=gpu"
            )
        if job.training.packing and m.name != "sft":
            # axolotl/utils/schemas/validation.py:704-708 (RLValidationMixin.check_sample_packing_w_rl) raises
            # for sample_packing with any `rl:` (DPO, IPO, SimPO, ORPO, KTO, GRPO); :710-716 again for KTO.
            out.append(
                "training.packing: Axolotl packs SFT data only (its validator rejects sample_packing with any rl "
                "method: axolotl/utils/schemas/validation.py:706-708); set training.packing: false"
            )
        if job.data.columns and m.name in COLUMNS_UNMAPPABLE:
            out.append(
                f"data.columns: {COLUMNS_UNMAPPABLE[m.name]}; rename the columns in the data or use --backend trl"
            )
        if (
            d.effective_strategy == "fsdp"
            and job.model.quantization != "none"
            and m.name in ("dpo", "ipo", "kto", "orpo")
        ):
            # axolotl/utils/schemas/validation.py:1176-1189 (check_fsdp2_base_model_quant_rl); ptsdk writes FSDP2.
            out.append(
                f"distributed.strategy: Axolotl's FSDP2 cannot train {m.name} on a quantized base model "
                "(axolotl/utils/schemas/validation.py:1176-1189); use strategy: deepspeed"
            )
        return (
            out
            + image_problems(job)
            + new_field_problems(job)
            + rendezvous_problems(job, "accelerate/torchrun")
            + passthrough_problems(self, job)
        )

    def import_native(self, source: Path) -> ImportResult:
        """An Axolotl YAML config (what `axolotl train` reads) as a ptsdk job: see importer.py."""
        from ptsdk.backends.axolotl.importer import import_axolotl

        return import_axolotl(source, self)

    # --- translation -------------------------------------------------------------------

    def translate(self, job: Job) -> Plan:
        notes: list[Note] = []
        cfg: dict[str, Any] = {"base_model": job.model.name_or_path, "trust_remote_code": job.model.trust_remote_code}
        if job.model.attn_implementation:
            # Axolotl 0.19's one attention key (axolotl/utils/schemas/config.py:845-856); the boolean flags
            # (sdp_attention, flash_attention, eager_attention, ...) are deprecated (config.py:790-843, 1544-1592).
            # It goes to from_pretrained as is (axolotl/loaders/model.py:843-852, _set_attention_config).
            cfg["attn_implementation"] = job.model.attn_implementation
        special = {k: getattr(job.model, k) for k in ("pad_token", "eos_token") if getattr(job.model, k)}
        if special:
            # axolotl/utils/schemas/model.py:179-186 SpecialTokensConfig; set on the tokenizer by
            # axolotl/loaders/tokenizer.py:229-261 (a token already in the vocabulary adds no embedding row).
            cfg["special_tokens"] = special
        cfg.update(self._method(job, notes))
        cfg.update(self._data(job, notes))
        cfg.update(self._adapter(job))
        cfg.update(self._training(job, notes))
        cfg.update(self._distributed(job, notes))
        cfg.update(self._output(job, notes))
        files = [PlanFile(f"{PLUGIN}.py", copy_from=str(HERE / "metrics_plugin.py")), runtime_file()]
        files += tracking_files(job, self.name)
        prepare = [start_adapter_command(job)] if cfg.get("lora_model_dir") == START_ADAPTER else []
        if job.data.images is not None:
            cfg.update(self._images(job, cfg, notes))
            files += [
                PlanFile(IMAGES_SCRIPT, copy_from=str(HERE / IMAGES_SCRIPT)),
                PlanFile(IMAGES_SPEC, content=json.dumps(images_spec(job), indent=2) + "\n"),
            ]
            prepare.append(
                Command(
                    [PYTHON, IMAGES_SCRIPT, IMAGES_SPEC],
                    description="write the image records as Axolotl's multimodal collator reads them",
                )
            )
        if cfg.get("deepspeed") == DEEPSPEED:
            files.append(PlanFile(DEEPSPEED, content=json.dumps(deepspeed_config(job), indent=2) + "\n"))
        for ref in getattr(job.method, "rewards", []) or []:
            target, fn = ref.rsplit(":", 1)
            if target.endswith(".py"):
                module = f"reward_{Path(target).stem}"
                files.append(PlanFile(f"{module}.py", copy_from=target))
                cfg["trl"]["reward_funcs"].append(f"{module}.{fn}")
            else:
                cfg["trl"]["reward_funcs"].append(f"{target}.{fn}")
        apply_passthrough(job, self.name, cfg, notes, owned=self.passthrough_owned)
        notes += load_dtype_notes(job, load_dtype(cfg))
        files.append(
            PlanFile(CONFIG, content="# Axolotl config generated by ptsdk.\n" + yaml.safe_dump(cfg, sort_keys=False))
        )
        # `axolotl train` sets the last two, then starts axolotl.cli.train under the chosen launcher:
        # ptsdk does the same.
        env = {
            **common_env(job),
            **owned_env(job),
            # Axolotl builds DPO/IPO/KTO adapters from the config alone, ignoring lora_model_dir: ptsdk's plugin
            # copies the starting adapter's weights in (ptsdk_runtime.load_start_adapter).
            **({START_ADAPTER_ENV: cfg["lora_model_dir"]} if cfg.get("lora_model_dir") else {}),
            **tracking_env(job, self.name),
            "AXOLOTL_DO_NOT_TRACK": "1",
            "PYTHONPATH": ".",
            "PYTORCH_ALLOC_CONF": "expandable_segments:True",
            "XFORMERS_IGNORE_FLASH_VERSION_CHECK": "1",
        }
        return Plan(
            backend=self.name,
            files=files,
            entrypoint=["-m", "axolotl.cli.train"],
            args=[CONFIG],
            launcher=launcher_for(job),
            env=env,
            native_config=CONFIG,
            prepare=prepare,
            notes=notes,
            effective=self.effective(job, cfg),
            inputs=local_inputs(job),
            job=job,
        )

    def _images(self, job: Job, cfg: dict[str, Any], notes: list[Note]) -> dict[str, Any]:
        """A vision-language SFT job: the model's processor, the converted records, no dataset preparation.

        Axolotl 0.19 loads the processor when processor_type is set (axolotl/loaders/processor.py) and then, with
        skip_prepare_dataset, keeps the raw records for its multimodal collator, which renders each with the
        processor's chat template and loads the images (axolotl/core/builders/causal.py, MultiModalChatDataCollator;
        axolotl/processing_strategies.py:263-335); remove_unused_columns: false keeps the messages column for it."""
        for section, split in (("datasets", "train"), ("test_datasets", "eval")):
            for entry in cfg.get(section) or []:
                entry.update(path=IMAGE_DATA[split], split="train", ds_type="json")
                # The converted records are canonical: Axolotl's mappings would rename them again.
                for key in ("message_property_mappings", "roles"):
                    entry.pop(key, None)
                entry["field_messages"] = "messages"
        notes.append(
            Note(
                "data.images",
                "set",
                f"processor_type: AutoProcessor, skip_prepare_dataset: true, remove_unused_columns: false; "
                f"{IMAGES_SCRIPT} rewrites the records with each image as a {{type: image, path}} part where the "
                "spec places it (Axolotl alone would keep only the images column's first file, after the text)",
            )
        )
        if isinstance(job.method, SFT) and job.method.loss_on == "all":
            notes.append(
                Note(
                    "method.loss_on",
                    "approximated",
                    "Axolotl's multimodal collator keeps the image tokens out of the loss "
                    "(axolotl/processing_strategies.py:386-387); TRL's loss on every token includes them",
                )
            )
        return {"processor_type": "AutoProcessor", "skip_prepare_dataset": True, "remove_unused_columns": False}

    def _method(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        m = job.method
        if m.name == "sft":
            return {}
        if m.name == "dpo":
            return {"rl": "dpo", "rl_beta": m.beta}
        if m.name == "ipo":
            return {"rl": "ipo", "rl_beta": m.beta}
        if m.name == "orpo":
            return {"rl": "orpo", "orpo_alpha": m.beta}
        if m.name == "simpo":
            return {"rl": "simpo", "rl_beta": m.beta, "simpo_gamma": m.gamma, "cpo_alpha": m.sft_weight}
        if m.name == "kto":
            return {
                "rl": "kto",
                "rl_beta": m.beta,
                "kto_desirable_weight": m.desirable_weight,
                "kto_undesirable_weight": m.undesirable_weight,
                "remove_unused_columns": False,
            }
        if m.name == "grpo":
            if m.max_prompt_length is not None:
                notes.append(
                    Note(
                        "method.max_prompt_length",
                        "dropped",
                        "Axolotl's GRPO (TRL 1.9) has no prompt-length limit: prompts are neither truncated nor "
                        "dropped (max_prompt_length is on its blocklist: axolotl/core/trainers/grpo/__init__.py:"
                        "267-273; its GRPO data filter keeps every row: axolotl/utils/data/rl.py:176-177); "
                        "max_prompt_length: null says so",
                    )
                )
            trl: dict[str, Any] = {
                "use_vllm": False,
                "num_generations": m.num_generations,
                "max_completion_length": m.max_completion_length,
                "temperature": m.temperature,
                "beta": m.kl_coef,
                "epsilon": m.clip_epsilon,
                "loss_type": m.loss_type,
                "reward_funcs": [],
            }
            if m.rollout_batch_size is not None:
                # TRL's generation_batch_size counts completions per generation, split into optimizer steps
                # (axolotl/core/trainers/grpo/__init__.py:92-93 passes it to GRPOConfig).
                trl["generation_batch_size"] = m.rollout_batch_size * m.num_generations
            if m.epochs_per_rollout > 1:
                trl["num_iterations"] = m.epochs_per_rollout  # grpo/__init__.py:140-141
            if job.rollout is not None and job.rollout.server:
                host, port = job.rollout.server.rsplit(":", 1)
                # grpo/__init__.py:67-81: use_vllm, vllm_mode, vllm_server_host/port go to GRPOConfig.
                trl.update(
                    use_vllm=True, vllm_mode="server", vllm_server_host=host.strip("[]"), vllm_server_port=int(port)
                )
                r = job.rollout
                engine_settings = (r.tensor_parallel_size, r.num_engines, r.gpu_memory_utilization, r.colocate)
                if engine_settings != (1, None, 0.5, True):
                    notes.append(
                        Note(
                            "rollout.server",
                            "dropped",
                            "rollout.tensor_parallel_size, num_engines, gpu_memory_utilization and colocate are the "
                            "external server's own settings (trl vllm-serve flags): the trainer sets none of them",
                        )
                    )
            if m.reward_model:
                trl["reward_funcs"].append(m.reward_model)
            return {"rl": "grpo", "trl": trl}
        raise AssertionError(f"{m.name} passed the capability check but has no translation")  # pragma: no cover

    def _data(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        d, fmt = job.data, job.data.format
        col = {**{f: f for f in ("prompt", "completion", "messages")}, **d.columns}

        def entry(path: str, split: str, subset: str | None) -> dict[str, Any]:
            e: dict[str, Any] = {"path": path, "split": "train"}
            if not path.endswith((".jsonl", ".json", ".parquet")):
                e["split"] = split
                if subset:
                    # The dataset configuration, given to load_dataset as name= (axolotl/utils/data/shared.py:
                    # 171-176); SFTDataset's `name` (axolotl/utils/schemas/datasets.py:93-96).
                    e["name"] = subset
            elif fmt in ("prompt_completion", "messages", "prompt", "instruction"):
                # Preference and KTO entries have no ds_type (Axolotl would drop it silently): the suffix says it.
                e["ds_type"] = "parquet" if path.endswith(".parquet") else "json"
            if fmt == "prompt_completion":
                # A user-defined type: the prompt as is, then the completion (Axolotl appends EOS).
                e["type"] = {
                    "field_instruction": col["prompt"],
                    "field_output": col["completion"],
                    "format": "{instruction}",
                    "no_input_format": "{instruction}",
                }
            elif d.prompt_in_answers and job.method.name == "orpo":
                # ORPO's own loader (axolotl/prompt_strategies/orpo/chat_template.py:78-127, 251-280, argilla):
                # chosen's turns but the last as alternating user/assistant turns, each last turn the answer;
                # fixed chosen/rejected columns (data.columns is refused for ORPO).
                e["type"] = "chat_template.argilla"
            elif d.prompt_in_answers:
                # Whole conversations in chosen/rejected (axolotl/prompt_strategies/dpo/chat_template.py:126-244,
                # argilla_chat): the prompt is chosen's turns but the last, rendered with the chat template and a
                # generation prompt; the answers are each conversation's last turn. field_chosen/field_rejected are
                # DPODataset fields (axolotl/utils/schemas/datasets.py:260-270); test_datasets read datasets[i]'s.
                e["type"] = "chat_template.argilla_chat"
                e.update({f"field_{name}": col.get(name, name) for name in ("chosen", "rejected") if name in d.columns})
            elif fmt in USER_DEFINED_FIELDS and d.columns:
                # Axolotl's user-defined DPO / KTO types (axolotl/utils/schemas/datasets.py:248-257, 285-293):
                # a dict `type:` is loaded as "user_defined.default" (axolotl/utils/data/rl.py:319-329), which
                # copies field_<name> into the canonical column (prompt_strategies/dpo/user_defined.py,
                # prompt_strategies/kto/user_defined.py). For test_datasets Axolotl reads the type of
                # datasets[i] (rl.py:323-329 pass dataset_idx=i): train and eval share these fields anyway.
                e["type"] = {f"field_{name}": col.get(name, name) for name in USER_DEFINED_FIELDS[fmt]}
            elif fmt == "instruction":
                # Axolotl's own Alpaca prompter: the instruction (and input, when the record has one) in Alpaca's
                # template, the loss on the output unless train_on_inputs (axolotl/prompters.py:32-53,
                # axolotl/prompt_tokenizers.py:162-172, AlpacaPromptTokenizingStrategy).
                e["type"] = "alpaca"
            elif fmt == "messages":
                # Chat records are SFT's alone (the spec refuses them for other methods).
                completion_only = isinstance(job.method, SFT) and job.method.loss_on == "completion"
                e.update(
                    type="chat_template",
                    field_messages=col["messages"],
                    **message_mapping(job),
                    roles_to_train=["assistant"] if completion_only else ["system", "user", "assistant"],
                    train_on_eos="turn",
                )
            return e

        out: dict[str, Any] = {
            "datasets": [entry(d.train.path, d.train.split, d.train.subset)],
            "dataset_prepared_path": "prepared",
        }
        if job.distributed.device == "cpu":
            out["dataset_num_proc"] = 1  # worker processes cost more than they save on small CPU runs
        if d.eval is not None:
            out["test_datasets"] = [entry(d.eval.path, d.eval.split, d.eval.subset)]
        elif d.eval_split is not None:
            # axolotl/utils/data/shared.py:432-458 create_train_validation_split (SFT: utils/data/sft.py:436-450,
            # rl: utils/data/rl.py:63-67): train_test_split(shuffle=False) on the merged rows, after Axolotl's
            # seeded shuffle of them (shuffle_merged_datasets, shared.py:686-716).
            out["val_set_size"] = d.eval_split
            notes.append(
                Note(
                    "data.eval_split",
                    "set",
                    "val_set_size: Axolotl holds out the last fraction of the training rows after its seeded shuffle"
                    + ("" if job.training.shuffle else " (training.shuffle is false: the last rows of the file)"),
                )
            )
        else:
            out["val_set_size"] = 0.0
        if d.train.max_samples and d.images is None:  # image records are converted by ptsdk, which applies it
            notes.append(Note("data.train.max_samples", "dropped", "Axolotl has no row limit; all rows are used"))
        if fmt in USER_DEFINED_FIELDS and d.columns and not d.prompt_in_answers:
            kind = "KTO" if fmt == "unpaired_preference" else "DPO"
            notes.append(
                Note(
                    "data.columns",
                    "set",
                    f"Axolotl's user-defined {kind} dataset type copies each mapped column into its canonical field "
                    f"by string formatting (axolotl/prompt_strategies/{kind.lower()}/user_defined.py): the mapped "
                    "fields must hold strings, not message lists",
                )
            )
        if job.method.family != "rl":
            out["sequence_len"] = d.max_length
        if job.method.name == "sft":
            out["train_on_inputs"] = job.method.loss_on == "all"
        if d.truncation == "truncate":
            out["excess_length_strategy"] = "truncate"
        if job.model.chat_template:
            text = job.model.chat_template
            out.update(
                chat_template="jinja", chat_template_jinja=Path(text).read_text() if text.endswith(".jinja") else text
            )
        elif fmt == "messages" or d.prompt_in_answers:
            out["chat_template"] = "tokenizer_default"
        notes += message_notes(job)
        return out

    def _adapter(self, job: Job) -> dict[str, Any]:
        a = job.adapter
        if a.type == "full":
            return {}
        out: dict[str, Any] = {"adapter": a.type, "lora_r": a.r, "lora_alpha": a.alpha, "lora_dropout": a.dropout}
        if isinstance(a.target_modules, list):
            out["lora_target_modules"] = a.target_modules
        else:
            out["lora_target_linear"] = True
        if a.init_path:
            out["lora_model_dir"] = a.init_path
        elif owns_start_adapter(job):
            out["lora_model_dir"] = START_ADAPTER  # made by the plan's first command, from the job's seed
        if job.model.quantization == "4bit":
            out["load_in_4bit"] = True
        elif job.model.quantization == "8bit":
            out["load_in_8bit"] = True
        if job.distributed.device == "cpu":
            out.update({k: False for k in LORA_KERNELS})  # the fused LoRA kernels are CUDA-only
        return out

    def _training(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        t = job.training
        out: dict[str, Any] = {
            "micro_batch_size": t.micro_batch_size,
            "gradient_accumulation_steps": job.gradient_accumulation_steps,
            "learning_rate": t.learning_rate,
            "lr_scheduler": t.lr_scheduler,
            **(
                {"warmup_steps": job.warmup_steps} if job.warmup_steps is not None else {"warmup_ratio": t.warmup_ratio}
            ),
            "weight_decay": t.weight_decay,
            "max_grad_norm": t.max_grad_norm,
            "optimizer": HF_OPTIMIZERS[t.optimizer],
            # Unset precision resolves to fp16 on CPU: say all three explicitly.
            "bf16": t.precision == "bf16",
            "fp16": t.precision == "fp16",
            "tf32": False,
            # The load dtype follows these flags (see load_dtype); only fp16 weights without autocast have a
            # flag of their own: `float16` loads fp16 and leaves the trainer's fp16/bf16 off
            # (axolotl/utils/config/__init__.py:200-201, axolotl/core/builders/base.py:270-278).
            **({"float16": True} if job.model.dtype == "float16" and t.precision == "fp32" else {}),
            "gradient_checkpointing": t.gradient_checkpointing,
            "sample_packing": t.packing,
            "seed": t.seed,
            # With ptsdk's order the rows stay in file order and the sampler ptsdk installs permutes them; for
            # GRPO TRL's RepeatSampler permutes them (seeded), as in ptsdk's TRL backend: no shuffle before it.
            "shuffle_merged_datasets": t.shuffle and not owns_order(job) and job.method.name != "grpo",
            "curriculum_sampling": not t.shuffle,
        }
        if (t.adam_beta1, t.adam_beta2, t.adam_epsilon) != (0.9, 0.999, 1e-8):
            # All three together: Axolotl's own optimizers take betas only when both are set
            # (axolotl/core/builders/base.py:303-312); transformers' read them from the trainer arguments
            # (base.py:633-640 copies them there).
            out.update(adam_beta1=t.adam_beta1, adam_beta2=t.adam_beta2, adam_epsilon=t.adam_epsilon)
        if t.min_lr_ratio:
            # axolotl/core/trainers/mixins/scheduler.py:43-46, 115-121: get_cosine_schedule_with_min_lr.
            out["cosine_min_lr_ratio"] = t.min_lr_ratio
        if t.padding_free:
            # DataCollatorWithFlattening for SFT (axolotl/core/builders/causal.py:595-599); static_problems
            # refuses it without a varlen attention kernel.
            out["batch_flattening"] = True
        if t.max_steps is not None:
            out["max_steps"] = t.max_steps
        else:
            out["num_epochs"] = t.epochs
        if not t.shuffle and job.method.name in (*RANDOM_SAMPLER, "grpo"):
            notes.append(
                Note(
                    "training.shuffle",
                    "set",
                    f"Axolotl's {job.method.name} trainer would sample its batches at random whatever the config says "
                    "(only its SFT trainer reads curriculum_sampling, axolotl/core/trainers/base.py:183-209): ptsdk's "
                    "Axolotl plugin makes it read the rows in file order (ptsdk_runtime.own_the_optimization)",
                )
            )
        if t.packing:
            notes.append(
                Note(
                    "training.packing", "set", "sample_packing: one micro-batch item is a packed block, not one example"
                )
            )
        if job.warmup_steps == 1:
            notes.append(
                Note(
                    "training.warmup_ratio",
                    "set",
                    "Axolotl turns a 1-step warmup into 2 (axolotl/core/builders/base.py:256-257); ptsdk's plugin "
                    "gives the trainer the job's warmup back before its scheduler is made",
                )
            )
        return out

    def _distributed(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        d = job.distributed
        if d.effective_strategy == "fsdp":
            # The job cannot say FSDP1 or FSDP2 (distributed.strategy is just "fsdp"): ptsdk writes FSDP2,
            # because Axolotl 0.19 warns that FSDP1 "is deprecated and will be removed" (transformers plans
            # to drop it in 5.20): axolotl/utils/schemas/validation.py:1145-1157; an fsdp_config without a
            # version would be pinned to FSDP1 (validation.py:1226-1232).
            notes.append(
                Note(
                    "distributed.strategy",
                    "defaulted",
                    "ptsdk writes fsdp_version: 2 (FSDP2): Axolotl 0.19 deprecates FSDP1 and plans to remove it, "
                    "as transformers does in 5.20 (axolotl/utils/schemas/validation.py:1145-1157); the job spec "
                    "has no field to ask for FSDP1",
                )
            )
            return {
                "fsdp_version": 2,
                "fsdp_config": {
                    "offload_params": d.offload != "none",
                    "state_dict_type": "FULL_STATE_DICT",
                    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                },
            }
        if d.effective_strategy == "deepspeed":
            # Axolotl's `deepspeed:` is a JSON config path (axolotl/utils/schemas/config.py:1051-1056); at start
            # it sets accelerate's DeepSpeed variables itself (axolotl/utils/trainer.py:541-594, 676-688), so
            # torchrun (or plain python for one process) starts it as it starts every other Axolotl job.
            if d.offload == "optimizer_and_params" and d.zero_stage != 3:
                notes.append(
                    Note(
                        "distributed.offload",
                        "dropped",
                        f"DeepSpeed offloads parameters only under ZeRO-3; ZeRO-{d.zero_stage} offloads the "
                        "optimizer state alone",
                    )
                )
            return {"deepspeed": DEEPSPEED}
        return {}

    def _output(self, job: Job, notes: list[Note]) -> dict[str, Any]:
        o = job.output
        out: dict[str, Any] = {
            "output_dir": "model",
            "logging_steps": o.logging_steps,
            "plugins": [f"{PLUGIN}.JsonlMetricsPlugin"],
            "auto_resume_from_checkpoints": True,
        }
        if o.save_steps:
            out.update(save_steps=o.save_steps, save_total_limit=o.save_total_limit)
        elif o.saves_per_epoch:
            out.update(saves_per_epoch=o.saves_per_epoch, save_total_limit=o.save_total_limit)
        else:
            out["save_strategy"] = "no"
        if o.eval_steps:
            out["eval_steps"] = o.eval_steps
        elif o.evals_per_epoch:
            out["evals_per_epoch"] = o.evals_per_epoch
        if (o.saves_per_epoch or o.evals_per_epoch) and job.training.max_steps is not None:
            # axolotl/utils/config/__init__.py:249-264: save/eval_steps = 1 / (N x num_epochs) of the run, and
            # num_epochs is 1 when ptsdk writes max_steps.
            for key in ("saves_per_epoch", "evals_per_epoch"):
                if getattr(o, key):
                    notes.append(
                        Note(
                            f"output.{key}",
                            "approximated",
                            f"with training.max_steps Axolotl spreads the {getattr(o, key)} over the whole run (it "
                            "sets save/eval steps to 1/(N x num_epochs) of the total steps, num_epochs 1): "
                            "axolotl/utils/config/__init__.py:249-264",
                        )
                    )
        # Axolotl's own tracker settings (axolotl/utils/schemas/integrations.py, config.py use_tensorboard), which it
        # turns into the Trainer's report_to and environment (axolotl/core/builders/base.py _configure_reporting,
        # utils/wandb_.py, mlflow_.py, trackio_.py); tracking_env keeps them local.
        name = job.name or "job"
        if "tensorboard" in o.report_to:
            out["use_tensorboard"] = True
        if "wandb" in o.report_to:
            out.update(use_wandb=True, wandb_project=name, wandb_mode="offline")
        if "mlflow" in o.report_to:
            out.update(use_mlflow=True, mlflow_tracking_uri=MLFLOW_URI, mlflow_experiment_name=name)
        if "trackio" in o.report_to:
            # Axolotl 0.19 pins transformers 5.16.1 and trackio 0.19: the former's TrackioCallback passes
            # trackio.init a bucket_id=None the latter does not take; ptsdk's plugin drops that unset keyword.
            # trackio_project_name only reaches the environment in 0.19; ptsdk's callback gives the Trainer the name.
            out.update(use_trackio=True, trackio_project_name=name)
        notes += tracking_notes(
            job,
            {
                "tensorboard": "use_tensorboard and TENSORBOARD_LOGGING_DIR",
                "wandb": "use_wandb, wandb_mode: offline, wandb_project (the job's name) and WANDB_DIR",
                "mlflow": "use_mlflow, mlflow_tracking_uri and mlflow_experiment_name (the job's name)",
                "trackio": "use_trackio, trackio_project_name (the job's name) and TRACKIO_DIR",
            },
            f"run_name is the run directory's name and the job ({TRACKING_JOB}) is recorded in each",
        )
        return out

    def effective(self, job: Job, cfg: dict[str, Any]) -> dict[str, Any]:
        order, order_source = data_order(job)
        # ptsdk's plugin sets the trainer's warmup_steps to the job's (PTSDK_WARMUP): whole steps, or a ratio that
        # transformers rounds up (TrainingArguments.get_warmup_steps), as on TRL.
        warmup = cfg["warmup_steps"] if "warmup_steps" in cfg else cfg["warmup_ratio"]
        return Effective.from_job(
            job,
            micro_batch=cfg["micro_batch_size"],
            gradient_accumulation=cfg["gradient_accumulation_steps"],
            learning_rate=cfg["learning_rate"],
            lr_scheduler=cfg["lr_scheduler"],
            warmup=warmup,
            max_length=cfg.get("sequence_len"),
            truncation="keep_start" if cfg.get("excess_length_strategy") == "truncate" else "drop",
            packing=cfg["sample_packing"],
            loss_mask="all" if job.method.name == "sft" and cfg.get("train_on_inputs") else "completion",
            data_order=order,
            optimizer=cfg["optimizer"],
            weight_decay=cfg["weight_decay"],
            max_grad_norm=cfg["max_grad_norm"],
            adapter_init=(owned_adapter(job) if cfg["lora_model_dir"] == START_ADAPTER else "saved adapter")
            if cfg.get("lora_model_dir")
            else None,
            loss_normalization=hf_loss_normalization(job),
            load_dtype=load_dtype(cfg),
            # Unset, Axolotl passes none and transformers picks its default, as it does for TRL.
            attn_implementation=cfg.get("attn_implementation", "sdpa"),
            sources={
                "load_dtype": "Axolotl loads the weights in the dtype its bf16/fp16/float16 flags give "
                "(axolotl/utils/config/__init__.py:198-203), not model.dtype or the checkpoint's",
                "attn_implementation": "Axolotl passes attn_implementation to from_pretrained when set "
                "(axolotl/loaders/model.py:846-852); unset, transformers' default: sdpa (eager for a model without)",
                "adapter_init": OWNED_ADAPTER_SOURCE
                if cfg.get("lora_model_dir") == START_ADAPTER
                else "a saved adapter (adapter.init_path): lora_model_dir",
                "loss_normalization": OWNED_NORMALIZATION_SOURCE
                + " in ptsdk's Axolotl plugin (Axolotl alone averages each micro-batch: it turns transformers' "
                "model_accepts_loss_kwargs off, axolotl/core/trainers/base.py:113-131)"
                if job.method.name == "sft"
                else "TRL's loss: each micro-batch's mean over its sequences, averaged over the accumulation steps",
                "data_order": order_source,
                "truncation": "Axolotl drops or truncates by excess_length_strategy",
            },
        ).to_dict()

    # --- native check, resume ---------------------------------------------------------

    def check_request(self, plan: Plan, workdir: Path, *, preprocess: bool = True) -> dict[str, Any]:
        """Axolotl's validator, plus a preprocess run (dataset types load and tokenize) when asked."""
        return {**super().check_request(plan, workdir), "preprocess": preprocess}

    checkpoints_dir = "model"  # Axolotl's output_dir: its checkpoint-N folders land beside the final model

    def resume(self, plan: Plan, run_dir: Path) -> Plan:
        """Every Axolotl config ptsdk writes sets auto_resume_from_checkpoints: the same plan continues,
        from the last checkpoint under model/ (refused when there is none: it would start over)."""
        if self.resume_checkpoint(run_dir) is None:
            raise no_checkpoint_error(self.name, plan.job, run_dir)
        return replace(plan)


# --- module helpers ------------------------------------------------------------------------------------


def image_problems(job: Job) -> list[str]:
    """What Axolotl's multimodal path cannot take (images:sft is the only images feature it declares)."""
    d = job.data
    if d.images is None:
        return []
    out = []
    if d.format != "messages":
        out.append(
            f"data.format: Axolotl 0.19 reads images from chat records only (its multimodal collator renders a "
            f"messages column: axolotl/processing_strategies.py:209-240), not {d.format}; use format: messages "
            "or --backend trl"
        )
    if job.training.packing:
        out.append(
            "training.packing: Axolotl 0.19 does not pack image records (skip_prepare_dataset keeps one record a "
            "row for its multimodal collator); set packing: false"
        )
    return out


def images_spec(job: Job) -> dict[str, Any]:
    """What axolotl_images.py converts: the columns, the images' folder and each split's source and target."""
    d = job.data
    assert d.images is not None
    splits = {"train": {"path": d.train.path, "max_samples": d.train.max_samples, "out": IMAGE_DATA["train"]}}
    if d.eval is not None:
        splits["eval"] = {"path": d.eval.path, "max_samples": d.eval.max_samples, "out": IMAGE_DATA["eval"]}
    return {
        "messages": d.columns.get("messages", "messages"),
        "images": d.images.column,
        "folder": d.images.root,
        "message_keys": {str(k): v for k, v in d.message_keys.items()},
        "role_names": dict(d.role_names),
        "splits": splits,
    }


def new_field_problems(job: Job) -> list[str]:
    """The job settings of issue 12 that Axolotl 0.19 cannot honour, or not in this combination."""
    out = []
    t, d, m = job.training, job.data, job.method
    if t.padding_free:
        if m.name != "sft":
            # The flattening collator is chosen in the causal (SFT) builder only (axolotl/core/builders/causal.py:
            # 595-599); the rl builders take the TRL trainers' own collators.
            out.append(
                f"training.padding_free: Axolotl flattens batches for SFT only (batch_flattening, "
                f"axolotl/core/builders/causal.py:595-599), not for {m.name}; set training.padding_free: false"
            )
        elif job.model.attn_implementation != "flash_attention_2":
            out.append(
                "training.padding_free: Axolotl's batch_flattening needs a varlen attention kernel "
                "(axolotl/utils/schemas/validation.py:1076-1087); set model.attn_implementation: flash_attention_2 "
                "(a GPU with flash-attn), or training.padding_free: false"
            )
        if t.packing:
            out.append(
                "training.padding_free: Axolotl's batch_flattening cannot be combined with sample_packing "
                "(axolotl/utils/schemas/validation.py:1088-1089); set one of training.packing and training.padding_free"
            )
    for where, src in (("train", d.train), ("eval", d.eval)):
        if src is not None and src.subset and m.name in SUBSETLESS:
            out.append(
                f"data.{where}.subset: Axolotl's {m.name} dataset entries have no configuration name (DPODataset, "
                "KTODataset: axolotl/utils/schemas/datasets.py:260-305 have no `name`); remove subset, or save the "
                "subset as its own dataset"
            )
        elif src is not None and src.subset and src.is_local:
            out.append(
                f"data.{where}.subset: {src.path} is a local file, which has no configurations (Axolotl would pass "
                "name= to the json/parquet loader); remove subset, or name a hub dataset"
            )
    if d.format == "instruction" and d.columns:
        out.append(
            "data.columns: Axolotl's alpaca dataset type reads fixed instruction/input/output columns "
            "(axolotl/prompt_tokenizers.py:167-172, AlpacaPromptTokenizingStrategy); rename the columns in the data"
        )
    out += message_problems(job)
    if job.rollout is not None and not job.rollout.server:
        out.append(
            "rollout: ptsdk's Axolotl translation generates with vLLM only through an external server (trl "
            "vllm_mode: server); start one (`trl vllm-serve --model ...`) and set rollout.server: host:port, or "
            "remove rollout (the policy generates its own completions)"
        )
    return out


def message_problems(job: Job) -> list[str]:
    """data.message_keys / role_names / prompt_in_answers where Axolotl 0.19 has no place for them."""
    d, m, out = job.data, job.method, []
    if d.message_keys or d.role_names:
        field = "data.message_keys" if d.message_keys else "data.role_names"
        fix = f"rename the keys and roles in the data, or use --backend trl; or remove {field}"
        if m.name == "sft" and d.format != "messages":
            out.append(
                f"{field}: Axolotl maps message keys and roles in its chat_template dataset type only (data.format: "
                f"messages; message_property_mappings, roles: axolotl/prompt_strategies/chat_template.py:1380-1400); "
                f"its {d.format} records are strings; {fix}"
            )
        elif m.name in ("dpo", "ipo", "simpo", "orpo", "kto"):
            out.append(
                f"{field}: Axolotl 0.19's {m.name} dataset entries have no message_property_mappings nor roles "
                "(DPODataset, KTODataset: axolotl/utils/schemas/datasets.py:260-305; its validator drops both, and "
                "its DPO chat templates then read role/content with the roles system, user, assistant, tool: "
                f"axolotl/prompt_strategies/dpo/chat_template.py:19-38); {fix}"
            )
        elif m.name == "grpo":
            out.append(
                f"{field}: ptsdk's Axolotl GRPO translation hands the prompt column to TRL as it is (no dataset type "
                "can map it: a user-defined type is loaded as the DPO one, axolotl/utils/data/rl.py:328-329); "
                f"{fix}"
            )
    return out


def message_mapping(job: Job) -> dict[str, Any]:
    """data.message_keys and data.role_names as the chat_template dataset type's own keys (SFTDataset
    message_property_mappings and roles: axolotl/utils/schemas/datasets.py:137-190). Axolotl renames each message
    through the mappings, then maps its role (axolotl/prompt_strategies/chat_template.py:1093-1108); the reasoning
    goes to the template as reasoning_content (template_thinking_key, chat_template.py:55-57, 96)."""
    d = job.data
    out: dict[str, Any] = {}
    if d.message_keys:
        keys = d.message_keys
        mapping = {"role": keys.get("role", "role"), "content": keys.get("content", "content")}
        if keys.get("thinking"):
            mapping["reasoning_content"] = keys["thinking"]
        out["message_property_mappings"] = mapping
    if d.role_names:
        roles: dict[str, list[str]] = {r: [r] for r in CANONICAL_ROLES}
        for name, role in d.role_names.items():
            if name in roles and name != role:
                roles[name].remove(name)
            if name not in roles[role]:
                roles[role].append(name)
        out["roles"] = roles
    return out


def message_notes(job: Job) -> list[Note]:
    d, notes = job.data, []
    thinking = d.message_keys.get("thinking")
    if thinking and d.format == "messages":
        notes.append(
            Note(
                "data.message_keys",
                "set",
                f"thinking: each message's {thinking!r} reaches the chat template as reasoning_content "
                "(message_property_mappings.reasoning_content); a template that never reads reasoning_content "
                "renders (and trains on) none of it",
            )
        )
    if d.prompt_in_answers and job.method.name == "orpo":
        notes.append(
            Note(
                "data.prompt_in_answers",
                "approximated",
                "Axolotl's ORPO chat_template.argilla reads chosen as strictly alternating user/assistant turns "
                "whatever their roles say (a system turn makes the count odd and fails its assertion; a system "
                "prompt comes from a `system` column, and a `prompt` column, when the data has one, replaces every "
                "user turn): axolotl/prompt_strategies/orpo/chat_template.py:78-127; the answers are each "
                "conversation's last turn",
            )
        )
    elif d.prompt_in_answers:
        notes.append(
            Note(
                "data.prompt_in_answers",
                "approximated",
                "Axolotl's chat_template.argilla_chat takes chosen's turns but the last as the prompt and each "
                "conversation's last turn as its answer (axolotl/prompt_strategies/dpo/chat_template.py:191-206): "
                "the same split as the longest shared leading run when the two conversations differ only in their "
                "last turn; chosen and rejected must be message lists",
            )
        )
    return notes


def data_order(job: Job) -> tuple[str, str]:
    """The order Axolotl's trainer reads the training rows in, and why, per method."""
    t, name = job.training, job.method.name
    if owns_order(job):
        return owned_order(job), OWNED_ORDER_SOURCE + " (ptsdk's Axolotl plugin; shuffle_merged_datasets off)"
    seed, shuffled = t.seed, f"shuffled by axolotl (seed {t.seed})"
    # axolotl/utils/data/shared.py:686-716 merge_datasets, called for SFT (utils/data/sft.py:344) and rl
    # (utils/data/rl.py:439) data alike.
    prep = f"Axolotl shuffles the prepared rows once with seed {seed} (shuffle_merged_datasets)"
    before = (
        f"; before that, {prep}" if t.shuffle else "; training.shuffle: false keeps only the prepared rows in order"
    )
    if not t.shuffle and name in (*RANDOM_SAMPLER, "grpo"):
        return "file order", (
            f"training.shuffle: false: ptsdk's Axolotl plugin gives Axolotl's {name} trainer (TRL's) a sequential "
            "sampler" + (" (GRPO: shuffle_dataset off)" if name == "grpo" else "") + "; on its own it samples at random"
        )
    if name == "grpo":
        # AxolotlGRPOTrainer keeps TRL's _get_train_sampler: RepeatSampler(shuffle=shuffle_dataset, seed=seed)
        # (trl/trainer/grpo_trainer.py:1235-1271); Axolotl's trl: section has no shuffle_dataset (default True).
        # ptsdk turns shuffle_merged_datasets off for GRPO, so the sampler sees the rows in file order, as in TRL.
        return repeat_sampler_order(job), (
            f"TRL's GRPO RepeatSampler permutes the prompts with seed {seed} and repeats each num_generations "
            "times; Axolotl has no trl.shuffle_dataset to turn it off; the rows reach it in file order "
            "(shuffle_merged_datasets off)"
        )
    if name in RANDOM_SAMPLER:
        return shuffled, (
            f"Axolotl's {name} trainer (TRL's) samples with transformers' RandomSampler, seeded by seed {seed}: "
            "Axolotl's curriculum_sampling reaches its SFT trainer only" + before
        )
    if name == "kto":
        # TRL 1.9's KTOConfig defaults train_sampling_strategy to sequential (trl/trainer/kto_config.py:106-125):
        # its KL term pairs each row with its neighbours in a fixed-order batch (kto_trainer.py:799-805).
        if t.shuffle:
            return shuffled, (
                f"{prep}; TRL's KTO then reads them in that fixed order every epoch (KTOConfig "
                "train_sampling_strategy sequential: its KL estimate pairs neighbouring rows)"
            )
        return "file order", "TRL's KTO reads the rows in file order (train_sampling_strategy sequential)"
    if t.shuffle:
        return shuffled, f"{prep}, then samples them with transformers' RandomSampler (seed {seed}) every epoch"
    return "file order", "training.shuffle: false: curriculum_sampling (a SequentialSampler) and no shuffle of the rows"


def load_dtype(cfg: dict[str, Any]) -> str:
    """The dtype Axolotl loads the weights in, as its resolve_dtype decides it from the config's flags
    (axolotl/utils/config/__init__.py:198-203): bf16/bfloat16 -> bfloat16; 8-bit, fp16 or float16 -> float16;
    otherwise float32. It has no key of its own for the load dtype: `float32` in its schema
    (axolotl/utils/schemas/config.py:604) is read only by FSDP's quantized shard loading
    (axolotl/utils/model_shard_quant.py:155), and `bfloat16` also turns on the trainer's bf16 autocast
    (axolotl/core/builders/base.py:276)."""
    if cfg.get("bf16") is True or cfg.get("bfloat16"):
        return "bfloat16"
    if cfg.get("load_in_8bit") or cfg.get("fp16") is True or cfg.get("float16"):
        return "float16"
    return "float32"


def load_dtype_notes(job: Job, loaded: str) -> list[Note]:
    """A note when Axolotl loads the weights in another dtype than the job's model.dtype (or, for 'auto',
    than the local checkpoint's own dtype)."""
    wanted: str | None = job.model.dtype
    what = "model.dtype"
    if wanted == "auto":
        wanted, what = checkpoint_dtype(job.model.name_or_path), "the checkpoint's dtype ('auto')"
    if wanted is None or wanted == loaded:
        return []
    return [
        Note(
            "model.dtype",
            "approximated",
            f"Axolotl loads the weights in {loaded}, not {wanted} ({what}): it has no load dtype apart from the "
            f"training precision (torch_dtype comes from bf16/fp16: axolotl/utils/config/__init__.py:198-203; "
            f"precision {job.training.precision} gives {loaded})",
        )
    ]


def checkpoint_dtype(model: str) -> str | None:
    """The dtype a local checkpoint's config.json names (None: not local, or it names none)."""
    path = Path(model) / "config.json"
    try:
        config = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return None
    dtype = (config.get("dtype") or config.get("torch_dtype")) if isinstance(config, dict) else None
    return dtype if dtype in ("float32", "bfloat16", "float16") else None


def deepspeed_config(job: Job) -> dict[str, Any]:
    """The DeepSpeed config ptsdk writes for Axolotl: the job's ZeRO stage and offload; batch sizes, gradient
    accumulation, clipping and precision "auto", which transformers fills from the trainer's arguments (Axolotl's
    micro_batch_size, gradient_accumulation_steps, max_grad_norm, bf16/fp16). It does what Axolotl's own
    deepspeed_configs/zero{1,2,3}.json and zero3_bf16_cpuoffload_*.json do (github.com/axolotl-ai-cloud/axolotl,
    not shipped in the wheel), said ptsdk's way: ZeRO-3 gathers 16-bit weights when saving (so model/ holds
    ordinary safetensors) and sizes its buckets from the model ("auto": hidden_size^2, 0.9 x hidden_size^2,
    10 x hidden_size, transformers' integrations/deepspeed.py trainer_config_finalize); CPU offload keeps the
    trainer's own torch optimizer (zero_force_ds_cpu_optimizer: false) and every training.optimizer is allowed
    (zero_allow_untested_optimizer), as Axolotl's offload configs do."""
    d = job.distributed
    zero: dict[str, Any] = {"stage": d.zero_stage, "overlap_comm": True}
    if d.zero_stage is not None and d.zero_stage >= 2:
        zero["contiguous_gradients"] = True
    if d.zero_stage == 3:
        zero.update(
            reduce_bucket_size="auto",
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
            gather_16bit_weights_on_model_save=True,
        )
    out: dict[str, Any] = {"zero_optimization": zero}
    if d.offload in ("optimizer", "optimizer_and_params"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        out["zero_force_ds_cpu_optimizer"] = False
    if d.offload == "optimizer_and_params" and d.zero_stage == 3:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        **out,
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
    }
