"""TRL translation without TRL: what ptsdk writes for TRL 1.16 and what it refuses before anything launches.

The TRL/transformers behaviour each test relies on is cited in the backend's comments (file:line in the
TRL 1.16.0 / transformers 5.24.0 wheels); tests/backends/test_trl.py checks the same translations with TRL's
own parser and trainers.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from conftest import minimal_job
from ptsdk.backends.trl.backend import TRLBackend, rl_eval_batch
from ptsdk.matrix import Verified, check
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.kit import HF_OPTIMIZERS
from ptsdk.plugins.manager import get_backends
from ptsdk.spec import validate_job
from ptsdk.spec.training import OPTIMIZERS

RL = {"name": "grpo", "num_generations": 4, "rewards": ["m:f"]}


def translate(**overrides: Any) -> tuple[Plan, dict[str, Any]]:
    plan = TRLBackend().translate(validate_job(minimal_job(**overrides)))
    return plan, yaml.safe_load(plan.file("trl_config.yaml").content)


def notes(plan: Plan, field: str) -> str:
    return "\n".join(n.message for n in plan.notes if n.field == field)


# --- 1. optimizers ----------------------------------------------------------------------------------


def test_every_spec_optimizer_has_a_transformers_name() -> None:
    """transformers' OptimizerNames (training_args.py:113-158) holds each value; the TRL parser test checks it."""
    assert set(HF_OPTIMIZERS) == set(OPTIMIZERS)
    assert {"adamw", "adamw_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"} <= set(OPTIMIZERS)
    assert HF_OPTIMIZERS["adamw"] == "adamw_torch" and HF_OPTIMIZERS["adamw_fused"] == "adamw_torch_fused"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_trl_writes_each_optimizer(name: str) -> None:
    plan, cfg = translate(training={"optimizer": name})
    assert cfg["optim"] == HF_OPTIMIZERS[name]
    assert plan.effective["optimizer"] == HF_OPTIMIZERS[name]
    assert notes(plan, "training.optimizer").startswith(HF_OPTIMIZERS[name])


def test_adamw_is_unfused_and_says_trl_default_is_fused() -> None:
    """TRL's (transformers') default optim is adamw_torch_fused for torch >= 2.8 (training_args.py:806-811);
    ptsdk's adamw keeps torch's unfused AdamW, the arithmetic the other backends run, and says so."""
    plan, cfg = translate()
    assert cfg["optim"] == "adamw_torch"
    assert "adamw_torch_fused" in notes(plan, "training.optimizer")
    assert "needs a GPU" not in notes(plan, "training.optimizer")  # torch 2.13 has the fused kernel on CPU
    plan, cfg = translate(training={"optimizer": "adamw_fused"})
    assert cfg["optim"] == "adamw_torch_fused" and "TRL's own default" in notes(plan, "training.optimizer")


def test_paged_optimizer_on_cpu_is_noted() -> None:
    plan, _ = translate(training={"optimizer": "paged_adamw_8bit", "precision": "fp32"}, distributed={"device": "cpu"})
    assert "does not page" in notes(plan, "training.optimizer")


@pytest.mark.parametrize("name", [o for o in OPTIMIZERS if o != "adamw"])
@pytest.mark.parametrize("backend", ["verl", "openrlhf"])
def test_verl_and_openrlhf_refuse_other_optimizers_with_a_reason(backend: str, name: str) -> None:
    job = validate_job(minimal_job(training={"optimizer": name}))
    problems = [p for p in get_backends()[backend]().static_problems(job) if p.startswith("training.optimizer:")]
    assert len(problems) == 1, problems
    assert "adamw" in problems[0] and (name in problems[0] or "fused" in problems[0])


def test_verl_and_openrlhf_accept_adamw() -> None:
    job = validate_job(minimal_job())
    for backend in ("verl", "openrlhf"):
        assert not [p for p in get_backends()[backend]().static_problems(job) if p.startswith("training.optimizer")]


