"""Unsloth for real: every capability the unsloth backend claims trains (or passes Unsloth's own parsing) here.

Runs in the unsloth environment (`ptsdk env create unsloth`) on a tiny Llama built with that environment's own
transformers, on Unsloth's CPU backend (UNSLOTH_FORCE_CPU=1: unsloth_zoo.cpu, stock TRL patched by Unsloth).
One run per adapter type, shared by the assertions on it: each trains a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ptsdk.rundir import RunDir
from ptsdk_unsloth.backend import CONFIG, UnslothBackend

from .conftest import (
    EXAMPLES,
    assert_loads,
    assert_trained_quantized,
    backend_env,
    build_tiny_model,
    natively_rejected,
    read_run,
    trained,
)

pytestmark = pytest.mark.unsloth
VERSION = UnslothBackend.verified_with["unsloth"]
SUMMARY = Path("logs") / "unsloth_summary.json"
BANNER = f"Unsloth {VERSION}: no GPU found, training on CPU"


@pytest.fixture(scope="module")
def unsloth_env():  # type: ignore[no-untyped-def]
    return backend_env("unsloth")


@pytest.fixture(scope="module")
def unsloth_model(unsloth_env, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return build_tiny_model(unsloth_env.python, tmp_path_factory.mktemp("unsloth-model"))


def job_data(model: Path, **training: Any) -> dict[str, Any]:
    """The SFT example's job (examples/jobs/sft_lora.yaml) on the tiny model, a few steps long."""
    data = yaml.safe_load((EXAMPLES / "jobs" / "sft_lora.yaml").read_text())
    data["model"]["name_or_path"] = str(model)
    for split in ("train", "eval"):
        data["data"][split]["path"] = str((EXAMPLES / "jobs" / data["data"][split]["path"]).resolve())
    data["training"].update({"max_steps": 6, "warmup_ratio": 0.0, **training})
    return data


def ptsdk_run(job: dict[str, Any], folder: Path) -> tuple[Path, dict, list[dict]]:
    """`ptsdk run --backend unsloth` in a process of its own (the module's runs are shared between tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    path, run_dir = folder / "job.yaml", folder / "run"
    path.write_text(yaml.safe_dump(job))
    argv = [sys.executable, "-m", "ptsdk", "run", str(path), "--backend", "unsloth", "--run-dir", str(run_dir)]
    proc = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, timeout=600)
    log = (run_dir / RunDir.LOG).read_text() if (run_dir / RunDir.LOG).exists() else ""
    assert proc.returncode == 0, proc.stderr + log[-3000:]
    return (run_dir, *read_run(run_dir))


def learned(run_dir: Path, manifest: dict, metrics: list[dict], steps: int) -> dict:
    """Trained by Unsloth's CPU backend with Unsloth's SFTTrainer, every step logged, the loss fell."""
    train = trained(manifest, metrics, steps, framework=("unsloth", VERSION))
    assert train[-1]["loss"] < train[0]["loss"], [m["loss"] for m in train]
    assert BANNER in (run_dir / RunDir.LOG).read_text()
    summary = json.loads((run_dir / SUMMARY).read_text())
    assert summary["unsloth_device"] == "cpu" and summary["unsloth_trainer"] is True
    assert summary["global_step"] == steps
    return summary


@pytest.fixture(scope="module")
def lora_run(unsloth_model, tmp_path_factory) -> tuple[Path, dict, list[dict]]:  # type: ignore[no-untyped-def]
    return ptsdk_run(job_data(unsloth_model), tmp_path_factory.mktemp("unsloth-lora"))


@pytest.fixture(scope="module")
def full_run(unsloth_model, tmp_path_factory) -> tuple[Path, dict, list[dict]]:  # type: ignore[no-untyped-def]
    job = job_data(unsloth_model, learning_rate=0.001)
    del job["adapter"], job["data"]["eval"]
    return ptsdk_run(job, tmp_path_factory.mktemp("unsloth-full"))


def test_sft_lora_trains_and_saves(lora_run, unsloth_env) -> None:  # type: ignore[no-untyped-def]
    run_dir, manifest, metrics = lora_run
    summary = learned(run_dir, manifest, metrics, 6)
    assert summary["linear4bit_layers"] == 0 and 0 < summary["trainable_parameters"] < 50_000  # the adapter only
    assert any(m["kind"] == "eval" and m["loss"] is not None for m in metrics)
    config = yaml.safe_load((run_dir / CONFIG).read_text())
    assert config["lora_r"] == 8 and config["full_finetuning"] is False and config["use_cpu"] is True
    assert manifest["commands"][-1]["argv"][-3:] == ["train_unsloth.py", "--config", CONFIG]
    assert manifest["commands"][-1]["env"]["UNSLOTH_FORCE_CPU"] == "1"
    adapter = json.loads((run_dir / "model" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 16
    assert_loads(unsloth_env, run_dir / "model", adapter=True)


def test_sft_full_trains_and_saves(full_run, unsloth_env) -> None:  # type: ignore[no-untyped-def]
    run_dir, manifest, metrics = full_run
    summary = learned(run_dir, manifest, metrics, 6)
    assert summary["trainable_parameters"] > 100_000  # every weight of the tiny model
    assert yaml.safe_load((run_dir / CONFIG).read_text())["full_finetuning"] is True
    assert_loads(unsloth_env, run_dir / "model", adapter=False)


def test_sft_qlora_trains_4bit_on_cpu(unsloth_env, unsloth_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ptsdk run` of a CPU QLoRA job: bitsandbytes 0.50 has CPU NF4 kernels and Unsloth's CPU loader keeps the base
    in 4 bits (unsloth_zoo/cpu/loader.py); the runner fails if it fell back to 16-bit weights."""
    data = job_data(unsloth_model, precision="bf16")
    data["adapter"]["type"] = "qlora"
    data["model"]["quantization"] = "4bit"
    run_dir, manifest, metrics = ptsdk_run(data, tmp_path)
    assert manifest["job"]["distributed"]["device"] == "cpu"
    summary = learned(run_dir, manifest, metrics, 6)
    assert_trained_quantized(run_dir, [m for m in metrics if m["kind"] == "train"], "Linear4bit")
    assert summary["linear4bit_layers"] == 14
    assert yaml.safe_load((run_dir / CONFIG).read_text())["load_in_4bit"] is True


def test_unsloths_parser_checks_what_ptsdk_generates(unsloth_model, tmp_path, unsloth_env) -> None:  # type: ignore[no-untyped-def]
    """The native check is the run's own parsing (TrlParser on the runner's ScriptArgs and Unsloth's patched
    SFTConfig): the translations pass it, and an unknown or bad value a backend_options passes through fails it."""
    gpu_qlora = job_data(unsloth_model, precision="bf16")
    gpu_qlora.update(adapter={"type": "qlora", "r": 8}, distributed={"device": "gpu"})
    gpu_qlora["model"]["quantization"] = "4bit"
    jobs = {
        "lora": job_data(unsloth_model),
        "gpu_qlora": gpu_qlora,
        "unknown_key": {**job_data(unsloth_model), "backend_options": {"unsloth": {"lora_rank": 4}}},
        "bad_value": {**job_data(unsloth_model), "backend_options": {"unsloth": {"eval_strategy": "sometimes"}}},
    }
    rejected = natively_rejected(UnslothBackend(), jobs, tmp_path)
    assert set(rejected) == {"unknown_key", "bad_value"}, rejected
    assert any("lora_rank" in e for e in rejected["unknown_key"]), rejected
    assert any("sometimes" in e for e in rejected["bad_value"]), rejected
