"""TorchForge (git only): SFT jobs as its SFT app's YAML, checked against torchtitan's transcribed dataclasses."""

from __future__ import annotations

import json
import os
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
from ptsdk_torchforge import TorchForgeBackend, run_app
from ptsdk_torchforge.schema import COMMIT, schema_problems

JOBS = sorted(str(p) for p in (EXAMPLES / "jobs").glob("*.yaml"))


class TestTorchForgeContract(BackendContract):
    backend = TorchForgeBackend
    jobs = JOBS  # type: ignore[assignment]


def alpaca_job(**sections: dict[str, Any]) -> Job:
    """The SFT job TorchForge's app can run: Alpaca from the hub, a torchtitan model, two GPUs, loss on all tokens."""
    data: dict[str, Any] = {
        "method": {"name": "sft", "loss_on": "all"},
        "model": {"name_or_path": "Qwen/Qwen3-1.7B"},
        "adapter": {"type": "full"},
        "data": {"train": {"path": "yahma/alpaca-cleaned"}, "format": "instruction", "max_length": 2048},
        "distributed": {"gpus_per_node": 2},
        "training": {"global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 1e-5, "max_steps": 100},
    }
    for key, changes in sections.items():
        data[key] = {**data.get(key, {}), **changes}
    return validate_job(data)


def native(job: Job) -> dict[str, Any]:
    return yaml.safe_load(TorchForgeBackend().translate(job).native_text())


def refusals(job: Job) -> list[str]:
    return feasibility(job, {"torchforge": TorchForgeBackend})["torchforge"].reasons()


def test_alpaca_sft_on_qwen3() -> None:
    plan = TorchForgeBackend().translate(alpaca_job())
    cfg = yaml.safe_load(plan.native_text())
    assert plan.launch.argv == ["{python}", "torchforge_app.py", "apps.sft.main", "--config", "sft.yaml"]
    assert {f.path: f.copy_from for f in plan.files if f.copy_from} == {"torchforge_app.py": run_app.__file__}
    assert cfg["model"] == {"name": "qwen3", "flavor": "1.7B", "hf_assets_path": "hf://Qwen/Qwen3-1.7B"}
    assert cfg["processes"] == {"procs": 2, "with_gpus": True}
    assert cfg["training"] == {
        "local_batch_size": 4,
        "seq_len": 2048,
        "max_norm": 1.0,
        "steps": 100,
        "dtype": "bfloat16",
        "mixed_precision_param": "bfloat16",
        "seed": 42,
    }
    assert cfg["optimizer"] == {
        "name": "AdamW",
        "lr": 1e-5,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.0,
    }
    assert cfg["lr_scheduler"] == {"warmup_steps": 0, "min_lr_factor": 0.0, "decay_type": "cosine"}
    assert cfg["parallelism"] == {"data_parallel_replicate_degree": 2, "data_parallel_shard_degree": 1}
    assert cfg["checkpoint"]["initial_load_path"] == "hf://Qwen/Qwen3-1.7B" and cfg["checkpoint"]["interval"] == 100
    assert cfg["activation_checkpoint"] == {"mode": "none"}
    assert schema_problems(cfg) == []


def test_llama_fsdp_fp32_constant_lr_with_warmup_and_checkpointing() -> None:
    cfg = native(
        alpaca_job(
            model={"name_or_path": "meta-llama/Meta-Llama-3.1-8B-Instruct"},
            distributed={"gpus_per_node": 4, "strategy": "fsdp"},
            training={
                "global_batch_size": 8,
                "micro_batch_size": 2,
                "max_steps": 50,
                "precision": "fp32",
                "lr_scheduler": "constant_with_warmup",
                "warmup_ratio": 0.1,
                "gradient_checkpointing": True,
            },
            output={"save_steps": 10},
        )
    )
    assert (cfg["model"]["name"], cfg["model"]["flavor"]) == ("llama3", "8B")
    assert cfg["parallelism"] == {"data_parallel_replicate_degree": 1, "data_parallel_shard_degree": -1}
    assert (
        cfg["training"]["dtype"] == cfg["training"]["mixed_precision_param"] == "float32"
        and cfg["processes"]["procs"] == 4
    )
    assert cfg["lr_scheduler"] == {"warmup_steps": 5, "min_lr_factor": 0.0, "decay_ratio": 0.0}
    assert cfg["activation_checkpoint"] == {"mode": "selective", "selective_ac_option": "op"}
    assert cfg["checkpoint"]["interval"] == 10


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        (
            {"data": {"train": {"path": str(EXAMPLES / "data" / "sft_train.jsonl")}, "format": "prompt_completion"}},
            "data.train.path:",
        ),
        ({"method": {"name": "sft", "loss_on": "completion"}}, "method.loss_on:"),
        ({"model": {"name_or_path": str(EXAMPLES / "tiny-model")}}, "model.name_or_path:"),
        ({"training": {"global_batch_size": 16, "micro_batch_size": 4}}, "training.global_batch_size:"),
        ({"training": {"max_steps": None, "epochs": 1}}, "training.max_steps:"),
        ({"training": {"precision": "fp16"}}, "training.precision:"),
        ({"adapter": {"type": "lora", "r": 8}}, "adapter.type: torchforge cannot run adapter 'lora'"),
        ({"data": {"eval": {"path": "yahma/alpaca-cleaned"}}}, "data.eval:"),
    ],
)
def test_refusals_name_the_field(sections: dict[str, Any], field: str) -> None:
    found = refusals(alpaca_job(**sections))
    assert any(r.startswith(field) for r in found), found