# --- 2. packing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ({"name": "dpo"}, "pref_train.jsonl"),
        ({"name": "kto"}, "kto_train.jsonl"),
        ({**RL, "rewards": []}, "rl_train.jsonl"),
    ],
    ids=["dpo", "kto", "grpo"],
)
def test_packing_outside_sft_is_refused_by_validate(ptsdk, write_job, method: dict, data: str) -> None:
    """TRL 1.16 has `packing` in SFTConfig only (trl/trainer/sft_config.py:222); TrlParser refuses the key for
    DPO/GRPO/KTO (trl/scripts/utils.py:353-357: "Unknown arguments from config file: ['--packing', 'True']")."""
    from conftest import EXAMPLES

    if method["name"] == "grpo":
        method["rewards"] = [f"{EXAMPLES / 'rewards.py'}:correct"]
    job = write_job(
        minimal_job(
            method=method,
            data={"train": {"path": str(EXAMPLES / "data" / data)}},
            training={"packing": True, "global_batch_size": 8, "micro_batch_size": 8},
        )
    )
    r = ptsdk("validate", str(job), "--backend", "trl")
    assert r.code == 2, r.out + r.err
    assert "training.packing: TRL 1.16.0 packs sequences for SFT only" in r.err


def test_sft_packing_is_still_accepted(ptsdk, write_job) -> None:
    from conftest import EXAMPLES

    job = write_job(
        minimal_job(data={"train": {"path": str(EXAMPLES / "data" / "sft_train.jsonl")}}, training={"packing": True})
    )
    r = ptsdk("validate", str(job), "--backend", "trl")
    assert r.code == 0, r.err


# --- 3. reward models -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["grpo", "rloo"])
def test_reward_model_is_translated_into_reward_funcs(name: str) -> None:
    """GRPOTrainer/RLOOTrainer load a string in reward_funcs as AutoModelForSequenceClassification
    (trl/trainer/grpo_trainer.py:550-560, rloo_trainer.py:468-478)."""
    method = {**RL, "name": name, "reward_model": "/models/rm"}
    job = validate_job(minimal_job(method=method))
    assert check(job, "trl", get_backends()).ok
    plan, cfg = translate(method=method)
    assert cfg["reward_funcs"] == ["m:f", "/models/rm"]
    assert "AutoModelForSequenceClassification" in notes(plan, "method.reward_model")
    (cap,) = [c for c in TRLBackend.capabilities if c.key == ("reward", "model")]
    assert cap.verified is Verified.trained and cap.evidence.endswith("::test_grpo_reward_model")


def test_runner_tells_reward_models_from_functions() -> None:
    from ptsdk.backends.trl import train_trl

    assert train_trl.is_reward_model("org/reward-model")
    assert not train_trl.is_reward_model("/data/rewards.py:correct")
    assert not train_trl.is_reward_model("my.module:score")


# --- 4. GRPO/RLOO evaluation batch ------------------------------------------------------------------


@pytest.mark.parametrize("micro", [1, 2, 3, 6, 8])
@pytest.mark.parametrize("gens", [2, 3, 4, 8])
@pytest.mark.parametrize("world", [1, 2, 3, 8, 32])
def test_rl_eval_batch_is_the_smallest_valid_size(micro: int, gens: int, world: int) -> None:
    """GRPOConfig/RLOOConfig: (per_device_eval_batch_size x processes) % num_generations == 0
    (trl/trainer/grpo_config.py:1118-1127, rloo_config.py:681-690)."""
    b = rl_eval_batch(micro, gens, world)
    assert b >= micro and (b * world) % gens == 0
    assert all((smaller * world) % gens for smaller in range(micro, b))
    assert b - micro < gens // math.gcd(gens, world)


