"""Axolotl for real: CPU training through `ptsdk run`, and Axolotl's own validator on every
generated config. The matrix's evidence for each Axolotl capability names one of these tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.pipeline import load_checked
from ptsdk.rundir import write_plan

from .conftest import assert_loads, run_on, trained

pytestmark = pytest.mark.axolotl
EXAMPLE_REWARD = str(Path(__file__).parents[2] / "examples" / "rewards.py") + ":correct"


def run(ptsdk, job: Path, run_dir: Path) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def]
    return run_on(ptsdk, "axolotl", job, run_dir)


def ok(manifest: dict, metrics: list[dict], steps: int) -> list[dict]:
    return trained(manifest, metrics, steps, framework=("axolotl", "0.19.0"))


def test_sft_full(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    manifest, metrics = run(ptsdk, example_job("sft_full.yaml", training={"max_steps": 3}), tmp_path / "run")
    train = ok(manifest, metrics, 3)
    assert train[-1]["tokens_seen"] > train[0]["tokens_seen"] > 0
    assert_loads(axolotl_env, tmp_path / "run" / "model", adapter=False)


def test_sft_lora(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    manifest, metrics = run(ptsdk, example_job("sft_lora.yaml", training={"max_steps": 3}), tmp_path / "run")
    ok(manifest, metrics, 3)
    config = yaml.safe_load((tmp_path / "run" / "axolotl_config.yaml").read_text())
    # CPU specifics, generated because the job says device=cpu.
    assert (config["bf16"], config["fp16"], config["tf32"]) == (False, False, False)
    assert not any(config[k] for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"))
    assert (
        manifest["commands"][0]["env"]["AXOLOTL_DO_NOT_TRACK"] == "1"
        and manifest["commands"][0]["env"]["HF_HUB_OFFLINE"] == "1"
    )
    assert_loads(axolotl_env, tmp_path / "run" / "model", adapter=True)


def test_dpo(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    manifest, metrics = run(ptsdk, example_job("dpo.yaml", training={"max_steps": 3}), tmp_path / "run")
    ok(manifest, metrics, 3)
    assert_loads(axolotl_env, tmp_path / "run" / "model", adapter=True)


def test_kto(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    manifest, metrics = run(ptsdk, example_job("kto.yaml", training={"max_steps": 3}), tmp_path / "run")
    ok(manifest, metrics, 3)
    assert_loads(axolotl_env, tmp_path / "run" / "model", adapter=True)


def test_orpo(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    manifest, metrics = run(ptsdk, example_job("orpo.yaml", training={"max_steps": 3}), tmp_path / "run")
    ok(manifest, metrics, 3)
    assert_loads(axolotl_env, tmp_path / "run" / "model", adapter=False)


@pytest.mark.parametrize(
    "method", [{"name": "ipo"}, {"name": "simpo", "beta": 2.0, "gamma": 0.5}], ids=["ipo", "simpo"]
)
def test_ipo_simpo(ptsdk, example_job, tmp_path, method: dict) -> None:
    manifest, metrics = run(ptsdk, example_job("dpo.yaml", method=method, training={"max_steps": 2}), tmp_path / "run")
    ok(manifest, metrics, 2)


def test_grpo(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    manifest, metrics = run(ptsdk, example_job("grpo.yaml"), tmp_path / "run")
    train = ok(manifest, metrics, 3)
    assert all(m["reward"] is not None and 0.0 <= m["reward"] <= 1.0 for m in train)
    # The reward file was copied into the run directory and named as an import path.
    assert (tmp_path / "run" / "reward_rewards.py").exists()
    assert yaml.safe_load((tmp_path / "run" / "axolotl_config.yaml").read_text())["trl"]["reward_funcs"] == [
        "reward_rewards.correct"
    ]
    assert_loads(axolotl_env, tmp_path / "run" / "model", adapter=True)


def validate_many(env, jobs: dict[str, Path]) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Axolotl's own validator (plus preprocess, as `axolotl preprocess` does) on many generated configs in one call."""
    backend = AxolotlBackend()
    requests, keep = [], []
    for path in jobs.values():
        job, _ = load_checked(path, "axolotl")
        plan = backend.translate(job)
        tmp = tempfile.TemporaryDirectory()
        keep.append(tmp)
        write_plan(plan, Path(tmp.name))
        requests.append(backend.check_request(plan, Path(tmp.name), preprocess=job.distributed.device == "cpu"))
    results = backend.run_check(requests, timeout=1200)
    return dict(zip(jobs, results, strict=True))


