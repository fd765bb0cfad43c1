"""The Axolotl translation without Axolotl: what each job setting becomes in the config, and what ptsdk
refuses or notes before Axolotl's own validator would. Each claim about Axolotl cites its 0.19.0 source
(site-packages/axolotl/...); tests/backends/test_axolotl.py runs that validator on the same translations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, fake_model, minimal_job
from ptsdk.backends.axolotl.backend import AxolotlBackend, deepspeed_config
from ptsdk.plugins.backend import Plan
from ptsdk.spec import Job
from ptsdk.spec.load import validate_job

REWARD = f"{EXAMPLES / 'rewards.py'}:correct"
GPU = {"device": "gpu"}


def job(**overrides: Any) -> Job:
    return validate_job(minimal_job(**overrides))


def translate(j: Job) -> tuple[Plan, dict[str, Any]]:
    plan = AxolotlBackend().translate(j)
    return plan, yaml.safe_load(plan.file("axolotl_config.yaml").content or "")


def notes(plan: Plan, field: str) -> list[str]:
    return [f"[{n.kind}] {n.message}" for n in plan.notes if n.field == field]


# --- 1. model.dtype and model.attn_implementation -----------------------------------------------------


def test_attn_implementation_becomes_axolotls_one_key() -> None:
    """axolotl/utils/schemas/config.py:845-856 `attn_implementation`; the boolean flags are deprecated
    (config.py:790-843) and folded into it by normalize_attn_implementation (config.py:1544-1592)."""
    for impl in ("eager", "sdpa", "flash_attention_2"):
        plan, cfg = translate(job(model={"name_or_path": "org/model", "attn_implementation": impl}, distributed=GPU))
        assert cfg["attn_implementation"] == impl
        assert not {"sdp_attention", "flash_attention", "eager_attention", "xformers_attention"} & set(cfg)
        assert plan.effective["attn_implementation"] == impl
    plan, cfg = translate(job(distributed=GPU))
    # Unset: Axolotl passes nothing and transformers uses its default (sdpa), as for TRL.
    assert "attn_implementation" not in cfg and plan.effective["attn_implementation"] == "sdpa"
    assert "transformers" in plan.effective["sources"]["attn_implementation"]


@pytest.mark.parametrize(
    ("dtype", "precision", "loaded", "noted"),
    [
        ("float32", "bf16", "bfloat16", True),  # the case: fp32 weights asked for, bf16 loaded
        ("float32", "fp16", "float16", True),
        ("float32", "fp32", "float32", False),
        ("bfloat16", "bf16", "bfloat16", False),
        ("bfloat16", "fp32", "float32", True),  # `bfloat16: true` would also turn on bf16 autocast
        ("float16", "fp32", "float16", False),  # Axolotl's `float16` flag: fp16 weights, no autocast
        ("float16", "bf16", "bfloat16", True),
    ],
)
def test_load_dtype_follows_axolotls_precision_flags(dtype: str, precision: str, loaded: str, noted: bool) -> None:
    """Axolotl derives torch_dtype from bf16/bfloat16, then load_in_8bit/fp16/float16, else float32
    (axolotl/utils/config/__init__.py:198-203): no setting loads weights in a dtype of their own. `float16`
    loads fp16 while the trainer's fp16/bf16 stay off (core/builders/base.py:270-278)."""
    plan, cfg = translate(
        job(model={"name_or_path": "org/model", "dtype": dtype}, training={"precision": precision}, distributed=GPU)
    )
    assert plan.effective["load_dtype"] == loaded
    assert cfg.get("float16", False) is (dtype == "float16" and precision == "fp32")
    found = notes(plan, "model.dtype")
    if noted:
        assert found and found[0].startswith("[approximated]") and f"loads the weights in {loaded}" in found[0]
        assert "axolotl/utils/config/__init__.py:198-203" in found[0]
    else:
        assert found == []
    assert "axolotl/utils/config/__init__.py" in plan.effective["sources"]["load_dtype"]