def test_grpo_with_eval_gets_a_valid_eval_batch() -> None:
    method = {**RL, "num_generations": 3}
    plan, cfg = translate(
        method=method,
        data={"train": {"path": "o/d"}, "eval": {"path": "o/e"}},
        training={"global_batch_size": 6, "micro_batch_size": 6},
        output={"eval_steps": 1},
    )
    assert cfg["per_device_eval_batch_size"] == 6 and cfg["eval_strategy"] == "steps"
    assert "multiple of num_generations=3" in notes(plan, "data.eval")
    _, cfg = translate(
        method=method, data={"train": {"path": "o/d"}, "eval": {"path": "o/e"}}, training={"global_batch_size": 6}
    )
    assert cfg["per_device_eval_batch_size"] == 3  # micro 1 -> one whole group of 3
    _, cfg = translate(method=method, training={"global_batch_size": 6})
    assert "per_device_eval_batch_size" not in cfg  # no eval data: TRL's default is never used


# --- 5. the native check sees the job's world -------------------------------------------------------


def test_check_request_carries_the_world() -> None:
    from pathlib import Path

    plan, _ = translate(
        method={**RL, "num_generations": 8},
        training={"global_batch_size": 32, "micro_batch_size": 1, "precision": "bf16"},
        distributed={"nodes": 4, "gpus_per_node": 8, "master_addr": "10.0.0.1"},
    )
    request = TRLBackend().check_request(plan, Path("/tmp/x"))
    assert request["world_size"] == 32 and request["local_world_size"] == 8


# --- 6. effective load dtype and attention ----------------------------------------------------------


def test_effective_load_dtype_and_attention() -> None:
    plan, _ = translate(model={"name_or_path": "org/model", "dtype": "bfloat16"})
    eff = plan.effective
    assert eff["load_dtype"] == "bfloat16"
    assert eff["attn_implementation"] == "sdpa" and "sdpa" in eff["sources"]["attn_implementation"]
    plan, cfg = translate(model={"name_or_path": "org/model", "attn_implementation": "eager"})
    assert plan.effective["attn_implementation"] == cfg["attn_implementation"] == "eager"
    assert "attn_implementation" not in plan.effective["sources"]
    assert plan.effective["load_dtype"] == "auto"


# --- 7. issue #12: the spec's new settings ----------------------------------------------------------


def problems(**overrides: Any) -> list[str]:
    return TRLBackend().static_problems(validate_job(minimal_job(**overrides)))


def test_defaults_translate_as_before() -> None:
    """A job that sets none of the new fields gets none of the new keys."""
    _, cfg = translate()
    new = {
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "lr_scheduler_kwargs",
        "padding_free",
        "eval_holdout",
        "instruction_records",
        "train_subset",
        "tokenizer_pad_token",
        "tokenizer_eos_token",
        "eos_token",
        "save_steps",
    }
    assert not new & set(cfg) and cfg["lr_scheduler_type"] == "cosine" and cfg["save_strategy"] == "no"
    _, cfg = translate(method=RL)
    assert not {"generation_batch_size", "num_iterations", "use_vllm", "drop_prompts_over"} & set(cfg)


def test_adam_and_cosine_floor() -> None:
    _, cfg = translate(training={"adam_beta1": 0.8, "adam_beta2": 0.95, "min_lr_ratio": 0.1})
    assert (cfg["adam_beta1"], cfg["adam_beta2"], cfg["adam_epsilon"]) == (0.8, 0.95, 1e-8)
    assert cfg["lr_scheduler_type"] == "cosine_with_min_lr" and cfg["lr_scheduler_kwargs"] == {"min_lr_rate": 0.1}


def test_data_fields() -> None:
    plan, cfg = translate(
        data={"train": {"path": "openai/gsm8k", "subset": "main"}, "eval_split": 0.1, "format": "instruction"}
    )
    assert cfg["train_subset"] == "main" and cfg["eval_holdout"] == 0.1 and cfg["instruction_records"] is True
    assert "seed 42" in notes(plan, "data.eval_split") and "Alpaca" in notes(plan, "data.format")
    _, cfg = translate(data={"train": {"path": "o/d"}, "eval": {"path": "o/e", "subset": "x"}})
    assert cfg["eval_subset"] == "x" and "train_subset" not in cfg


