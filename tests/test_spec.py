"""The job spec: valid jobs resolve fully, invalid ones name the field and the fix."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, minimal_job
from ptsdk.errors import SpecError
from ptsdk.spec import Job, load_job, validate_job


def problems(data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate_job(data)
    return info.value.lines


def test_minimal_job_resolves_defaults() -> None:
    job = validate_job(minimal_job())
    assert job.version == 1
    assert job.adapter.type == "full"
    assert job.data.format == "prompt_completion"
    assert job.training.learning_rate == 2e-5
    assert job.training.epochs == 1.0
    assert job.model.trust_remote_code is False
    assert job.gradient_accumulation_steps == 8


def test_lora_default_learning_rate_and_rl_format() -> None:
    job = validate_job(
        minimal_job(method={"name": "grpo", "num_generations": 4, "rewards": ["m:f"]}, adapter={"type": "lora"})
    )
    assert job.training.learning_rate == 2e-4
    assert job.data.format == "prompt"


@pytest.mark.parametrize(
    "method",
    [
        {"name": "sft", "loss_on": "all"},
        {"name": "dpo", "beta": 0.2, "loss_type": "robust", "label_smoothing": 0.1},
        {"name": "ipo"},
        {"name": "orpo"},
        {"name": "simpo", "gamma": 1.0},
        {"name": "cpo", "loss_type": "hinge"},
        {"name": "kto", "desirable_weight": 1.33},
        {"name": "grpo", "loss_type": "dr_grpo", "num_generations": 4, "rewards": ["m:f"]},
        {"name": "ppo", "reward_model": "org/rm"},
        {"name": "rloo", "num_generations": 2, "rewards": ["m:f"]},
        {"name": "reinforce_pp", "rewards": ["pkg.mod:score"]},
    ],
)
def test_every_method_validates(method: dict) -> None:
    job = validate_job(minimal_job(method=method))
    assert job.method.name == method["name"]


def test_unknown_method_names_choices() -> None:
    (line,) = problems(minimal_job(method={"name": "reinforce"}))
    assert line.startswith("method:") and "'sft'" in line and "'grpo'" in line


def test_family_fields_do_not_leak() -> None:
    (line,) = problems(minimal_job(method={"name": "dpo", "num_generations": 4}))
    assert line.startswith("method.num_generations: unknown field")


def test_unknown_keys_rejected_everywhere() -> None:
    lines = problems(minimal_job(trainer="x", training={"lr": 1e-4}))
    assert any(line.startswith("trainer: unknown field") for line in lines)
    assert any(line.startswith("training.lr: unknown field") for line in lines)


def test_bad_loss_variant() -> None:
    (line,) = problems(minimal_job(method={"name": "dpo", "loss_type": "sigmod"}))
    assert line.startswith("method.loss_type:") and "sigmoid" in line


def test_global_batch_must_divide() -> None:
    (line,) = problems(
        minimal_job(training={"global_batch_size": 10, "micro_batch_size": 2}, distributed={"gpus_per_node": 4})
    )
    assert line.startswith("training.global_batch_size: 10 is not divisible")
    assert "2 x 4 = 8" in line and "multiple of 8" in line


def test_tensor_parallel_reduces_data_parallel() -> None:
    job = validate_job(
        minimal_job(
            training={"global_batch_size": 8, "micro_batch_size": 2},
            distributed={"gpus_per_node": 8, "tensor_parallel_size": 4, "strategy": "megatron"},
        )
    )
    assert job.distributed.data_parallel_size == 2
    assert job.gradient_accumulation_steps == 2


def test_grpo_needs_two_generations_dividing_batch() -> None:
    lines = problems(minimal_job(method={"name": "grpo", "num_generations": 1, "rewards": ["m:f"]}))
    assert lines == ["method.num_generations: grpo compares completions of one prompt: set it to 2 or more"]
    lines = problems(minimal_job(method={"name": "grpo", "num_generations": 3, "rewards": ["m:f"]}))
    assert lines[0].startswith("training.global_batch_size: 8 completions do not split into groups")


def test_rl_needs_a_reward() -> None:
    (line,) = problems(minimal_job(method={"name": "grpo", "num_generations": 4}))
    assert line.startswith("method.rewards: online RL needs a reward")


def test_reward_reference_syntax() -> None:
    (line,) = problems(minimal_job(method={"name": "grpo", "num_generations": 4, "rewards": ["reward.py"]}))
    assert line.startswith("method.rewards:") and "file.py:function" in line


def test_qlora_needs_4bit() -> None:
    (line,) = problems(minimal_job(adapter={"type": "qlora"}))
    assert line == "model.quantization: adapter.type=qlora trains on a 4-bit base: set model.quantization: 4bit"
    assert validate_job(minimal_job(adapter={"type": "qlora"}, model={"name_or_path": "o/m", "quantization": "4bit"}))


def test_full_finetune_of_quantized_model_rejected() -> None:
    (line,) = problems(minimal_job(model={"name_or_path": "o/m", "quantization": "8bit"}))
    assert line.startswith("model.quantization: quantized weights cannot be fully fine-tuned")


def test_data_format_must_suit_method() -> None:
    (line,) = problems(minimal_job(method={"name": "dpo"}, data={"train": {"path": "o/d"}, "format": "messages"}))
    assert line == "data.format: dpo reads preference records, not messages"


def test_column_mapping_checked_against_format() -> None:
    (line,) = problems(minimal_job(data={"train": {"path": "o/d"}, "columns": {"chosen": "good"}}))
    assert line.startswith("data.columns.chosen: prompt_completion records have no field 'chosen'")
    (line,) = problems(minimal_job(data={"train": {"path": "o/d"}, "columns": {"question": "q"}}))
    assert line.startswith("data.columns: unknown canonical field 'question'")


def test_cpu_rules() -> None:
    lines = problems(
        minimal_job(
            training={"precision": "fp16"}, distributed={"device": "cpu", "strategy": "fsdp", "gpus_per_node": 2}
        )
    )
    assert any(line.startswith("training.precision: fp16 needs a GPU") for line in lines)
    assert any(line.startswith("distributed.strategy: fsdp needs GPUs") for line in lines)


def test_deepspeed_needs_zero_stage_and_multinode_needs_host() -> None:
    (line,) = problems(minimal_job(distributed={"strategy": "deepspeed", "gpus_per_node": 8}))
    assert "zero_stage is required" in line
    # master_addr is the torchrun/deepspeed launchers' need, checked by those backends (test_spec_growth.py)
    validate_job(minimal_job(distributed={"nodes": 2, "gpus_per_node": 4}, training={"global_batch_size": 8}))


def test_epochs_and_max_steps_exclusive() -> None:
    (line,) = problems(minimal_job(training={"epochs": 1, "max_steps": 10}))
    assert "only one of training.epochs and training.max_steps" in line


def test_eval_steps_need_eval_data() -> None:
    (line,) = problems(minimal_job(output={"eval_steps": 10}))
    assert line.startswith("output.eval_steps: evaluation needs data")


def test_several_problems_reported_together() -> None:
    lines = problems(
        minimal_job(
            method={"name": "grpo", "num_generations": 1},
            adapter={"type": "qlora"},
            training={"global_batch_size": 3, "micro_batch_size": 2},
        )
    )
    assert len(lines) >= 4


def test_yaml_and_json_load_the_same(write_job) -> None:
    data = minimal_job(method={"name": "dpo", "beta": 0.3})
    a, b = load_job(write_job(data, "a.yaml")), load_job(write_job(data, "b.json"))
    assert a.model_dump(exclude={"name"}) == b.model_dump(exclude={"name"})
    assert (a.name, b.name) == ("a", "b")


def test_relative_paths_resolve_against_job_file(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (tmp_path / "r.py").write_text("def f(prompts, completions, **kw):\n    return [0.0] * len(completions)\n")
    job = tmp_path / "jobs" / "j.yaml"
    job.parent.mkdir()
    job.write_text(
        "method: {name: grpo, num_generations: 2, rewards: [../r.py:f]}\nmodel: {name_or_path: org/m}\n"
        "data: {train: {path: ../d/train.jsonl}, format: prompt}\n"
    )
    loaded = load_job(job)
    assert loaded.data.train.path == str(tmp_path / "d" / "train.jsonl")
    assert loaded.method.rewards == [f"{tmp_path / 'r.py'}:f"]
    (tmp_path / "jobs" / "rm").mkdir()
    job.write_text(job.read_text().replace("rewards: [../r.py:f]", "reward_model: rm"))
    assert load_job(job).method.reward_model == str(tmp_path / "jobs" / "rm")  # a folder beside the job file


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def g(prompts, completions, **kw): pass\n", "has no function 'f'; it defines g"),
        ("def f(prompts, completions): pass\n", "must accept **kwargs"),
        ("def f(**kw): pass\n", "must take (prompts, completions, **kwargs)"),
        ("def f(:\n", "syntax error"),
    ],
)
def test_reward_function_checked_before_launch(tmp_path, write_job, source: str, expected: str) -> None:
    (tmp_path / "r.py").write_text(source)
    path = write_job(minimal_job(method={"name": "grpo", "num_generations": 2, "rewards": ["r.py:f"]}))
    with pytest.raises(SpecError) as info:
        load_job(path)
    assert any(line.startswith("method.rewards.0:") and expected in line for line in info.value.lines), info.value.lines


def test_missing_local_files_named(write_job) -> None:
    path = write_job(minimal_job(data={"train": {"path": "nope.jsonl"}}, model={"name_or_path": "./nomodel"}))
    with pytest.raises(SpecError) as info:
        load_job(path)
    text = "\n".join(info.value.lines)
    assert "data.train.path: no such file" in text and "model.name_or_path: no such directory" in text


def test_bundled_example_jobs_are_valid() -> None:
    jobs = sorted((EXAMPLES / "jobs").glob("*.yaml"))
    assert len(jobs) >= 8
    for path in jobs:
        load_job(path, check_files=False)


def test_schema_has_descriptions() -> None:
    schema = Job.model_json_schema()
    assert schema["properties"]["training"]
    training = schema["$defs"]["TrainingSpec"]["properties"]
    assert all("description" in prop for prop in training.values())


def test_every_spec_model_refuses_nan_and_infinity() -> None:
    from ptsdk.spec.base import SpecModel

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    assert all(model.model_config.get("allow_inf_nan") is False for model in subclasses(SpecModel))
    lines = problems(minimal_job(method={"name": "ppo", "gamma": float("nan")}, training={"epochs": float("inf")}))
    assert "method.gamma: must be a finite number, got nan" in lines
    assert "training.epochs: must be a finite number, got inf" in lines


def test_reward_reference_may_hold_spaces_in_the_file_path() -> None:
    from ptsdk.spec.method import REWARD_REF

    assert REWARD_REF.match("my rewards/r.py:score") and REWARD_REF.match("../a b/c d.py:f")
    for bad in (" r.py:f", "r.py:f\n", "r.py :f", "r\n.py:f", "dir/.py:f", "r.py:f g"):
        assert not REWARD_REF.match(bad), bad