def test_auto_dtype_is_compared_with_the_local_checkpoint(tmp_path: Path) -> None:
    """dtype 'auto' follows the checkpoint elsewhere; Axolotl loads the precision's dtype regardless."""
    model = fake_model(tmp_path / "model")
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "dtype": "bfloat16"}))
    plan, _ = translate(job(model={"name_or_path": str(model)}, training={"precision": "fp32"}, distributed=GPU))
    assert plan.effective["load_dtype"] == "float32"
    assert "not bfloat16 (the checkpoint's dtype ('auto'))" in notes(plan, "model.dtype")[0]
    plan, _ = translate(job(model={"name_or_path": str(model)}, training={"precision": "bf16"}, distributed=GPU))
    assert notes(plan, "model.dtype") == []
    plan, _ = translate(job(training={"precision": "bf16"}, distributed=GPU))  # a hub id: nothing to compare
    assert notes(plan, "model.dtype") == [] and plan.effective["load_dtype"] == "bfloat16"


def test_eight_bit_loads_float16() -> None:
    plan, _ = translate(
        job(
            model={"name_or_path": "org/model", "quantization": "8bit"},
            adapter={"type": "lora"},
            training={"precision": "fp32"},
            distributed=GPU,
        )
    )
    assert plan.effective["load_dtype"] == "float16"


# --- 2. FSDP version ------------------------------------------------------------------------------------


def test_fsdp_is_written_as_fsdp2_with_a_note() -> None:
    """The job cannot choose FSDP1 or 2; ptsdk writes fsdp_version: 2 because Axolotl 0.19 deprecates FSDP1
    (axolotl/utils/schemas/validation.py:1145-1157) and says so in a note."""
    plan, cfg = translate(
        job(distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"}, training={"micro_batch_size": 4})
    )
    assert cfg["fsdp_version"] == 2
    (note,) = notes(plan, "distributed.strategy")
    assert note.startswith("[defaulted]") and "FSDP2" in note and "deprecates FSDP1" in note
    assert "validation.py:1145-1157" in note


def test_fsdp2_with_a_quantized_base_is_refused_for_preference_methods(ptsdk, write_job) -> None:
    """axolotl/utils/schemas/validation.py:1176-1189: FSDP2 + load_in_4bit/8bit with dpo, kto, orpo, ipo."""
    data = minimal_job(
        method={"name": "dpo"},
        model={"name_or_path": "org/model", "quantization": "4bit"},
        adapter={"type": "qlora"},
        distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"},
        training={"micro_batch_size": 4},
    )
    r = ptsdk("validate", str(write_job(data)), "--backend", "axolotl")
    assert r.code == 2 and "FSDP2 cannot train dpo on a quantized base" in r.err, r.err
    data["distributed"] = {"device": "gpu", "gpus_per_node": 2, "strategy": "deepspeed", "zero_stage": 3}
    assert ptsdk("validate", str(write_job(data)), "--backend", "axolotl").code == 0


# --- 3. DeepSpeed ---------------------------------------------------------------------------------------


def deepspeed_job(stage: int, offload: str = "none", gpus: int = 2, **extra: Any) -> Job:
    return job(
        distributed={
            "device": "gpu",
            "gpus_per_node": gpus,
            "strategy": "deepspeed",
            "zero_stage": stage,
            "offload": offload,
            **extra,
        },
        training={"micro_batch_size": 1, "global_batch_size": 16},
    )


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_deepspeed_is_axolotls_deepspeed_key_and_a_json_file(stage: int) -> None:
    """axolotl/utils/schemas/config.py:1051-1056 `deepspeed`: a JSON path; Axolotl sets accelerate's DeepSpeed
    variables itself (axolotl/utils/trainer.py:541-594, 676-688), so torchrun starts it as it starts DDP."""
    plan, cfg = translate(deepspeed_job(stage))
    assert cfg["deepspeed"] == "ds_config.json" and "fsdp_config" not in cfg
    ds = json.loads(plan.file("ds_config.json").content or "")
    assert plan.job is not None and ds == deepspeed_config(plan.job)
    assert ds["zero_optimization"]["stage"] == stage
    # Batch, accumulation, clipping and precision come from the trainer's arguments ("auto").
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
        assert ds[key] == "auto"
    assert ds["gradient_clipping"] == "auto" and ds["bf16"] == {"enabled": "auto"}
    assert (ds["zero_optimization"].get("gather_16bit_weights_on_model_save") is True) is (stage == 3)
    assert "offload_optimizer" not in ds["zero_optimization"]
    assert plan.launcher.kind == "torchrun" and plan.launcher.nproc_per_node == 2
    single, _ = translate(deepspeed_job(stage, gpus=1))
    assert single.launcher.kind == "python"
    multi, _ = translate(deepspeed_job(stage, gpus=8, nodes=2, master_addr="10.0.0.1"))
    assert multi.launcher.kind == "torchrun" and multi.launcher.nnodes == 2


def test_deepspeed_offload() -> None:
    plan, _ = translate(deepspeed_job(3, "optimizer_and_params"))
    ds = json.loads(plan.file("ds_config.json").content or "")
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert ds["zero_force_ds_cpu_optimizer"] is False  # the trainer's own optimizer on offloaded state
    plan, _ = translate(deepspeed_job(2, "optimizer_and_params"))
    ds = json.loads(plan.file("ds_config.json").content or "")
    assert "offload_param" not in ds["zero_optimization"] and "offload_optimizer" in ds["zero_optimization"]
    assert notes(plan, "distributed.offload")[0].startswith("[dropped]")


def test_deepspeed_is_in_the_matrix(ptsdk, write_job) -> None:
    """Axolotl's own ZeRO-3 examples (deepspeed_configs/zero3*.json) used to be refused by the matrix."""
    for stage in (1, 2, 3):
        data = minimal_job(
            distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "deepspeed", "zero_stage": stage},
            training={"micro_batch_size": 4},
        )
        r = ptsdk("validate", str(write_job(data)), "--backend", "axolotl")
        assert r.code == 0, r.err
    cap = {c.key: c for c in AxolotlBackend.capabilities}[("strategy", "deepspeed_zero3")]
    assert cap.verified.value == "validated" and cap.evidence.endswith("test_deepspeed_configs_pass_axolotl_validator")