def test_special_tokens_per_method() -> None:
    """SFTConfig's eos_token (it also updates the model's eos ids); the tokenizer's everywhere else."""
    _, cfg = translate(model={"name_or_path": "o/m", "pad_token": "<pad>", "eos_token": "<|im_end|>"})
    assert cfg["tokenizer_pad_token"] == "<pad>" and cfg["eos_token"] == "<|im_end|>"
    _, cfg = translate(method={"name": "dpo"}, model={"name_or_path": "o/m", "eos_token": "<|im_end|>"})
    assert cfg["tokenizer_eos_token"] == "<|im_end|>" and "eos_token" not in cfg


def test_padding_free_sft_only() -> None:
    plan, cfg = translate(training={"padding_free": True})
    assert cfg["padding_free"] is True and cfg["max_length"] is None
    assert "not enforced" in notes(plan, "data.max_length")
    _, cfg = translate(training={"padding_free": True, "packing": True})
    assert cfg["max_length"] == 1024  # packing enforces it
    for method in ({"name": "dpo"}, RL):
        assert any(
            p.startswith("training.padding_free: TRL") for p in problems(method=method, training={"padding_free": True})
        )
    assert not [p for p in problems(training={"padding_free": True}) if "padding_free" in p]


def test_token_batching_and_megatron_are_refused() -> None:
    assert any(
        p.startswith("training.max_tokens_per_micro_batch: TRL")
        for p in problems(training={"max_tokens_per_micro_batch": 4096})
    )
    result = check(validate_job(minimal_job(training={"max_tokens_per_micro_batch": 4096})), "trl", get_backends())
    assert not result.ok
    job = validate_job(minimal_job(distributed={"gpus_per_node": 2, "strategy": "megatron", "tensor_parallel_size": 2}))
    assert not check(job, "trl", get_backends()).ok


@pytest.mark.parametrize(
    ("output", "training", "expect"),
    [
        ({"saves_per_epoch": 1}, {}, {"save_strategy": "epoch"}),
        ({"saves_per_epoch": 4}, {"epochs": 2}, {"save_strategy": "steps", "save_steps": 0.125}),
        ({"saves_per_epoch": 2}, {"epochs": 0.25}, {"save_strategy": "steps", "save_steps": 1 - 1e-9}),
        ({"evals_per_epoch": 1}, {}, {"eval_strategy": "epoch"}),
        ({"evals_per_epoch": 3}, {}, {"eval_strategy": "steps", "eval_steps": 1 / 3}),
    ],
)
def test_per_epoch_cadence(output: dict, training: dict, expect: dict) -> None:
    """transformers: a fractional save/eval step is ceil(total steps x fraction) (trainer_callback.py:156-166)."""
    _, cfg = translate(data={"train": {"path": "o/d"}, "eval_split": 0.1}, output=output, training=training)
    assert {k: cfg.get(k) for k in expect} == expect


def test_per_epoch_cadence_with_max_steps_is_refused_above_one() -> None:
    assert any(
        p.startswith("output.saves_per_epoch:")
        for p in problems(output={"saves_per_epoch": 2}, training={"max_steps": 10})
    )
    assert not problems(output={"saves_per_epoch": 1}, training={"max_steps": 10})


def test_rl_rollout_fields() -> None:
    plan, cfg = translate(
        method={**RL, "rollout_batch_size": 4, "epochs_per_rollout": 3, "kl_coef": 0.02, "max_prompt_length": None},
        training={"global_batch_size": 8},
    )
    assert cfg["generation_batch_size"] == 16 and cfg["num_iterations"] == 3 and cfg["beta"] == 0.02
    assert "per 2 step(s)" in notes(plan, "training.global_batch_size")
    assert "k3" in notes(plan, "method.kl_coef") and not notes(plan, "method.max_prompt_length")


