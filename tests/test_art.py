"""ART without ART: the art_config.json ptsdk writes for ART's classes, and the jobs refused before anything launches.
tests/backends/test_art.py builds ART's own objects from the same translations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_model, minimal_job
from gpu_jobs import gpu_copy, gpu_jobs
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.testing import BackendContract
from ptsdk.spec import load_job, validate_job
from ptsdk_art.backend import CONFIG, RUNNER, ARTBackend


class TestARTContract(BackendContract):
    backend = ARTBackend
    jobs = gpu_jobs()  # type: ignore[assignment]


def rl_job(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data = tmp_path / "rl.jsonl"
    data.write_text('{"prompt": "1+1=", "ground_truth": "2"}\n')
    job = minimal_job(
        method={"name": "grpo", "num_generations": 4, "rewards": ["m:f"], "loss_type": "cispo"},
        model={"name_or_path": str(fake_model(tmp_path / "model"))},
        data={"train": {"path": str(data)}},
        adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        training={"global_batch_size": 8, "micro_batch_size": 8, "max_steps": 3, "learning_rate": 1e-5},
        distributed={"device": "gpu"},
    )
    job.update(overrides)
    return job


def config(plan: Plan) -> dict[str, Any]:
    return dict(json.loads(plan.file(CONFIG).content or ""))


def refusals(job: dict[str, Any]) -> list[str]:
    verdict = feasibility(validate_job(job), {"art": ARTBackend})["art"]
    assert not verdict.ok
    return [str(r) for r in verdict.reasons()]


def test_grpo_example_with_lora_becomes_arts_sections(tmp_path: Path) -> None:
    path = gpu_copy("grpo.yaml", tmp_path, adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0})
    plan = ARTBackend().translate(load_job(path, check_files=False))
    assert (plan.entrypoint, plan.args, plan.native_config) == ([RUNNER], [CONFIG], CONFIG)
    cfg = config(plan)
    assert cfg["internal_config"]["peft_args"] == {"r": 8, "lora_alpha": 16, "lora_dropout": 0, "random_state": 42}
    assert cfg["internal_config"]["init_args"] == {"max_seq_length": 64, "load_in_4bit": False}
    assert cfg["train"] == {"learning_rate": 0.02}
    assert cfg["train_options"] == {"epsilon": 0.2, "ppo": True}  # ptsdk's grpo loss: ART's PPO-clip loss
    r = cfg["rollout"]
    assert (r["num_generations"], r["prompts_per_step"], r["steps"], r["max_completion_length"]) == (8, 2, 15, 4)
    assert [ref.rpartition(":")[2] for ref in r["rewards"]] == ["correct", "digits"]
    assert cfg["model"]["base_model"].endswith("tiny-model") and cfg["model"]["base_path"] == ".art"


def test_cispo_qlora_and_targets(tmp_path: Path) -> None:
    job = rl_job(
        tmp_path,
        adapter={"type": "qlora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        model={"name_or_path": str(fake_model(tmp_path / "m")), "quantization": "4bit"},
        training={"global_batch_size": 8, "micro_batch_size": 8, "epochs": 2},
    )
    cfg = config(ARTBackend().translate(validate_job(job)))
    assert cfg["train_options"]["ppo"] is False  # cispo, LocalBackend.train's default loss
    assert cfg["internal_config"]["init_args"]["load_in_4bit"] is True
    assert cfg["internal_config"]["peft_args"]["target_modules"] == ["q_proj", "v_proj"]
    assert (cfg["rollout"]["steps"], cfg["rollout"]["epochs"], cfg["rollout"]["prompts_per_step"]) == (None, 2, 2)


def test_passthrough_adds_to_an_art_section(tmp_path: Path) -> None:
    job = rl_job(tmp_path, backend_options={"art": {"train_options": {"scale_rewards": False}}})
    assert config(ARTBackend().translate(validate_job(job)))["train_options"]["scale_rewards"] is False


def test_refusals_name_the_field(tmp_path: Path) -> None:
    assert any(r.startswith("adapter.type:") for r in refusals(rl_job(tmp_path, adapter={"type": "full"})))
    assert any(r.startswith("method.name:") for r in refusals(minimal_job(distributed={"device": "gpu"})))
    assert any(r.startswith("distributed.device:") for r in refusals(rl_job(tmp_path, distributed={"device": "cpu"})))
    two = rl_job(tmp_path, distributed={"device": "gpu", "gpus_per_node": 2})
    two["training"]["micro_batch_size"] = 4
    assert any(r.startswith("distributed.strategy:") for r in refusals(two))
    hub = rl_job(tmp_path, data={"train": {"path": "org/prompts"}})
    assert any(r.startswith("data.train.path:") and ".jsonl" in r for r in refusals(hub))
    dropout = rl_job(tmp_path, adapter={"type": "lora", "dropout": 0.05})
    assert any(r.startswith("adapter.dropout:") and "int" in r for r in refusals(dropout))
    kl = rl_job(tmp_path)
    kl["method"]["kl_coef"] = 0.1
    assert any(r.startswith("method.kl_") for r in refusals(kl))
    assert any(
        r.startswith("method.loss_type:")
        for r in refusals(rl_job(tmp_path, method={**kl["method"], "kl_coef": 0, "loss_type": "dapo"}))
    )


def test_translate_refuses_sft_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(PtsdkError) as err:
        ARTBackend().translate(validate_job(minimal_job(distributed={"device": "gpu"})))
    assert "method.name: ART trains GRPO only, not sft" in err.value.lines