# --- 4. packing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    [{"name": "dpo"}, {"name": "kto"}, {"name": "orpo"}, {"name": "grpo", "rewards": [REWARD]}],
    ids=lambda m: m["name"],
)
def test_packing_outside_sft_is_refused(ptsdk, write_job, method: dict[str, Any]) -> None:
    """axolotl/utils/schemas/validation.py:706-708: `sample_packing: true` does not work with RLHF training."""
    data = minimal_job(method=method, training={"packing": True})
    r = ptsdk("validate", str(write_job(data)), "--backend", "axolotl")
    assert r.code == 2, r.err
    assert "training.packing: Axolotl packs SFT data only" in r.err and "validation.py:706-708" in r.err
    assert "set training.packing: false" in r.err


def test_packing_for_sft_is_accepted(ptsdk, write_job) -> None:
    r = ptsdk("validate", str(write_job(minimal_job(training={"packing": True}))), "--backend", "axolotl")
    assert r.code == 0, r.err
    cap = {c.key: c for c in AxolotlBackend.capabilities}[("feature", "packing")]
    assert cap.note.startswith("SFT only")


# --- 5. data.columns ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dpo", "ipo", "simpo"])
def test_preference_columns_become_axolotls_user_defined_dpo_type(method: str) -> None:
    """axolotl/utils/schemas/datasets.py:248-257 UserDefinedDPOType; a dict type is loaded as
    user_defined.default (axolotl/utils/data/rl.py:319-329, prompt_strategies/dpo/user_defined.py)."""
    columns = {"prompt": "question", "chosen": "good", "rejected": "bad"}
    plan, cfg = translate(
        job(method={"name": method}, data={"train": {"path": "org/dataset"}, "columns": columns}, distributed=GPU)
    )
    (entry,) = cfg["datasets"]
    assert entry["type"] == {"field_prompt": "question", "field_chosen": "good", "field_rejected": "bad"}
    assert notes(plan, "data.columns")[0].startswith("[set]")