@pytest.mark.parametrize(
    ("name", "placement", "estimator", "refused"),
    [
        ("grpo", "loss", "k3", False),
        ("grpo", "reward", "k1", True),
        ("grpo", "loss", "k1", True),
        ("rloo", "reward", "k1", False),
        ("rloo", "loss", "k3", True),
        ("rloo", "reward", "k2", True),
    ],
)
def test_kl_placement_per_method(name: str, placement: str, estimator: str, refused: bool) -> None:
    method = {**RL, "name": name, "kl_coef": 0.05, "kl_placement": placement, "kl_estimator": estimator}
    found = [p for p in problems(method=method) if p.startswith("method.kl_placement:")]
    assert bool(found) is refused, found
    # With no KL (kl_coef 0) nothing is refused.
    assert not [p for p in problems(method={**method, "kl_coef": 0.0}) if p.startswith("method.kl_")]


def test_rl_prompt_limit_and_drop() -> None:
    plan, cfg = translate(method={**RL, "max_prompt_length": 64}, data={"train": {"path": "o/d"}, "truncation": "drop"})
    assert cfg["drop_prompts_over"] == 64 and "drops records" in notes(plan, "data.truncation")
    plan, cfg = translate(method={**RL, "max_prompt_length": 64})
    assert "drop_prompts_over" not in cfg and "kept whole" in notes(plan, "method.max_prompt_length")


def test_rollout_engine_and_server() -> None:
    gpu = {"distributed": {"device": "gpu"}}
    _, cfg = translate(method=RL, rollout={"server": "vllm-host:8001"}, **gpu)
    assert (cfg["use_vllm"], cfg["vllm_mode"], cfg["vllm_server_host"], cfg["vllm_server_port"]) == (
        True,
        "server",
        "vllm-host",
        8001,
    )
    _, cfg = translate(method=RL, rollout={"tensor_parallel_size": 1, "gpu_memory_utilization": 0.4}, **gpu)
    assert cfg["vllm_mode"] == "colocate" and cfg["vllm_gpu_memory_utilization"] == 0.4
    assert any(p.startswith("rollout.colocate:") for p in problems(method=RL, rollout={"colocate": False}, **gpu))
    assert not [p for p in problems(method=RL, rollout={"colocate": False, "server": "h:1"}, **gpu) if "rollout" in p]
    assert check(validate_job(minimal_job(method=RL, rollout={"server": "h:1"}, **gpu)), "trl", get_backends()).ok


def test_every_new_feature_is_declared_or_refused() -> None:
    declared = {c.name for c in TRLBackend.capabilities if c.kind == "feature"}
    assert {
        "adam_betas",
        "min_lr",
        "eval_split",
        "per_epoch_cadence",
        "instruction_records",
        "special_tokens",
        "padding_free",
        "dataset_subset",
        "unlimited_prompt",
        "several_steps_per_rollout",
        "epochs_per_rollout",
        "rollout_server",
        "kl_in_loss:k3",
        "kl_in_reward:k1",
        "message_mapping",
        "implicit_prompt",
    } <= declared
    assert "token_batching" not in declared


# --- message mappings, implicit prompt, data order ---------------------------------------------------


SHAREGPT = {"message_keys": {"role": "from", "content": "value"}, "role_names": {"human": "user", "gpt": "assistant"}}


def test_message_mappings_reach_the_runner() -> None:
    plan, cfg = translate(data={"train": {"path": "o/d"}, "format": "messages", **SHAREGPT})
    assert cfg["message_keys"] == ["content=value", "role=from"]
    assert cfg["role_names"] == ["gpt=assistant", "human=user"]
    assert "canonical_messages" in notes(plan, "data.message_keys")
    assert check(validate_job(minimal_job(data={"train": {"path": "o/d"}, **SHAREGPT})), "trl", get_backends()).ok


