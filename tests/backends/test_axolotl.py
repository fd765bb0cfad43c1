"""Axolotl for real: CPU training through `ptsdk run`, and Axolotl's own validator on every
generated config. The matrix's evidence for each Axolotl capability names one of these tests."""

from __future__ import annotations

import json
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


def test_deepspeed_configs_pass_axolotl_validator(example_job, axolotl_env, tmp_path) -> None:
    """ZeRO 1-3, with and without CPU offload, for SFT and DPO: Axolotl's validator accepts the config and its
    `deepspeed:` JSON, which transformers then reads with the trainer arguments Axolotl derives (every "auto"
    filled, nothing disagreeing) and DeepSpeed's own schema accepts. Axolotl's deepspeed_configs/zero3.json
    (its ZeRO-3 example) is the case the matrix used to refuse."""
    gpu = {"device": "gpu", "gpus_per_node": 8}
    cases = {
        "zero1": ("sft_full.yaml", 1, "none"),
        "zero2": ("sft_full.yaml", 2, "none"),
        "zero2-offload": ("sft_full.yaml", 2, "optimizer"),
        "zero3": ("sft_full.yaml", 3, "none"),
        "zero3-offload": ("sft_full.yaml", 3, "optimizer_and_params"),
        "dpo-zero3-lora": ("dpo.yaml", 3, "none"),
        "dpo-zero2-offload-lora": ("dpo.yaml", 2, "optimizer"),
    }
    jobs = {
        name: example_job(
            base,
            name,
            distributed={**gpu, "strategy": "deepspeed", "zero_stage": stage, "offload": offload},
            training={"precision": "bf16", "global_batch_size": 16, "micro_batch_size": 2},
        )
        for name, (base, stage, offload) in cases.items()
    }
    results = validate_many(axolotl_env, jobs)
    assert {n: r["errors"] for n, r in results.items() if not r["ok"]} == {}
    backend = AxolotlBackend()
    job, _ = load_checked(jobs["zero3-offload"], "axolotl")
    plan = backend.translate(job)
    config = yaml.safe_load(plan.file("axolotl_config.yaml").content or "")
    assert plan.launcher.kind == "torchrun" and config["deepspeed"] == "ds_config.json"
    ds = json.loads(plan.file("ds_config.json").content)
    assert ds["zero_optimization"]["stage"] == 3 and ds["zero_optimization"]["offload_param"]["device"] == "cpu"
    # A DeepSpeed value that disagrees with the trainer's is caught, as it would be at start-up.
    write_plan(plan, tmp_path / "bad")
    ds["train_micro_batch_size_per_gpu"] = 7
    (tmp_path / "bad" / "ds_config.json").write_text(json.dumps(ds))
    (result,) = backend.run_check([backend.check_request(plan, tmp_path / "bad", preprocess=False)])
    assert any("train_micro_batch_size_per_gpu=7" in e for e in result["errors"]), result
    # ... and so is a ZeRO key DeepSpeed does not know.
    ds["train_micro_batch_size_per_gpu"] = "auto"
    ds["zero_optimization"]["stage3_prefetch_bucket"] = 10
    (tmp_path / "bad" / "ds_config.json").write_text(json.dumps(ds))
    (result,) = backend.run_check([backend.check_request(plan, tmp_path / "bad", preprocess=False)])
    assert any("stage3_prefetch_bucket" in e for e in result["errors"]), result


def test_model_load_settings_pass_axolotl_validator(example_job, axolotl_env) -> None:
    """model.attn_implementation becomes Axolotl's `attn_implementation` (no deprecated boolean flags), and
    float16 weights trained without autocast become its `float16` flag; CPU jobs also preprocess."""
    jobs = {
        "eager": example_job("sft_lora.yaml", "eager", model={"attn_implementation": "eager"}),
        "sdpa-dpo": example_job("dpo.yaml", "sdpa-dpo", model={"attn_implementation": "sdpa"}),
        "fa2-gpu": example_job(
            "sft_lora.yaml",
            "fa2-gpu",
            model={"attn_implementation": "flash_attention_2", "dtype": "bfloat16"},
            distributed={"device": "gpu"},
            training={"precision": "bf16"},
        ),
        "float16-weights": example_job(
            "sft_lora.yaml", "float16-weights", model={"dtype": "float16"}, distributed={"device": "gpu"}
        ),
    }
    results = validate_many(axolotl_env, jobs)
    assert {n: r["errors"] for n, r in results.items() if not r["ok"]} == {}
    assert all(r["unknown_keys"] == [] for r in results.values())