def test_partial_preference_columns_keep_the_canonical_names() -> None:
    _, cfg = translate(
        job(
            method={"name": "dpo"},
            data={"train": {"path": "org/dataset"}, "eval": {"path": "org/dataset"}, "columns": {"chosen": "good"}},
            distributed=GPU,
        )
    )
    expected = {"field_prompt": "prompt", "field_chosen": "good", "field_rejected": "rejected"}
    assert cfg["datasets"][0]["type"] == cfg["test_datasets"][0]["type"] == expected


def test_kto_columns_become_axolotls_user_defined_kto_type() -> None:
    """axolotl/utils/schemas/datasets.py:285-293 UserDefinedKTOType (prompt_strategies/kto/user_defined.py)."""
    columns = {"prompt": "question", "completion": "answer", "label": "ok"}
    _, cfg = translate(
        job(method={"name": "kto"}, data={"train": {"path": "org/dataset"}, "columns": columns}, distributed=GPU)
    )
    assert cfg["datasets"][0]["type"] == {"field_prompt": "question", "field_completion": "answer", "field_label": "ok"}


def test_preference_data_without_columns_has_no_type() -> None:
    _, cfg = translate(job(method={"name": "dpo"}, distributed=GPU))
    assert "type" not in cfg["datasets"][0]


@pytest.mark.parametrize(
    ("method", "columns", "why"),
    [
        ({"name": "orpo"}, {"prompt": "question"}, "prompt_strategies/orpo/chat_template.py"),
        ({"name": "grpo", "rewards": [REWARD]}, {"prompt": "question"}, "prompt_strategies/dpo/user_defined.py"),
    ],
    ids=["orpo", "grpo"],
)
def test_columns_axolotl_cannot_map_are_refused_with_evidence(
    ptsdk, write_job, method: dict[str, Any], columns: dict[str, str], why: str
) -> None:
    data = minimal_job(method=method, data={"train": {"path": "org/dataset"}, "columns": columns})
    r = ptsdk("validate", str(write_job(data)), "--backend", "axolotl")
    assert r.code == 2 and "data.columns:" in r.err and why in r.err and "axolotl/utils/data/rl.py" in r.err, r.err


def test_columns_for_dpo_and_kto_are_accepted(ptsdk, write_job) -> None:
    for method, columns in (("dpo", {"prompt": "question"}), ("kto", {"label": "ok"})):
        data = minimal_job(method={"name": method}, data={"train": {"path": "org/dataset"}, "columns": columns})
        r = ptsdk("validate", str(write_job(data)), "--backend", "axolotl")
        assert r.code == 0, r.err


# --- 6. issue 12: the settings real upstream configs use ------------------------------------------------

NEW_KEYS = (
    "special_tokens",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "cosine_min_lr_ratio",
    "batch_flattening",
    "saves_per_epoch",
    "evals_per_epoch",
)


def test_new_settings_at_their_defaults_write_nothing_new() -> None:
    for j in (job(distributed=GPU), job(method={"name": "dpo"}, distributed=GPU)):
        _, cfg = translate(j)
        assert not set(NEW_KEYS) & set(cfg) and cfg["val_set_size"] == 0.0 and "name" not in cfg["datasets"][0]


def test_sft_settings_become_axolotls_keys() -> None:
    """type alpaca (axolotl/prompt_tokenizers.py:162-172), datasets[].name (schemas/datasets.py:93-96),
    val_set_size, special_tokens (schemas/model.py:179-186), adam_* and cosine_min_lr_ratio
    (core/builders/base.py:633-640), saves/evals_per_epoch (utils/config/__init__.py:249-264)."""
    plan, cfg = translate(
        job(
            data={"train": {"path": "org/dataset", "subset": "main"}, "format": "instruction", "eval_split": 0.1},
            model={"name_or_path": "org/model", "pad_token": "<pad>", "eos_token": "<|eot_id|>"},
            training={"adam_beta2": 0.95, "min_lr_ratio": 0.1, "epochs": 2},
            output={"saves_per_epoch": 1, "evals_per_epoch": 4},
            distributed=GPU,
        )
    )
    assert cfg["datasets"] == [{"path": "org/dataset", "split": "train", "name": "main", "type": "alpaca"}]
    assert cfg["val_set_size"] == 0.1 and notes(plan, "data.eval_split")[0].startswith("[set]")
    assert cfg["special_tokens"] == {"pad_token": "<pad>", "eos_token": "<|eot_id|>"}
    assert (cfg["adam_beta1"], cfg["adam_beta2"], cfg["adam_epsilon"]) == (0.9, 0.95, 1e-8)
    assert cfg["cosine_min_lr_ratio"] == 0.1 and cfg["train_on_inputs"] is False
    assert (cfg["saves_per_epoch"], cfg["evals_per_epoch"], cfg["num_epochs"]) == (1, 4, 2)
    assert "save_strategy" not in cfg and "save_steps" not in cfg and "eval_steps" not in cfg
    assert notes(plan, "output.saves_per_epoch") == []
    # A local Alpaca file: the json loader, no subset.
    _, cfg = translate(job(data={"train": {"path": "train.jsonl"}, "format": "instruction"}, distributed=GPU))
    assert cfg["datasets"][0] == {"path": "train.jsonl", "split": "train", "ds_type": "json", "type": "alpaca"}