def test_thinking_note_says_whether_the_template_renders_it(tmp_path) -> None:
    keys = {"role": "from", "content": "value", "thinking": "thought"}
    data = {"train": {"path": "o/d"}, "format": "messages", "message_keys": keys}
    plan, cfg = translate(data=data, model={"name_or_path": "o/m", "chat_template": "{{ messages }}"})
    assert "thinking=thought" in cfg["message_keys"]
    dropped = [n for n in plan.notes if n.field == "data.message_keys" and n.kind == "dropped"]
    assert dropped and "never reads reasoning_content" in dropped[0].message
    template = "{% for m in messages %}{{ m.reasoning_content }}{{ m.content }}{% endfor %}"
    plan, _ = translate(data=data, model={"name_or_path": "o/m", "chat_template": template})
    assert not [n for n in plan.notes if n.field == "data.message_keys" and n.kind == "dropped"]
    assert "reasoning_content" in notes(plan, "data.message_keys")


@pytest.mark.parametrize("name", ["dpo", "ipo", "orpo", "cpo", "simpo"])
def test_implicit_prompt_is_left_to_trl(name: str) -> None:
    plan, cfg = translate(method={"name": name}, data={"train": {"path": "o/d"}, "prompt_in_answers": True})
    assert cfg["prompt_in_answers"] is True and "extract_prompt" in notes(plan, "data.prompt_in_answers")
    job = validate_job(minimal_job(method={"name": name}, data={"train": {"path": "o/d"}, "prompt_in_answers": True}))
    assert check(job, "trl", get_backends()).ok


def test_defaults_write_no_message_keys() -> None:
    for method in ({"name": "sft"}, {"name": "dpo"}, RL):
        _, cfg = translate(method=method)
        assert not {"message_keys", "role_names", "prompt_in_answers", "shuffle_dataset"} & set(cfg)


@pytest.mark.parametrize(
    ("method", "shuffle", "order", "source"),
    [
        ({"name": "sft"}, True, "ptsdk's order (seed 42, per epoch)", "ptsdk's seeded permutation per epoch"),
        ({"name": "sft"}, False, "file order", "training.shuffle: false"),
        ({"name": "dpo"}, True, "ptsdk's order (seed 42, per epoch)", "in place of its own sampler"),
        ({"name": "kto"}, True, "file order", "ptsdk forces file order for TRL's KTO"),
        ({"name": "kto"}, False, "file order", "training.shuffle: false"),
        (RL, True, "TRL's RepeatSampler (seed 42)", "RepeatSampler"),
        (RL, False, "file order", "training.shuffle: false"),
        ({**RL, "name": "rloo"}, False, "file order", "training.shuffle: false"),
    ],
)
def test_data_order_and_its_source(method: dict, shuffle: bool, order: str, source: str) -> None:
    """Effective.data_order names what TRL really does, and sources says why (for translate --diff)."""
    plan, cfg = translate(method=method, training={"shuffle": shuffle})
    assert plan.effective["data_order"] == order
    assert source in plan.effective["sources"]["data_order"]
    if method.get("name") in ("grpo", "rloo"):
        # GRPO/RLOO's RepeatSampler reads shuffle_dataset; the sampling strategy alone leaves them shuffling.
        assert cfg.get("shuffle_dataset", True) is shuffle
    if method["name"] == "kto":
        assert cfg["train_sampling_strategy"] == "sequential"


def test_data_order_source_names_the_held_out_split() -> None:
    plan, _ = translate(data={"train": {"path": "o/d"}, "eval_split": 0.1}, training={"shuffle": False})
    assert "eval_split" in plan.effective["sources"]["data_order"] and plan.effective["data_order"] == "file order"