def test_rl_jobs_are_refused_for_their_reward_functions() -> None:
    data = load_job(EXAMPLES / "jobs" / "grpo.yaml", check_files=False).model_dump(mode="json", exclude_none=True)
    data["distributed"]["device"] = "gpu"
    found = refusals(validate_job(data))
    assert found == ["method.rewards: torchforge cannot run reward functions; backends that can: no installed backend"]


def test_transcribed_dataclasses_reject_a_wrong_key_and_a_wrong_type() -> None:
    cfg = native(alpaca_job())
    assert schema_problems({**cfg, "training": {**cfg["training"], "batch_size": 4}}) == [
        "training.batch_size: Extra inputs are not permitted"
    ]
    bad = {**cfg, "training": {**cfg["training"], "dtype": "float16"}}
    assert schema_problems(bad)[0].startswith("training.dtype: Input should be 'bfloat16' or 'float32'")
    assert schema_problems({k: v for k, v in cfg.items() if k != "processes"}) == ["processes: Field required"]


def test_a_passthrough_key_torchtitan_does_not_have_is_refused_before_launch() -> None:
    job = alpaca_job().model_copy(update={"backend_options": {"torchforge": {"compile": {"enabled": True}}}})
    found = TorchForgeBackend().static_problems(job)
    assert found and found[0].startswith("sft.yaml compile.enabled: Extra inputs are not permitted")
    job = alpaca_job().model_copy(update={"backend_options": {"torchforge": {"compile": {"enable": True}}}})
    assert TorchForgeBackend().static_problems(job) == [] and native(job)["compile"] == {"enable": True}


def test_the_app_runner_finds_apps_beside_the_editable_forge_package(tmp_path: Path) -> None:
    """torchforge_app.py, run for real against a checkout laid out as TorchForge's (src/forge, apps/sft/main.py)."""
    checkout = tmp_path / "torchforge"
    (checkout / "src" / "forge").mkdir(parents=True)
    (checkout / "src" / "forge" / "__init__.py").write_text("")
    (checkout / "apps" / "sft").mkdir(parents=True)
    for pkg in (checkout / "apps", checkout / "apps" / "sft"):
        (pkg / "__init__.py").write_text("")
    (checkout / "apps" / "sft" / "main.py").write_text(
        "import json, sys\nif __name__ == '__main__':\n    print(json.dumps(sys.argv[1:]))\n"
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "torchforge_app.py").write_text(Path(run_app.__file__).read_text())
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    proc = subprocess.run(
        [sys.executable, "torchforge_app.py", "apps.sft.main", "--config", "sft.yaml"],
        cwd=run_dir,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["--config", "sft.yaml"]
    with pytest.raises(SystemExit, match="apps/ is not beside"):
        run_app.checkout(str(tmp_path / "site-packages" / "forge" / "__init__.py"))


def test_env_create_says_how_to_install_it_by_hand(tmp_path: Path) -> None:
    with pytest.raises(PtsdkError) as err:
        TorchForgeBackend.environment()
    assert COMMIT in err.value.lines[0] and "PTSDK_TORCHFORGE_PYTHON" in err.value.lines[0]
    env = {"PTSDK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "ptsdk", "env", "create", "torchforge"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"git -C torchforge checkout {COMMIT}" in proc.stderr and "PTSDK_TORCHFORGE_PYTHON" in proc.stderr


def test_contract_holds_for_jobs_it_translates(tmp_path: Path) -> None:
    """The contract kit on jobs the backend accepts (every example job is a CPU job, which it refuses)."""
    paths = []
    for n, job in enumerate(
        [alpaca_job(), alpaca_job(distributed={"gpus_per_node": 1}, training={"global_batch_size": 4})]
    ):
        assert refusals(job) == []
        path = tmp_path / f"job{n}.yaml"
        path.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_none=True)))
        paths.append(path)
    assert contract_problems(TorchForgeBackend, paths) == []