def test_per_epoch_cadence_with_max_steps_is_noted() -> None:
    plan, cfg = translate(job(output={"saves_per_epoch": 2}, training={"max_steps": 10}, distributed=GPU))
    assert cfg["saves_per_epoch"] == 2
    (note,) = notes(plan, "output.saves_per_epoch")
    assert note.startswith("[approximated]") and "utils/config/__init__.py:249-264" in note


def test_padding_free_is_batch_flattening() -> None:
    _, cfg = translate(
        job(
            model={"name_or_path": "org/model", "attn_implementation": "flash_attention_2"},
            training={"padding_free": True, "micro_batch_size": 4},
            distributed=GPU,
        )
    )
    assert cfg["batch_flattening"] is True and cfg["sample_packing"] is False


def test_grpo_rollout_settings_go_to_the_trl_section() -> None:
    """generation_batch_size counts completions (grpo/__init__.py:92-93), num_iterations (:140-141),
    the vLLM server (:67-81)."""
    plan, cfg = translate(
        job(
            method={
                "name": "grpo",
                "rewards": [REWARD],
                "num_generations": 4,
                "max_prompt_length": None,
                "kl_coef": 0.04,
                "rollout_batch_size": 8,
                "epochs_per_rollout": 3,
            },
            training={"global_batch_size": 16, "micro_batch_size": 4},
            rollout={"server": "10.0.0.2:8000"},
            distributed=GPU,
        )
    )
    trl = cfg["trl"]
    assert (trl["beta"], trl["generation_batch_size"], trl["num_iterations"]) == (0.04, 32, 3)
    assert (trl["use_vllm"], trl["vllm_mode"], trl["vllm_server_host"], trl["vllm_server_port"]) == (
        True,
        "server",
        "10.0.0.2",
        8000,
    )
    assert notes(plan, "method.max_prompt_length") == [] and "sequence_len" not in cfg
    _, cfg = translate(job(method={"name": "grpo", "rewards": [REWARD]}, distributed=GPU))
    assert not {"generation_batch_size", "num_iterations", "vllm_mode"} & set(cfg["trl"])
    assert cfg["trl"]["use_vllm"] is False


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"training": {"padding_free": True}}, "training.padding_free: Axolotl's batch_flattening needs a varlen"),
        (
            {"method": {"name": "dpo"}, "training": {"padding_free": True}},
            "training.padding_free: Axolotl flattens batches for SFT only",
        ),
        (
            {"training": {"max_tokens_per_micro_batch": 4096}},
            "training.max_tokens_per_micro_batch: axolotl cannot run token-budget",
        ),
        (
            {"method": {"name": "dpo"}, "data": {"train": {"path": "org/dataset", "subset": "main"}}},
            "data.train.subset: Axolotl's dpo dataset entries have no configuration name",
        ),
        (
            {"data": {"train": {"path": "org/dataset"}, "format": "instruction", "columns": {"output": "answer"}}},
            "data.columns: Axolotl's alpaca dataset type reads fixed",
        ),
        (
            {"method": {"name": "grpo", "rewards": [REWARD]}, "rollout": {"engine": "vllm"}},
            "rollout: ptsdk's Axolotl translation generates with vLLM only through an external server",
        ),
        (
            {"method": {"name": "grpo", "rewards": [REWARD], "kl_coef": 0.1, "kl_placement": "reward"}},
            "axolotl cannot run a k3 KL penalty in the reward; backends that can:",
        ),
        (
            {"method": {"name": "grpo", "rewards": [REWARD], "kl_coef": 0.1, "kl_estimator": "k1"}},
            "axolotl cannot run a k1 KL penalty in the loss",
        ),
    ],
    ids=[
        "padding-free-sdpa",
        "padding-free-dpo",
        "token-batching",
        "subset-dpo",
        "alpaca-columns",
        "colocated-vllm",
        "kl-in-reward",
        "kl-k1",
    ],
)
def test_new_settings_axolotl_cannot_honour_are_refused(ptsdk, write_job, overrides: dict, says: str) -> None:
    r = ptsdk("validate", str(write_job(minimal_job(distributed=GPU, **overrides))), "--backend", "axolotl")
    assert r.code == 2 and says in r.err, r.err