def test_data_columns_pass_axolotl_validator(example_job, axolotl_env, tmp_path) -> None:
    """data.columns for DPO (and IPO, SimPO) and KTO data: Axolotl's user-defined DPO/KTO dataset types
    (field_prompt, field_chosen, field_rejected / field_completion, field_label) map them; its validator
    accepts the config and its preprocess loads and tokenizes the renamed records."""
    renamed = {
        "pref": ("pref_train.jsonl", {"prompt": "question", "chosen": "good", "rejected": "bad"}),
        "kto": ("kto_train.jsonl", {"prompt": "question", "completion": "answer", "label": "ok"}),
    }
    paths = {}
    for key, (name, columns) in renamed.items():
        rows = [json.loads(line) for line in (Path(__file__).parents[2] / "examples" / "data" / name).open()]
        paths[key] = tmp_path / f"renamed_{name}"
        paths[key].write_text("".join(json.dumps({columns[k]: v for k, v in r.items()}) + "\n" for r in rows))
    jobs = {}
    for method in ("dpo", "ipo", "simpo"):
        data = {"train": {"path": str(paths["pref"])}, "columns": renamed["pref"][1], "max_length": 64}
        jobs[method] = example_job("dpo.yaml", f"columns-{method}", method={"name": method}, data=data)
    jobs["dpo-eval"] = example_job(
        "dpo.yaml",
        "columns-dpo-eval",
        data={
            "train": {"path": str(paths["pref"])},
            "eval": {"path": str(paths["pref"])},
            "columns": renamed["pref"][1],
            "max_length": 64,
        },
    )
    jobs["kto"] = example_job(
        "kto.yaml",
        "columns-kto",
        data={"train": {"path": str(paths["kto"])}, "columns": renamed["kto"][1], "max_length": 64},
    )
    results = validate_many(axolotl_env, jobs)
    assert {n: r["errors"] for n, r in results.items() if not r["ok"]} == {}
    assert all(r["unknown_keys"] == [] for r in results.values())
    # Without the mapping the same records are refused by Axolotl's preprocess: it did look at the columns.
    job, _ = load_checked(jobs["dpo"], "axolotl")
    plan = AxolotlBackend().translate(job)
    folder = tmp_path / "unmapped"
    write_plan(plan, folder)
    config = yaml.safe_load((folder / "axolotl_config.yaml").read_text())
    del config["datasets"][0]["type"]
    (folder / "axolotl_config.yaml").write_text(yaml.safe_dump(config))
    (result,) = AxolotlBackend().run_check([AxolotlBackend().check_request(plan, folder, preprocess=True)])
    assert not result["ok"]


def test_static_refusals_are_axolotl_validator_verdicts(example_job, axolotl_env, tmp_path) -> None:
    """What AxolotlBackend.static_problems refuses before launch, Axolotl's own validator refuses too: the
    translation written anyway (past the refusal) fails there with the reason the refusal cites."""
    from ptsdk.spec.load import load_job

    gpu2 = {"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"}
    cases = {
        # axolotl/utils/schemas/validation.py:706-708
        "dpo-packing": (example_job("dpo.yaml", "dpo-packing", training={"packing": True}), "sample_packing"),
        "grpo-packing": (example_job("grpo.yaml", "grpo-packing", training={"packing": True}), "sample_packing"),
        # axolotl/utils/schemas/validation.py:1176-1189
        "dpo-qlora-fsdp2": (
            example_job(
                "dpo.yaml",
                "dpo-qlora-fsdp2",
                adapter={"type": "qlora", "r": 8, "alpha": 16},
                model={"quantization": "4bit"},
                distributed=gpu2,
                training={"precision": "bf16", "micro_batch_size": 4},
            ),
            "FSDP2 does not support load_in_8bit or load_in_4bit",
        ),
    }
    backend, requests = AxolotlBackend(), []
    for name, (path, _) in cases.items():
        job = load_job(path)
        assert backend.static_problems(job), name
        plan = backend.translate(job)
        write_plan(plan, tmp_path / name)
        requests.append(backend.check_request(plan, tmp_path / name, preprocess=False))
    for (name, (_, reason)), result in zip(cases.items(), backend.run_check(requests), strict=True):
        assert not result["ok"] and any(reason in e for e in result["errors"]), (name, result["errors"])


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
