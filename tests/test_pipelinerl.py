"""PipelineRL (git only): GRPO jobs as its Hydra config, checked against the keys transcribed from its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.testing import BackendContract, contract_problems
from ptsdk.spec import Job
from ptsdk.spec.load import load_job, validate_job
from ptsdk_pipelinerl import PipelineRLBackend, rollout
from ptsdk_pipelinerl.schema import COMMIT, schema_problems

JOBS = sorted(str(p) for p in (EXAMPLES / "jobs").glob("*.yaml"))
TWO_GPUS = {"device": "gpu", "gpus_per_node": 2}


class TestPipelineRLContract(BackendContract):
    backend = PipelineRLBackend
    jobs = JOBS  # type: ignore[assignment]


def gpu_job(name: str, **sections: dict[str, Any]) -> Job:
    """An example job on two GPUs (one for the vLLM actor, one trainer), with some sections changed."""
    data = load_job(EXAMPLES / "jobs" / name, check_files=False).model_dump(mode="json", exclude_none=True)
    data["distributed"] = {**data["distributed"], **TWO_GPUS}
    for key, changes in sections.items():
        data[key] = {**data.get(key, {}), **changes}
    return validate_job(data)


def grpo(**sections: dict[str, Any]) -> Job:
    return gpu_job("grpo.yaml", **{"training": {"micro_batch_size": 8}, **sections})


def native(job: Job) -> dict[str, Any]:
    return yaml.safe_load(PipelineRLBackend().translate(job).native_text())


def refusals(job: Job) -> list[str]:
    return feasibility(job, {"pipelinerl": PipelineRLBackend})["pipelinerl"].reasons()


def test_grpo_config() -> None:
    plan = PipelineRLBackend().translate(grpo())
    cfg = yaml.safe_load(plan.native_text())
    assert plan.launch.argv == ["{python}", "-m", "pipelinerl.launch", "--config-dir", ".", "--config-name", "ptsdk"]
    assert plan.env["PYTHONPATH"] == "."
    assert cfg["defaults"] == ["base", "_self_"]
    assert cfg["attempts"] == 8 and cfg["model_path"] == str(EXAMPLES / "tiny-model")
    ft = cfg["finetune"]
    assert (ft["train_batch_size"], ft["gradient_accumulation_passes"], ft["max_train_steps"]) == (8, 2, 15)
    assert ft["seq_length"] == cfg["vllm_config"]["vllm_kwargs"]["max_model_len"] == 32 + 4
    assert ft["rl"]["policy_loss"] == "ppo" and ft["rl"]["divide_advantage_by_std"] is True
    assert ft["rl"]["kl_coef"] == 0.0 and ft["load_as_bf16"] is False and ft["seq_packing"] is False
    assert cfg["llm"]["parameters"] == {"max_tokens": 4, "temperature": 1.0}
    assert cfg["world"] == {"actor_fraction": 1, "preprocessor_fraction": 0, "finetune_fraction": 1}
    assert (cfg["use_deepspeed"], cfg["use_fsdp"], cfg["accelerate_config"]) == (False, False, "base_nomp")
    assert cfg["actor"]["rollout_policy"] == "ptsdk_pipelinerl_rollout.generate_rollout"
    assert cfg["dataset_loader"] == "ptsdk_pipelinerl_rollout.load_problems"
    assert cfg["dataset_loader_params"]["rewards"] == [
        f"{EXAMPLES / 'rewards.py'}:correct",
        f"{EXAMPLES / 'rewards.py'}:digits",
    ]
    assert cfg["train_dataset_names"] == ["data/train.jsonl"] and cfg["test_dataset_names"] == []
    copied = {f.path: f.copy_from for f in plan.files if f.copy_from}
    assert copied["data/train.jsonl"] == str(EXAMPLES / "data" / "rl_train.jsonl")
    assert copied["ptsdk_pipelinerl_rollout.py"] == rollout.__file__
    assert schema_problems(cfg) == []


def test_bf16_zero3_on_four_gpus_with_packing_and_warmup() -> None:
    cfg = native(
        grpo(
            distributed={"device": "gpu", "gpus_per_node": 4, "strategy": "deepspeed", "zero_stage": 3},
            training={
                "micro_batch_size": 2,
                "global_batch_size": 24,
                "precision": "bf16",
                "packing": True,
                "lr_scheduler": "constant_with_warmup",
                "warmup_ratio": 0.2,
            },
        )
    )
    assert (cfg["use_deepspeed"], cfg["deepspeed_config"]) == (True, "deepspeed_stage3_bf16")
    assert cfg["world"]["finetune_fraction"] == 3
    ft = cfg["finetune"]
    assert (ft["train_batch_size"], ft["gradient_accumulation_passes"]) == (2, 12)
    assert ft["seq_packing"] is True and "use_flash_attention" not in ft and ft["load_as_bf16"] is True
    assert (ft["lr_scheduler_type"], ft["num_warmup_steps"]) == ("constant_with_warmup", 3)
    assert cfg["vllm_config"]["vllm_kwargs"]["dtype"] == "bfloat16"


def test_fsdp_and_an_eval_file() -> None:
    job = grpo(
        distributed={**TWO_GPUS, "strategy": "fsdp"},
        training={"micro_batch_size": 8, "lr_scheduler": "linear", "optimizer": "adafactor"},
        data={"eval": {"path": str(EXAMPLES / "data" / "rl_train.jsonl")}},
    )
    cfg = native(job)
    assert (cfg["use_fsdp"], cfg["accelerate_config"]) == (True, "fsdp_nomp")
    assert cfg["test_dataset_names"] == ["data/eval.jsonl"]
    assert (cfg["finetune"]["lr_scheduler_type"], cfg["finetune"]["optim"]) == ("linear", "adafactor")


def test_the_rollout_domain_loads_prompts_and_scores_with_the_jobs_reward_functions(tmp_path: Path) -> None:
    rewards = [f"{EXAMPLES / 'rewards.py'}:correct", f"{EXAMPLES / 'rewards.py'}:digits"]
    problems = rollout.load_problems([str(EXAMPLES / "data" / "rl_train.jsonl")], rewards=rewards)
    first = problems[0]
    assert first["prompt"] == "What is 6 + 6?" and first["ground_truth"] == "12" and first["ptsdk_rewards"] == rewards
    assert rollout.score(first, "12") == 2.0  # correct (1) + all digits (1)
    assert rollout.score(first, "1x") == 0.5
    assert rollout.messages("hi") == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("name", "sections", "field"),
    [
        (
            "grpo.yaml",
            {"distributed": {"gpus_per_node": 1}},
            "distributed.gpus_per_node: PipelineRL runs the vLLM actor",
        ),
        ("grpo.yaml", {"adapter": {"type": "lora", "r": 8}}, "adapter.type: pipelinerl cannot run adapter 'lora'"),
        ("grpo.yaml", {"method": {"name": "grpo", "kl_coef": 0.1}}, "method.kl_placement: pipelinerl cannot run"),
        ("grpo.yaml", {"training": {"max_steps": None, "epochs": 1}}, "training.max_steps:"),
        ("grpo.yaml", {"training": {"optimizer": "sgd"}}, "training.optimizer:"),
        (
            "grpo.yaml",
            {"training": {"precision": "fp32"}, "distributed": {**TWO_GPUS, "strategy": "deepspeed", "zero_stage": 2}},
            "distributed.zero_stage:",
        ),
        ("sft_full.yaml", {"training": {"micro_batch_size": 4}}, "method.name: pipelinerl cannot run method 'sft'"),
        ("ppo.yaml", {}, "method.name: pipelinerl cannot run method 'ppo'"),
    ],
)
def test_refusals_name_the_field(name: str, sections: dict[str, Any], field: str) -> None:
    if name == "grpo.yaml":
        sections = {**sections, "training": {"micro_batch_size": 8, **sections.get("training", {})}}
    found = refusals(gpu_job(name, **sections))
    assert any(r.startswith(field) for r in found), found


def test_accumulation_passes_must_split_over_the_trainer_gpus() -> None:
    job = grpo(
        distributed={"device": "gpu", "gpus_per_node": 4}, training={"micro_batch_size": 2, "global_batch_size": 16}
    )
    assert refusals(job)[0].startswith("training.global_batch_size: PipelineRL splits global/micro = 8")


def test_transcribed_keys_reject_a_wrong_key_and_a_wrong_type() -> None:
    cfg = native(grpo())
    assert schema_problems({**cfg, "finetune": {**cfg["finetune"], "lr": 0.1}}) == [
        "finetune.lr: Extra inputs are not permitted"
    ]
    bad = {**cfg, "finetune": {**cfg["finetune"], "rl": {**cfg["finetune"]["rl"], "policy_loss": "grpo"}}}
    assert schema_problems(bad)[0].startswith("finetune.rl.policy_loss: Input should be 'ppo', 'reinforce' or 'gspo'")
    assert schema_problems({**cfg, "attempts": "eight"})[0].startswith("attempts:")


def test_a_passthrough_key_pipelinerl_does_not_have_is_refused_before_launch() -> None:
    job = grpo().model_copy(update={"backend_options": {"pipelinerl": {"finetune": {"lr_scheduler": "linear"}}}})
    found = PipelineRLBackend().static_problems(job)
    assert found and found[0].startswith("ptsdk.yaml finetune.lr_scheduler: Extra inputs are not permitted")
    job = grpo().model_copy(update={"backend_options": {"pipelinerl": {"finetune": {"rl": {"entropy_bonus": 0.01}}}}})
    assert PipelineRLBackend().static_problems(job) == []
    assert native(job)["finetune"]["rl"]["entropy_bonus"] == 0.01


def test_env_create_says_how_to_install_it_by_hand(tmp_path: Path) -> None:
    with pytest.raises(PtsdkError) as err:
        PipelineRLBackend.environment()
    assert COMMIT in err.value.lines[0] and "PTSDK_PIPELINERL_PYTHON" in err.value.lines[0]
    env = {"PTSDK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "ptsdk", "env", "create", "pipelinerl"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"git -C PipelineRL checkout {COMMIT}" in proc.stderr and "PTSDK_PIPELINERL_PYTHON" in proc.stderr


def test_contract_holds_for_jobs_it_translates(tmp_path: Path) -> None:
    """The contract kit on jobs the backend accepts (every example job is a CPU job, which it refuses)."""
    paths = []
    for n, job in enumerate([grpo(), grpo(distributed={**TWO_GPUS, "strategy": "fsdp"})]):
        assert refusals(job) == []
        path = tmp_path / f"job{n}.yaml"
        path.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_none=True)))
        paths.append(path)
    assert contract_problems(PipelineRLBackend, paths) == []


def test_run_says_how_to_install_it_by_hand(tmp_path: Path) -> None:
    """`ptsdk run` on a machine without pipelinerl: exit 2, the git URL, the commit and $PTSDK_PIPELINERL_PYTHON."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    for name in ("model.safetensors", "tokenizer.json"):  # what the preflight looks for, by name
        (tmp_path / "model" / name).write_text("")
    data = grpo().model_dump(mode="json", exclude_none=True)
    data["model"]["name_or_path"] = str(tmp_path / "model")
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(data))
    env = {"PTSDK_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "ptsdk", "run", "job.yaml", "-b", "pipelinerl"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert (
        "https://github.com/ServiceNow/PipelineRL" in proc.stderr
        and COMMIT in proc.stderr
        and "PTSDK_PIPELINERL_PYTHON=" in proc.stderr
    )