def test_a_subset_of_a_local_file_is_refused() -> None:
    j = job(data={"train": {"path": "train.jsonl", "subset": "main"}}, distributed=GPU)
    assert any(
        p.startswith("data.train.subset: train.jsonl is a local file") for p in AxolotlBackend().static_problems(j)
    )


# --- message key/role mappings, a prompt inside chosen/rejected, data order -------------------------------------

SHAREGPT = {
    "train": {"path": "org/dataset"},
    "format": "messages",
    "columns": {"messages": "conversations"},
    "message_keys": {"role": "from", "content": "value", "thinking": "thought"},
    "role_names": {"human": "user", "gpt": "assistant"},
}


def test_message_keys_and_roles_become_chat_template_mappings() -> None:
    """SFTDataset message_property_mappings and roles (axolotl/utils/schemas/datasets.py:137-190), read by
    ChatTemplatePrompter (axolotl/prompt_strategies/chat_template.py:61-80, 1093-1108)."""
    plan, cfg = translate(job(data=SHAREGPT, distributed=GPU))
    entry = cfg["datasets"][0]
    assert entry["field_messages"] == "conversations"
    assert entry["message_property_mappings"] == {"role": "from", "content": "value", "reasoning_content": "thought"}
    assert entry["roles"] == {
        "system": ["system"],
        "user": ["user", "human"],
        "assistant": ["assistant", "gpt"],
        "tool": ["tool"],
    }
    assert any("reasoning_content" in n for n in notes(plan, "data.message_keys"))
    # Only the keys that differ: role names alone write roles, content alone keeps role.
    _, cfg = translate(job(data={**SHAREGPT, "message_keys": {"content": "text"}, "role_names": {}}, distributed=GPU))
    assert cfg["datasets"][0]["message_property_mappings"] == {"role": "role", "content": "text"}
    assert "roles" not in cfg["datasets"][0]
    # A canonical role renamed to another leaves its own list.
    _, cfg = translate(job(data={**SHAREGPT, "message_keys": {}, "role_names": {"user": "assistant"}}, distributed=GPU))
    assert cfg["datasets"][0]["roles"]["user"] == [] and cfg["datasets"][0]["roles"]["assistant"] == [
        "assistant",
        "user",
    ]
    # Unset, nothing new is written.
    _, cfg = translate(job(data={**SHAREGPT, "message_keys": {}, "role_names": {}}, distributed=GPU))
    assert not {"message_property_mappings", "roles"} & set(cfg["datasets"][0])


@pytest.mark.parametrize("method", ["dpo", "ipo", "simpo"])
def test_prompt_in_answers_is_argilla_chat(method: str) -> None:
    """axolotl/prompt_strategies/dpo/chat_template.py:126-244 argilla_chat: field_chosen/field_rejected whole
    conversations, the prompt is chosen's turns but the last."""
    data = {"train": {"path": "org/dataset"}, "prompt_in_answers": True, "columns": {"chosen": "good"}}
    plan, cfg = translate(job(method={"name": method}, data=data, distributed=GPU))
    assert cfg["datasets"][0] == {
        "path": "org/dataset",
        "split": "train",
        "type": "chat_template.argilla_chat",
        "field_chosen": "good",
    }
    assert cfg["chat_template"] == "tokenizer_default"
    assert notes(plan, "data.prompt_in_answers") and not notes(plan, "data.columns")
    assert AxolotlBackend().static_problems(job(method={"name": method}, data=data, distributed=GPU)) == []


