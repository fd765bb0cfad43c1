"""Prime RL (git only): SFT jobs as its TOML, checked against the schema transcribed from its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

import pytest
import yaml
from conftest import EXAMPLES
from ptsdk.errors import PtsdkError
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.testing import BackendContract, contract_problems
from ptsdk.spec import Job
from ptsdk.spec.load import load_job, validate_job
from ptsdk_primerl import PrimeRLBackend
from ptsdk_primerl.schema import COMMIT, schema_problems

JOBS = sorted(str(p) for p in (EXAMPLES / "jobs").glob("*.yaml"))


class TestPrimeRLContract(BackendContract):
    backend = PrimeRLBackend
    jobs = JOBS  # type: ignore[assignment]


def gpu_job(name: str, **sections: dict[str, Any]) -> Job:
    """An example job moved to GPUs (Prime RL has no CPU path), with some sections changed."""
    data = load_job(EXAMPLES / "jobs" / name, check_files=False).model_dump(mode="json", exclude_none=True)
    data["distributed"]["device"] = "gpu"
    for key, changes in sections.items():
        data[key] = {**data.get(key, {}), **changes}
    return validate_job(data)


def native(job: Job) -> dict[str, Any]:
    plan = PrimeRLBackend().translate(job)
    return tomllib.loads(plan.native_text())


def refusals(job: Job) -> list[str]:
    return feasibility(job, {"primerl": PrimeRLBackend})["primerl"].reasons()


def test_lora_sft_toml() -> None:
    plan = PrimeRLBackend().translate(gpu_job("sft_lora.yaml"))
    cfg = tomllib.loads(plan.native_text())
    assert plan.launch.argv == ["{python}", "-m", "prime_rl.entrypoints.sft", "@", "sft.toml"]
    assert cfg["max_steps"] == 30
    assert cfg["model"]["lora"] == {"rank": 8, "alpha": 16.0, "dropout": 0.0}  # all-linear: Prime RL's own list
    assert cfg["model"]["optimization_dtype"] == cfg["model"]["reduce_dtype"] == "float32"
    assert cfg["data"] == {
        "type": "sft",
        "name": "data/train",
        "batch_size": 8,
        "micro_batch_size": 4,
        "seq_len": 64,
        "shuffle": True,
        "seed": 42,
    }
    assert cfg["val"]["data"]["name"] == "data/eval"
    assert cfg["optim"] == {
        "type": "adamw",
        "weight_decay": 0.0,
        "max_norm": 1.0,
        "lr": 0.002,
        "betas1": 0.9,
        "betas2": 0.999,
    }
    assert cfg["scheduler"] == {"type": "cosine", "warmup_steps": 3, "min_lr": 0.0}
    copied = {f.path: f.copy_from for f in plan.files if f.copy_from}
    assert copied == {
        "data/train/train.jsonl": str(EXAMPLES / "data" / "sft_train.jsonl"),
        "data/eval/eval.jsonl": str(EXAMPLES / "data" / "sft_eval.jsonl"),
    }
    assert schema_problems(cfg) == []


def test_full_sft_on_all_tokens_in_bf16_with_warmup_on_two_gpus() -> None:
    job = gpu_job(
        "sft_full.yaml",
        method={"name": "sft", "loss_on": "all"},
        training={
            "precision": "bf16",
            "lr_scheduler": "constant_with_warmup",
            "warmup_ratio": 0.4,
            "micro_batch_size": 4,
        },
        distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"},
        output={"save_steps": 2},
    )
    cfg = native(job)
    assert "lora" not in cfg["model"] and cfg["model"]["optimization_dtype"] == "bfloat16"
    assert cfg["data"]["loss_mask"] == {"system": True, "user": True, "assistant": True, "tool": True}
    assert cfg["scheduler"] == {"type": "linear", "warmup_steps": 2, "decay_steps": 0}
    assert cfg["deployment"] == {"type": "single_node", "gpus_per_node": 2, "num_train_gpus": 2}
    assert cfg["ckpt"] == {"interval": 2}


def test_linear_decay_and_sgd() -> None:
    cfg = native(gpu_job("sft_chat.yaml", training={"lr_scheduler": "linear", "optimizer": "sgd", "warmup_ratio": 0.2}))
    assert cfg["scheduler"] == {"type": "linear", "warmup_steps": 1, "decay_steps": 4}
    assert cfg["optim"]["type"] == "sgd" and cfg["optim"]["momentum"] == 0.0


@pytest.mark.parametrize(
    ("name", "sections", "field"),
    [
        ("grpo.yaml", {}, "method.rewards: primerl cannot run reward functions"),
        ("sft_full.yaml", {"training": {"precision": "fp16"}}, "training.precision:"),
        ("sft_full.yaml", {"training": {"max_steps": None, "epochs": 1}}, "training.max_steps:"),
        ("sft_full.yaml", {"training": {"optimizer": "adafactor"}}, "training.optimizer:"),
        (
            "sft_full.yaml",
            {"distributed": {"device": "gpu", "nodes": 2, "master_addr": "h"}, "training": {"micro_batch_size": 4}},
            "distributed.nodes:",
        ),
        ("dpo.yaml", {}, "method.name: primerl cannot run method 'dpo'"),
        ("vlm_sft.yaml", {}, "data.images: primerl cannot run images in sft records"),
    ],
)
def test_refusals_name_the_field(name: str, sections: dict[str, Any], field: str) -> None:
    found = refusals(gpu_job(name, **sections))
    assert any(r.startswith(field) for r in found), found


def test_cpu_jobs_are_refused_by_the_matrix() -> None:
    found = refusals(load_job(EXAMPLES / "jobs" / "sft_lora.yaml", check_files=False))
    assert found == [r for r in found if r.startswith("distributed.device: primerl cannot run training on CPU")]


def test_transcribed_schema_rejects_a_wrong_key_and_a_wrong_type() -> None:
    cfg = native(gpu_job("sft_lora.yaml"))
    assert schema_problems({**cfg, "max_step": 3}) == ["max_step: Extra inputs are not permitted"]
    bad = {**cfg, "data": {**cfg["data"], "batch_size": "eight"}}
    assert any(p.startswith("data.batch_size:") for p in schema_problems(bad))
    bad = {**cfg, "data": {**cfg["data"], "micro_batch_size": 3}}
    assert any("divisible" in p for p in schema_problems(bad))


def test_a_passthrough_key_the_schema_does_not_know_is_refused_before_launch() -> None:
    job = gpu_job("sft_full.yaml")
    job = job.model_copy(update={"backend_options": {"primerl": {"model": {"attn_implementation": "sdpa"}}}})
    found = PrimeRLBackend().static_problems(job)
    assert found and found[0].startswith("sft.toml model.attn_implementation: Extra inputs are not permitted")
    job = job.model_copy(update={"backend_options": {"primerl": {"model": {"attn": "flash_attention_3"}}}})
    assert PrimeRLBackend().static_problems(job) == []
    assert native(job)["model"]["attn"] == "flash_attention_3"


def test_schema_source_is_the_pinned_commit() -> None:
    assert PrimeRLBackend.schema_source == f"github.com/PrimeIntellect-ai/prime-rl@{COMMIT}"


def test_env_create_and_run_say_how_to_install_it_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PtsdkError) as err:
        PrimeRLBackend.environment()
    assert COMMIT in err.value.lines[0] and "PTSDK_PRIMERL_PYTHON" in err.value.lines[0]
    env = {"PTSDK_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "ptsdk", "env", "create", "primerl"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"git -C prime-rl checkout {COMMIT}" in proc.stderr and "PTSDK_PRIMERL_PYTHON" in proc.stderr


def test_contract_holds_for_jobs_it_translates(tmp_path: Path) -> None:
    """The contract kit on jobs the backend accepts (every example job is a CPU job, which it refuses)."""
    paths = []
    for n, job in enumerate([gpu_job("sft_lora.yaml"), gpu_job("sft_chat.yaml")]):
        assert refusals(job) == []
        path = tmp_path / f"job{n}.yaml"
        path.write_text(yaml.safe_dump(job.model_dump(mode="json", exclude_none=True)))
        paths.append(path)
    assert contract_problems(PrimeRLBackend, paths) == []


def test_run_says_how_to_install_it_by_hand(tmp_path: Path) -> None:
    """`ptsdk run` on a machine without primerl: exit 2, the git URL, the commit and $PTSDK_PRIMERL_PYTHON."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    for name in ("model.safetensors", "tokenizer.json"):  # what the preflight looks for, by name
        (tmp_path / "model" / name).write_text("")
    data = gpu_job("sft_lora.yaml").model_dump(mode="json", exclude_none=True)
    data["model"]["name_or_path"] = str(tmp_path / "model")
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(data))
    env = {"PTSDK_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "ptsdk", "run", "job.yaml", "-b", "primerl"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert (
        "https://github.com/PrimeIntellect-ai/prime-rl" in proc.stderr
        and COMMIT in proc.stderr
        and "PTSDK_PRIMERL_PYTHON=" in proc.stderr
    )
    assert "ptsdk env create" not in proc.stderr  # which cannot build a git-only framework
