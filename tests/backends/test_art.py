"""ART's own classes on what ptsdk writes: art.TrainableModel with art.dev.InternalModelConfig, art.TrainConfig and
art.dev.TrainConfig, built by train_art.py's load() in ART's environment (the openpipe-art client from PyPI, no
torch: `ptsdk env create art`, or PTSDK_ART_PYTHON). Training needs openpipe-art[backend] on a CUDA GPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, fake_model
from ptsdk.matrix.check import requirements_of
from ptsdk.plugins.backend import Plan
from ptsdk.rundir import write_plan
from ptsdk.spec import validate_job
from ptsdk_art.backend import CHECKED, CONFIG, ARTBackend

from .conftest import backend_env

pytestmark = pytest.mark.art


@pytest.fixture(scope="session")
def art_env():  # type: ignore[no-untyped-def]
    return backend_env("art")


def rl_job(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    rewards = str(EXAMPLES / "rewards.py")
    job: dict[str, Any] = {
        "method": {
            "name": "grpo",
            "num_generations": 4,
            "max_completion_length": 8,
            "max_prompt_length": 64,
            "rewards": [f"{rewards}:correct", f"{rewards}:digits"],
        },
        "model": {"name_or_path": str(fake_model(tmp_path / "model"))},
        "data": {"train": {"path": str(EXAMPLES / "data" / "rl_train.jsonl")}, "max_length": 128},
        "adapter": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "training": {"global_batch_size": 8, "micro_batch_size": 8, "max_steps": 2, "learning_rate": 1e-5},
        "distributed": {"device": "gpu"},
    }
    for section, values in overrides.items():
        job[section] = {**job.get(section, {}), **values}
    return job


CASES: dict[str, dict[str, Any]] = {
    "grpo-lora": {},
    "cispo-qlora-targets": {
        "method": {"loss_type": "cispo"},
        "adapter": {"type": "qlora", "target_modules": ["q_proj", "v_proj"]},
        "model": {"quantization": "4bit"},
        "training": {"max_steps": None, "epochs": 1},
    },
    "passthrough-options": {"backend_options": {"art": {"train_options": {"scale_rewards": False}}}},
}


def check_all(tmp_path: Path, jobs: dict[str, dict[str, Any]]) -> dict[str, tuple[Plan, dict[str, Any]]]:
    backend, planned = ARTBackend(), {}
    for name, data in jobs.items():
        plan = backend.translate(validate_job(data))
        workdir = tmp_path / name
        workdir.mkdir(parents=True)
        write_plan(plan, workdir)
        planned[name] = (plan, backend.check_request(plan, workdir))
    results = backend.run_check([request for _, request in planned.values()], timeout=600)
    return {name: (planned[name][0], result) for name, result in zip(planned, results, strict=True)}


def test_art_builds_its_own_objects_from_every_translation(art_env, tmp_path: Path) -> None:
    jobs = {name: rl_job(tmp_path, **case) for name, case in CASES.items()}
    results = check_all(tmp_path / "plans", jobs)
    failed = {name: r["errors"] for name, (_, r) in results.items() if not r["ok"]}
    assert not failed, json.dumps(failed, indent=1)
    grpo = results["grpo-lora"][1]
    assert grpo["versions"]["openpipe-art"] == "0.5.18"
    assert grpo["model"]["trainable"] is True and grpo["model"]["base_model"].endswith("model")
    assert grpo["internal_config"]["peft_args"]["r"] == 8
    assert grpo["train"]["learning_rate"] == 1e-5 and grpo["train_options"] == {"epsilon": 0.2, "ppo": True}
    qlora = results["cispo-qlora-targets"][1]
    assert qlora["internal_config"]["init_args"]["load_in_4bit"] is True and qlora["train_options"]["ppo"] is False
    assert results["passthrough-options"][1]["train_options"]["scale_rewards"] is False

    # The cases cover every capability the matrix claims on the strength of this test.
    covered = {req.key for plan, _ in results.values() for req in requirements_of(plan.job)}  # type: ignore[arg-type]
    claimed = {c.key for c in ARTBackend.capabilities if c.evidence == CHECKED}
    assert claimed <= covered, sorted(claimed - covered)


def test_art_refuses_what_its_classes_do_not_declare(art_env, tmp_path: Path) -> None:
    """The check can fail: a key ART's TypedDicts do not declare (pydantic would drop it) and a value of the wrong
    type, each named; a reward function that does not exist."""
    backend = ARTBackend()
    plan = backend.translate(validate_job(rl_job(tmp_path)))
    requests = []
    for name, change in {
        "unknown-key": lambda c: c["internal_config"]["peft_args"].update(lora_rank=8),
        "wrong-type": lambda c: c["train_options"].update(epsilon="wide"),
        "missing-reward": lambda c: c["rollout"].update(rewards=[str(EXAMPLES / "rewards.py") + ":nothing"]),
    }.items():
        workdir = tmp_path / name
        workdir.mkdir()
        write_plan(plan, workdir)
        config = json.loads((workdir / CONFIG).read_text())
        change(config)
        (workdir / CONFIG).write_text(json.dumps(config))
        requests.append(backend.check_request(plan, workdir))
    unknown, wrong, missing = (r["errors"] for r in backend.run_check(requests))
    assert any("internal_config.peft_args.lora_rank: not a key of art.dev.model.PeftArgs" in e for e in unknown)
    assert any("epsilon" in e for e in wrong)
    assert any("nothing" in e for e in missing)