def test_prompt_in_answers_for_orpo_is_its_own_argilla_loader() -> None:
    """axolotl/prompt_strategies/orpo/chat_template.py:251-280 argilla (ORPO's loader package has no argilla_chat)."""
    data = {"train": {"path": "org/dataset"}, "prompt_in_answers": True}
    j = job(method={"name": "orpo"}, data=data, distributed=GPU)
    plan, cfg = translate(j)
    assert cfg["datasets"][0]["type"] == "chat_template.argilla" and cfg["chat_template"] == "tokenizer_default"
    assert any("strictly alternating" in n for n in notes(plan, "data.prompt_in_answers"))
    assert AxolotlBackend().static_problems(j) == []


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (
            {"method": {"name": "dpo"}, "data": {"train": {"path": "org/d"}, "message_keys": {"role": "from"}}},
            "data.message_keys: Axolotl 0.19's dpo dataset entries have no message_property_mappings",
        ),
        (
            {"method": {"name": "kto"}, "data": {"train": {"path": "org/d"}, "role_names": {"gpt": "assistant"}}},
            "data.role_names: Axolotl 0.19's kto dataset entries",
        ),
        (
            {
                "method": {"name": "grpo", "rewards": [REWARD]},
                "data": {"train": {"path": "org/d"}, "role_names": {"a": "user"}},
            },
            "data.role_names: ptsdk's Axolotl GRPO translation hands the prompt column to TRL as it is",
        ),
        (
            {"data": {"train": {"path": "org/d"}, "message_keys": {"content": "text"}}},
            "data.message_keys: Axolotl maps message keys and roles in its chat_template dataset type only",
        ),
        (
            {
                "method": {"name": "orpo"},
                "data": {"train": {"path": "org/d"}, "prompt_in_answers": True, "columns": {"chosen": "good"}},
            },
            "data.columns: Axolotl's ORPO datasets have no column mapping",
        ),
    ],
    ids=["dpo-keys", "kto-roles", "grpo-roles", "sft-strings", "orpo-implicit-columns"],
)
def test_message_settings_axolotl_cannot_honour_are_refused(ptsdk, write_job, overrides: dict, says: str) -> None:
    r = ptsdk("validate", str(write_job(minimal_job(distributed=GPU, **overrides))), "--backend", "axolotl")
    assert r.code == 2 and says in r.err, r.err


@pytest.mark.parametrize(
    ("method", "shuffle", "order", "source"),
    [
        ("sft", True, "ptsdk's order (seed 42, per epoch)", "ptsdk's seeded permutation per epoch"),
        ("sft", False, "file order", "curriculum_sampling"),
        ("dpo", False, "file order", "ptsdk's Axolotl plugin gives Axolotl's dpo trainer (TRL's) a sequential"),
        ("orpo", True, "ptsdk's order (seed 42, per epoch)", "in place of its own sampler"),
        ("kto", True, "shuffled by axolotl (seed 42)", "reads them in that fixed order every epoch"),
        ("kto", False, "file order", "train_sampling_strategy sequential"),
        ("grpo", True, "TRL's RepeatSampler (seed 42)", "RepeatSampler permutes the prompts with seed 42"),
        ("grpo", False, "file order", "shuffle_dataset off"),
    ],
)
def test_data_order_names_each_methods_own_sampler(method: str, shuffle: bool, order: str, source: str) -> None:
    m: dict[str, Any] = {"name": method, **({"rewards": [REWARD]} if method == "grpo" else {})}
    plan, _ = translate(job(method=m, training={"shuffle": shuffle, "seed": 42}, distributed=GPU))
    assert plan.effective["data_order"] == order
    assert source in plan.effective["sources"]["data_order"]
    assert bool(notes(plan, "training.shuffle")) == (not shuffle and method in ("dpo", "orpo", "grpo"))