def test_every_method_and_adapter_passes_axolotl_validator(example_job, axolotl_env) -> None:
    gpu = {"device": "gpu"}
    bf16 = {"precision": "bf16"}
    lora = {"type": "lora", "r": 8, "alpha": 16}
    qlora = {"type": "qlora", "r": 8, "alpha": 16}
    q4 = {"quantization": "4bit"}
    jobs = {}
    for name, method, base in [
        ("sft", {"name": "sft"}, "sft_full.yaml"),
        ("sft-chat", {"name": "sft"}, "sft_chat.yaml"),
        ("dpo", {"name": "dpo"}, "dpo.yaml"),
        ("ipo", {"name": "ipo"}, "dpo.yaml"),
        ("simpo", {"name": "simpo"}, "dpo.yaml"),
        ("orpo", {"name": "orpo"}, "orpo.yaml"),
        ("kto", {"name": "kto"}, "kto.yaml"),
        (
            "grpo",
            {
                "name": "grpo",
                "num_generations": 4,
                "max_prompt_length": 32,
                "max_completion_length": 8,
                "rewards": [EXAMPLE_REWARD],
            },
            "grpo.yaml",
        ),
    ]:
        jobs[f"{name}-full"] = example_job(base, f"{name}-full", method=method, adapter={"type": "full"})
        jobs[f"{name}-lora"] = example_job(base, f"{name}-lora", method=method, adapter=lora)
        jobs[f"{name}-qlora"] = example_job(
            base, f"{name}-qlora", method=method, adapter=qlora, distributed=gpu, training=bf16, model=q4
        )
    for loss in ("dr_grpo", "dapo", "bnpo"):
        jobs[f"grpo-{loss}"] = example_job(
            "grpo.yaml",
            f"grpo-{loss}",
            method={
                "name": "grpo",
                "loss_type": loss,
                "num_generations": 4,
                "max_prompt_length": 32,
                "max_completion_length": 8,
                "rewards": [EXAMPLE_REWARD],
            },
        )
    jobs["sft-packing"] = example_job("sft_full.yaml", "sft-packing", training={"packing": True})
    results = validate_many(axolotl_env, jobs)
    failed = {name: r["errors"] for name, r in results.items() if not r["ok"]}
    assert not failed, failed
    assert all(r["unknown_keys"] == [] for r in results.values())


def test_distributed_configs_pass_axolotl_validator(example_job, axolotl_env) -> None:
    jobs = {
        "ddp": example_job(
            "sft_lora.yaml",
            "ddp",
            distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "ddp"},
            training={"precision": "bf16"},
        ),
        "fsdp": example_job(
            "sft_full.yaml",
            "fsdp",
            distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"},
            training={"precision": "bf16", "micro_batch_size": 4},
        ),
        "multinode": example_job(
            "sft_lora.yaml",
            "multinode",
            distributed={"device": "gpu", "nodes": 2, "gpus_per_node": 8, "master_addr": "10.0.0.1"},
            training={"precision": "bf16", "global_batch_size": 16, "micro_batch_size": 1},
        ),
    }
    results = validate_many(axolotl_env, jobs)
    assert {n: r["errors"] for n, r in results.items() if not r["ok"]} == {}


@pytest.mark.parametrize("job", ["ppo.yaml", "rloo.yaml"])
def test_jobs_axolotl_cannot_run_are_rejected_before_start(ptsdk, example_job, tmp_path, job: str) -> None:
    r = ptsdk("run", str(example_job(job)), "--backend", "axolotl", "--run-dir", str(tmp_path / "run"))
    assert r.code == 2 and "axolotl cannot run method" in r.err
    assert not (tmp_path / "run").exists()


def test_two_cpu_processes_rejected_with_reason(ptsdk, example_job) -> None:
    r = ptsdk("validate", str(example_job("sft_ddp.yaml")), "--backend", "axolotl")
    assert r.code == 2 and "hard-codes cuda" in r.err


def test_keys_axolotl_would_drop_silently_are_errors(example_job, axolotl_env, tmp_path) -> None:
    """Axolotl ignores unknown keys, top-level and nested; ptsdk's check does not."""
    backend = AxolotlBackend()
    job, _ = load_checked(example_job("grpo.yaml", backend_options={"axolotl": {"learning_rat": 0.1}}), "axolotl")
    plan = backend.translate(job)
    write_plan(plan, tmp_path)
    config = yaml.safe_load((tmp_path / "axolotl_config.yaml").read_text())
    config["datasets"][0]["field_promt"] = "prompt"
    config["trl"]["num_generation"] = 4
    (tmp_path / "axolotl_config.yaml").write_text(yaml.safe_dump(config))
    (result,) = backend.run_check([backend.check_request(plan, tmp_path, preprocess=False)])
    assert not result["ok"]
    assert result["unknown_keys"] == ["learning_rat", "datasets.0.field_promt", "trl.num_generation"]
