"""The settings real upstream jobs need (issue 12): each one validates, contradictions name the field and the
fix, and each one, away from its default, is a matrix feature that a backend runs or refuses by name."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import minimal_job
from ptsdk.errors import SpecError
from ptsdk.matrix.check import KNOWN_KEYS, feasibility, features_of
from ptsdk.plugins.manager import get_backends
from ptsdk.spec import validate_job


def problems(data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_job(data)
    return info.value.lines


def rl(**method: Any) -> dict[str, Any]:
    return {"name": "grpo", "num_generations": 4, "rewards": ["m:f"], **method}


# Every optional setting, away from its default, and the feature it asks the backends for.
FEATURES: list[tuple[dict[str, Any], str]] = [
    ({"training": {"padding_free": True}}, "padding_free"),
    ({"training": {"max_tokens_per_micro_batch": 4096}}, "token_batching"),
    ({"training": {"adam_beta2": 0.95}}, "adam_betas"),
    ({"training": {"adam_epsilon": 1e-6}}, "adam_betas"),
    ({"training": {"min_lr_ratio": 0.1}}, "min_lr"),
    ({"model": {"name_or_path": "org/model", "pad_token": "<pad>"}}, "special_tokens"),
    ({"model": {"name_or_path": "org/model", "eos_token": "<|im_end|>"}}, "special_tokens"),
    ({"data": {"train": {"path": "openai/gsm8k", "subset": "main"}}}, "dataset_subset"),
    ({"data": {"train": {"path": "train.jsonl"}, "eval_split": 0.05}}, "eval_split"),
    ({"data": {"train": {"path": "train.jsonl"}, "format": "instruction"}}, "instruction_records"),
    ({"output": {"saves_per_epoch": 2}}, "per_epoch_cadence"),
    (
        {"data": {"train": {"path": "t.jsonl"}, "format": "messages", "message_keys": {"role": "from"}}},
        "message_mapping",
    ),
    (
        {"data": {"train": {"path": "t.jsonl"}, "format": "messages", "role_names": {"gpt": "assistant"}}},
        "message_mapping",
    ),
    ({"method": {"name": "dpo"}, "data": {"train": {"path": "t.jsonl"}, "prompt_in_answers": True}}, "implicit_prompt"),
    ({"method": rl(max_prompt_length=None)}, "unlimited_prompt"),
    ({"method": rl(kl_coef=0.01)}, "kl_in_loss:k3"),
    ({"method": rl(kl_coef=0.01, kl_placement="reward", kl_estimator="k1")}, "kl_in_reward:k1"),
    ({"method": {**rl(), "name": "ppo", "num_generations": 1}}, "kl_in_reward:k1"),
    ({"method": rl(rollout_batch_size=8)}, "several_steps_per_rollout"),
    ({"method": rl(epochs_per_rollout=2)}, "epochs_per_rollout"),
    (
        {"method": rl(), "rollout": {"server": "10.0.0.5:8000"}},
        "rollout_server",
    ),
]


def job_with(overrides: dict[str, Any]) -> dict[str, Any]:
    data = minimal_job()
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and key != "method" else value
    return data


@pytest.mark.parametrize(("overrides", "feature"), FEATURES, ids=[f for _, f in FEATURES])
def test_each_setting_is_a_feature_backends_run_or_refuse_by_name(overrides: dict, feature: str) -> None:
    job = validate_job(job_with(overrides))
    assert feature in [name for name, _, _ in features_of(job)]
    assert ("feature", feature) in KNOWN_KEYS  # so `ptsdk matrix` shows its row even where no backend has it
    for name, result in feasibility(job, get_backends()).items():
        declared = {c.name for c in get_backends()[name].capabilities if c.kind == "feature"}
        unmet = [u for u in result.unmet if u.requirement.name == feature]
        if feature in declared:
            assert not unmet
        else:  # the matrix refuses it, naming the field and who can
            (u,) = unmet
            assert str(u).startswith(u.requirement.field + ": " + name + " cannot run")
            assert "backends that can:" in str(u)


def test_defaults_ask_for_no_feature() -> None:
    assert features_of(validate_job(minimal_job())) == []
    assert features_of(validate_job(minimal_job(method=rl()))) == []  # GRPO's KL is off by default


def test_new_settings_round_trip_through_the_resolved_job() -> None:
    job = validate_job(
        minimal_job(
            data={"train": {"path": "openai/gsm8k", "subset": "main"}, "eval_split": 0.1},
            training={"adam_beta1": 0.8, "adam_beta2": 0.95, "adam_epsilon": 1e-6, "min_lr_ratio": 0.1},
            output={"evals_per_epoch": 4, "saves_per_epoch": 1},
            model={"name_or_path": "org/model", "pad_token": "<pad>", "eos_token": "</s>"},
        )
    )
    again = validate_job(job.model_dump(mode="json"))
    assert again == job
    assert job.data.train.subset == "main"
    assert (job.training.adam_beta1, job.training.adam_beta2, job.training.adam_epsilon) == (0.8, 0.95, 1e-6)


def test_kl_defaults_follow_each_method() -> None:
    assert (validate_job(minimal_job(method=rl())).method.kl_placement, "k3") == ("loss", "k3")
    for name in ("ppo", "rloo", "reinforce_pp"):
        gens = 4 if name == "rloo" else 1
        m = validate_job(minimal_job(method={**rl(), "name": name, "num_generations": gens})).method
        assert (m.kl_placement, m.kl_estimator) == ("reward", "k1"), name


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (
            {"data": {"train": {"path": "t.jsonl"}, "eval": {"path": "e.jsonl"}, "eval_split": 0.1}},
            "data.eval_split: data.eval already names the evaluation data",
        ),
        ({"data": {"train": {"path": "t.jsonl"}, "eval_split": 1.0}}, "data.eval_split: Input should be less than 1"),
        ({"data": {"train": {"path": "t.jsonl"}, "eval_split": 0}}, "data.eval_split: Input should be greater than 0"),
        ({"data": {"train": {"path": "t.jsonl", "subset": ""}}}, "data.train.subset:"),
        ({"output": {"save_steps": 10, "saves_per_epoch": 2}}, "output.saves_per_epoch: set only one of"),
        ({"data": {"train": {"path": "t.jsonl"}, "prompt_in_answers": True}}, "data.prompt_in_answers: applies to"),
        ({"data": {"train": {"path": "t.jsonl"}, "role_names": {"gpt": "bot"}}}, "data.role_names.gpt"),
        ({"data": {"train": {"path": "t.jsonl"}, "message_keys": {"speaker": "from"}}}, "data.message_keys"),
        ({"output": {"evals_per_epoch": 2}}, "output.evals_per_epoch: evaluation needs data"),
        ({"training": {"min_lr_ratio": 0.1, "lr_scheduler": "linear"}}, "training.min_lr_ratio"),
        ({"training": {"adam_beta2": 1.0}}, "training.adam_beta2: Input should be less than 1"),
        ({"training": {"adam_epsilon": float("nan")}}, "training.adam_epsilon"),
        ({"training": {"max_tokens_per_micro_batch": 0}}, "training.max_tokens_per_micro_batch"),
        ({"model": {"name_or_path": "m", "pad_token": ""}}, "model.pad_token"),
        ({"method": rl(rollout_batch_size=3)}, "method.rollout_batch_size: 3 prompts x num_generations 4 = 12"),
        ({"method": rl(epochs_per_rollout=0)}, "method.epochs_per_rollout"),
        ({"method": rl(kl_placement="value")}, "method.kl_placement"),
        ({"method": rl(kl_estimator="k4")}, "method.kl_estimator"),
        ({"method": rl(), "rollout": {"server": "no-port"}}, "rollout.server"),
        (
            {
                "method": rl(max_prompt_length=512, max_completion_length=1024),
                "data": {"train": {"path": "t.jsonl"}, "max_length": 1024},
            },
            "data.max_length: 1024 is shorter than max_prompt_length + max_completion_length = 1536",
        ),
        (
            {"distributed": {"gpus_per_node": 8, "tensor_parallel_size": 2}},
            "tensor/pipeline parallelism shards the model, which strategy 'none' does not",
        ),
        (
            {"distributed": {"gpus_per_node": 8, "pipeline_parallel_size": 2, "strategy": "fsdp"}},
            "pipeline parallelism needs strategy megatron",
        ),
        ({"distributed": {"device": "cpu", "strategy": "megatron"}}, "distributed.strategy: megatron needs GPUs"),
    ],
)
def test_contradictions_name_the_field_and_the_fix(data: dict, says: str) -> None:
    lines = problems(job_with(data))
    assert any(says in line for line in lines), lines


def test_rl_is_not_held_to_an_unset_sft_length() -> None:
    job = validate_job(minimal_job(method=rl(max_prompt_length=2048, max_completion_length=2048)))
    assert job.data.max_length == 1024  # the SFT default, unused by RL
    assert validate_job(minimal_job(method=rl(max_prompt_length=None))).method.max_prompt_length is None


def test_rollout_batch_splits_into_steps() -> None:
    job = validate_job(minimal_job(method=rl(rollout_batch_size=6), training={"global_batch_size": 8}))
    assert job.method.rollout_batch_size == 6  # 24 completions = 3 steps of 8


def test_megatron_states_tensor_and_pipeline_parallelism() -> None:
    job = validate_job(
        minimal_job(
            distributed={
                "gpus_per_node": 8,
                "strategy": "megatron",
                "tensor_parallel_size": 2,
                "pipeline_parallel_size": 2,
            },
            training={"global_batch_size": 8, "micro_batch_size": 1},
        )
    )
    assert job.distributed.data_parallel_size == 2
    keys = {(c.kind, c.name) for b in get_backends().values() for c in b.capabilities}
    result = feasibility(job, get_backends())
    for name, r in result.items():
        if ("strategy", "megatron") not in keys:
            assert any("distributed.strategy" in line for line in r.reasons()), name


@pytest.mark.parametrize(
    ("backend", "method", "needs_host"),
    [
        ("trl", "sft", True),
        ("axolotl", "sft", True),
        ("openrlhf", "sft", True),
        ("verl", "sft", True),
        ("openrlhf", "grpo", False),  # Ray places the processes
        ("verl", "grpo", False),
    ],
)
def test_master_addr_is_the_launchers_need(backend: str, method: str, needs_host: bool) -> None:
    m = {"name": "sft"} if method == "sft" else rl()
    job = validate_job(
        minimal_job(method=m, distributed={"nodes": 2, "gpus_per_node": 4}, training={"global_batch_size": 8})
    )
    lines = get_backends()[backend]().static_problems(job)
    assert any(line.startswith("distributed.master_addr:") for line in lines) is needs_host, lines
    if needs_host:
        job.distributed.master_addr = "10.0.0.1"
        assert not any("master_addr" in line for line in get_backends()[backend]().static_problems(job))


def test_runtime_applies_message_keys_roles_and_the_implicit_prompt() -> None:
    from ptsdk.plugins.runtime import canonical_messages, split_implicit_prompt

    sharegpt = [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4", "thought": "add"}]
    assert canonical_messages(
        sharegpt, {"role": "from", "content": "value", "thinking": "thought"}, {"human": "user", "gpt": "assistant"}
    ) == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "add"},
    ]
    user = {"role": "user", "content": "hi"}
    chosen, rejected = [user, {"role": "assistant", "content": "hello"}], [user, {"role": "assistant", "content": "go"}]
    assert split_implicit_prompt(chosen, rejected) == ([user], chosen[1:], rejected[1:])
    same = [user, {"role": "assistant", "content": "x"}]
    assert split_implicit_prompt(same, same) == ([user], same[1:], same[1:])  # the last turns are the answers
