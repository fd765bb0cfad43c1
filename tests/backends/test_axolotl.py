"""Axolotl for real: CPU training through `ptsdk run`, and Axolotl's own validator on every
generated config. The matrix's evidence for each Axolotl capability names one of these tests."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.pipeline import load_checked
from ptsdk.rundir import write_plan

from .conftest import (
    QUANTIZED_ON_CPU,
    assert_loads,
    assert_trained_quantized,
    assert_vlm_learned,
    assert_warm_start_matches_cold,
    dataset_with_configs,
    quantized_sft_job,
    run_on,
    trained,
)

pytestmark = pytest.mark.axolotl
EXAMPLE_REWARD = str(Path(__file__).parents[2] / "examples" / "rewards.py") + ":correct"


def run(ptsdk, job: Path, run_dir: Path) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def]
    return run_on(ptsdk, "axolotl", job, run_dir)


def ok(manifest: dict, metrics: list[dict], steps: int) -> list[dict]:
    return trained(manifest, metrics, steps, framework=("axolotl", "0.19.0"))


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


@QUANTIZED_ON_CPU
def test_quantized_base_trains_on_cpu(ptsdk, example_job, tmp_path, quantization, adapter, layer) -> None:  # type: ignore[no-untyped-def]
    """bitsandbytes 0.50 has CPU kernels: Axolotl trains an adapter on a 4-bit or 8-bit base on a CPU, and the
    model it trains holds the quantized layers (logs/model.json, ptsdk's plugin), not a base loaded in 16 bits."""
    manifest, metrics = run(ptsdk, quantized_sft_job(example_job, quantization, adapter), tmp_path / "run")
    assert_trained_quantized(tmp_path / "run", ok(manifest, metrics, 4), layer)
    config = yaml.safe_load((tmp_path / "run" / "axolotl_config.yaml").read_text())
    assert config[f"load_in_{quantization}"] is True and config["adapter"] == adapter


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


# --- issue 12: the settings real upstream configs use ----------------------------------------------------


def alpaca_rows(n: int) -> list[dict]:
    """Alpaca records (instruction, optional input, output) about small sums; every other one has an input."""
    rows = []
    for i in range(n):
        a, b = i % 7 + 1, i % 5 + 2
        if i % 2:
            rows.append({"instruction": "Add the two numbers.", "input": f"{a} and {b}", "output": f" {a + b}"})
        else:
            rows.append({"instruction": f"What is {a} + {b}?", "output": f" {a + b}"})
    return rows


def test_sft_instruction_records_and_optimizer_settings(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    """One CPU training run for the new SFT settings: Alpaca records (Axolotl's `type: alpaca`), a held-out
    eval fraction (val_set_size), saves and evals per epoch, Adam betas/epsilon, a cosine floor and pad/eos
    tokens. The eval loss falls, and the run's own artefacts show each setting took effect."""
    data = tmp_path / "alpaca.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in alpaca_rows(40)))
    job = example_job(
        "sft_full.yaml",
        "sft-instruction",
        data={"train": {"path": str(data)}, "format": "instruction", "eval_split": 0.2, "max_length": 512},
        model={"pad_token": "<unk>", "eos_token": "<|end|>"},
        training={
            "global_batch_size": 8,
            "micro_batch_size": 8,
            "learning_rate": 0.001,
            "epochs": 1,
            "max_steps": None,
            "lr_scheduler": "cosine",
            "min_lr_ratio": 0.1,
            "adam_beta1": 0.8,
            "adam_beta2": 0.95,
            "adam_epsilon": 1e-6,
            "precision": "fp32",
        },
        output={"saves_per_epoch": 2, "evals_per_epoch": 2, "save_total_limit": 2},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run(ptsdk, job, run_dir)
    config = yaml.safe_load((run_dir / "axolotl_config.yaml").read_text())
    assert config["datasets"][0]["type"] == "alpaca" and config["val_set_size"] == 0.2
    assert (config["saves_per_epoch"], config["evals_per_epoch"]) == (2, 2) and "save_strategy" not in config
    assert config["special_tokens"] == {"pad_token": "<unk>", "eos_token": "<|end|>"}
    # 40 rows, 8 held out: 32 train rows, 4 steps of 8.
    ok(manifest, metrics, 4)
    evals = [m for m in metrics if m["kind"] == "eval"]
    assert len(evals) >= 2 and evals[-1]["loss"] < evals[0]["loss"], evals
    # Checkpoints twice per epoch (steps 2 and 4), with the optimizer and scheduler state they ran with.
    assert sorted(p.name for p in (run_dir / "model").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    code = (
        "import json, sys, torch\n"
        "opt = torch.load(sys.argv[1] + '/optimizer.pt', weights_only=False)['param_groups'][0]\n"
        "sched = torch.load(sys.argv[1] + '/scheduler.pt', weights_only=False)\n"
        "from transformers import AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[2])\n"
        "print(json.dumps({'betas': list(opt['betas']), 'eps': opt['eps'], 'last_lr': sched['_last_lr'],\n"
        "                  'pad': tok.pad_token, 'eos': tok.eos_token}))\n"
    )
    proc = subprocess.run(
        [axolotl_env.python, "-c", code, str(run_dir / "model" / "checkpoint-4"), str(run_dir / "model")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state["betas"] == [0.8, 0.95] and state["eps"] == 1e-6
    # The cosine schedule ends at its floor, 0.1 x the peak learning rate (without the floor: 0).
    assert abs(state["last_lr"][0] - 1e-4) < 1e-9, state
    assert (state["pad"], state["eos"]) == ("<unk>", "<|end|>")


def test_grpo_rollout_settings(ptsdk, example_job, tmp_path, axolotl_env) -> None:
    """One CPU GRPO run for the new rollout settings: no prompt limit (Axolotl's GRPO has none), a k3 KL term
    in the loss (trl.beta), two optimizer steps per rollout (trl.generation_batch_size = 4 prompts x 4
    completions = 2 x global_batch_size) and two passes over each rollout (trl.num_iterations)."""
    method = {
        "name": "grpo",
        "num_generations": 4,
        "max_prompt_length": None,
        "max_completion_length": 8,
        "kl_coef": 0.04,
        "rollout_batch_size": 4,
        "epochs_per_rollout": 2,
        "rewards": yaml.safe_load(example_job("grpo.yaml", "src").read_text())["method"]["rewards"],
    }
    job = example_job("grpo.yaml", "grpo-rollout", method=method, training={"max_steps": 4})
    run_dir = tmp_path / "run"
    manifest, metrics = run(ptsdk, job, run_dir)
    trl = yaml.safe_load((run_dir / "axolotl_config.yaml").read_text())["trl"]
    assert (trl["beta"], trl["generation_batch_size"], trl["num_iterations"]) == (0.04, 16, 2)
    train = ok(manifest, metrics, 4)
    # TRL logs the KL term only when beta > 0: the penalty was computed.
    assert all(isinstance(m["extra"].get("kl"), float) for m in train), train[0]["extra"]
    assert not any(n["field"] == "method.max_prompt_length" for n in manifest["notes"])


def dataset_folder(folder: Path, main: list[dict]) -> Path:
    """A local dataset with two configurations, as a hub dataset has them: `main` holds the records, `other`
    holds rows no dataset type reads, and neither is the default (a loader must be told which)."""
    return dataset_with_configs(folder, {"main": main, "other": [{"text": "unrelated"}]})


def test_new_settings_pass_axolotl_validator(tiny_model, tmp_path, axolotl_env) -> None:
    """Axolotl's validator (plus its preprocess for CPU jobs) on the issue-12 settings no CPU run covers:
    a dataset configuration (datasets[].name, loaded from a folder with two of them), padding-free batches
    (batch_flattening, flash_attention_2 on a GPU), GRPO against an external vLLM server, and the SFT settings
    again with LoRA. The padding-free job ptsdk refuses without flash attention is refused by Axolotl too."""
    from ptsdk.spec import validate_job

    examples = Path(__file__).parents[2] / "examples"
    sft_rows = [json.loads(line) for line in (examples / "data" / "sft_train.jsonl").open()][:32]
    rl_rows = [json.loads(line) for line in (examples / "data" / "rl_train.jsonl").open()][:32]
    sft_dir = dataset_folder(tmp_path / "sft_ds", sft_rows)
    rl_dir = dataset_folder(tmp_path / "rl_ds", rl_rows)
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text("".join(json.dumps(r) + "\n" for r in alpaca_rows(16)))
    base = {
        "model": {"name_or_path": str(tiny_model)},
        "distributed": {"device": "cpu"},
        "training": {"global_batch_size": 4, "micro_batch_size": 4, "max_steps": 2, "precision": "fp32"},
        "data": {"train": {"path": str(sft_dir), "subset": "main"}, "max_length": 64},
    }
    gpu = {"distributed": {"device": "gpu"}, "training": {**base["training"], "precision": "bf16"}}
    lora = {"type": "lora", "r": 8, "alpha": 16}
    grpo = {
        "name": "grpo",
        "num_generations": 4,
        "max_completion_length": 8,
        "rewards": [str(examples / "rewards.py") + ":correct"],
        "rollout_batch_size": 2,
    }
    cases: dict[str, tuple[dict, bool]] = {
        "sft-subset": ({"method": {"name": "sft"}}, True),
        "grpo-subset": (
            {
                "method": {**grpo, "rollout_batch_size": None},
                "adapter": lora,
                "data": {"train": {"path": str(rl_dir), "subset": "main"}},
            },
            True,
        ),
        "sft-padding-free": (
            {
                "method": {"name": "sft"},
                **gpu,
                "model": {"name_or_path": str(tiny_model), "attn_implementation": "flash_attention_2"},
                "training": {**gpu["training"], "padding_free": True},
            },
            True,
        ),
        "grpo-server": (
            {
                "method": grpo,
                **gpu,
                "adapter": lora,
                "rollout": {"server": "10.0.0.2:8000"},
                "data": {"train": {"path": str(examples / "data" / "rl_train.jsonl")}},
            },
            True,
        ),
        "instruction-lora": (
            {
                "method": {"name": "sft"},
                "adapter": lora,
                "model": {"name_or_path": str(tiny_model), "pad_token": "<unk>", "eos_token": "<|end|>"},
                "data": {
                    "train": {"path": str(alpaca)},
                    "format": "instruction",
                    "eval_split": 0.25,
                    "max_length": 512,
                },
                "training": {
                    **base["training"],
                    "max_steps": None,
                    "epochs": 1,
                    "min_lr_ratio": 0.1,
                    "adam_beta2": 0.95,
                },
                "output": {"saves_per_epoch": 2, "evals_per_epoch": 2},
            },
            True,
        ),
        # Refused by ptsdk (static_problems); written anyway, Axolotl refuses it for the same reason.
        "padding-free-sdpa": (
            {"method": {"name": "sft"}, **gpu, "training": {**gpu["training"], "padding_free": True}},
            False,
        ),
    }
    backend, requests, keep = AxolotlBackend(), [], []
    for name, (overrides, accepted) in cases.items():
        job = validate_job({**base, **overrides, "name": name})
        assert (backend.static_problems(job) == []) is accepted, (name, backend.static_problems(job))
        plan = backend.translate(job)
        folder = tmp_path / name
        write_plan(plan, folder)
        keep.append(folder)
        requests.append(backend.check_request(plan, folder, preprocess=job.distributed.device == "cpu"))
    results = dict(zip(cases, backend.run_check(requests, timeout=1200), strict=True))
    failed = {n: r["errors"] for n, r in results.items() if not r["ok"] and cases[n][1]}
    assert not failed, failed
    assert all(r["unknown_keys"] == [] for r in results.values())
    assert any("batch_flattening requires a varlen" in e for e in results["padding-free-sdpa"]["errors"])
    # The configuration was really chosen: without `name`, the same folder does not load.
    job = validate_job({**base, "method": {"name": "sft"}, "name": "unnamed"})
    plan = backend.translate(job)
    write_plan(plan, tmp_path / "unnamed")
    config = yaml.safe_load((tmp_path / "unnamed" / "axolotl_config.yaml").read_text())
    assert config["datasets"][0]["name"] == "main"
    del config["datasets"][0]["name"]
    (tmp_path / "unnamed" / "axolotl_config.yaml").write_text(yaml.safe_dump(config))
    (result,) = backend.run_check([backend.check_request(plan, tmp_path / "unnamed", preprocess=True)])
    assert not result["ok"], result


# --- message key/role mappings and a prompt inside chosen/rejected ----------------------------------------------

THINK_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}<|system|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'user' %}<|user|>\n{{ message['content'] }}<|end|>\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n"
    "{% if message.get('reasoning_content') %}<think>{{ message['reasoning_content'] }}</think>{% endif %}"
    "{{ message['content'] }}<|end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
EXAMPLE_DATA = Path(__file__).parents[2] / "examples" / "data"


def prepared_rows(env, run_dir: Path, model: Path, columns: tuple[str, ...]) -> list[dict]:  # type: ignore[no-untyped-def]
    """The rows Axolotl itself prepared for training (its dataset_prepared_path under the run), text decoded."""
    (folder,) = {p.parent for p in (run_dir / "prepared").rglob("dataset_info.json")}
    code = (
        "import json, sys\n"
        "from datasets import load_from_disk\n"
        "from transformers import AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[2])\n"
        "rows = []\n"
        "for r in load_from_disk(sys.argv[1]).select(range(4)):\n"
        "    out = {k: r[k] for k in sys.argv[3:] if isinstance(r.get(k), str)}\n"
        "    if 'input_ids' in r:\n"
        "        out['text'] = tok.decode(r['input_ids'])\n"
        "        out['trained'] = tok.decode([i for i, l in zip(r['input_ids'], r['labels']) if l != -100])\n"
        "    rows.append(out)\n"
        "print(json.dumps(rows))\n"
    )
    proc = subprocess.run(
        [env.python, "-c", code, str(folder), str(model), *columns], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sft_sharegpt_messages_with_thinking(ptsdk, example_job, tiny_model, tmp_path, axolotl_env) -> None:
    """ShareGPT records ({from, value, thought} turns, roles human/gpt, in a `conversations` column) trained on
    CPU through Axolotl's own chat_template mappings (message_property_mappings with reasoning_content, roles).
    The rows Axolotl prepared hold the mapped turns and the reasoning the template rendered, with the loss on the
    assistant turn (reasoning included) and none on the user's."""
    rows = [json.loads(line) for line in (EXAMPLE_DATA / "chat_train.jsonl").open()][:32]
    data = tmp_path / "sharegpt.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "conversations": [
                        {"from": "human", "value": r["messages"][0]["content"]},
                        {"from": "gpt", "value": r["messages"][1]["content"], "thought": "add them up"},
                    ]
                }
            )
            + "\n"
            for r in rows
        )
    )
    template = tmp_path / "think.jinja"
    template.write_text(THINK_TEMPLATE)
    job = example_job(
        "sft_chat.yaml",
        "sft-sharegpt",
        model={"chat_template": str(template)},
        data={
            "train": {"path": str(data)},
            "format": "messages",
            "columns": {"messages": "conversations"},
            "message_keys": {"role": "from", "content": "value", "thinking": "thought"},
            "role_names": {"human": "user", "gpt": "assistant"},
            "max_length": 96,
        },
        training={"max_steps": 3, "shuffle": False},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run(ptsdk, job, run_dir)
    entry = yaml.safe_load((run_dir / "axolotl_config.yaml").read_text())["datasets"][0]
    assert entry["message_property_mappings"] == {"role": "from", "content": "value", "reasoning_content": "thought"}
    assert entry["roles"]["user"] == ["user", "human"] and entry["roles"]["assistant"] == ["assistant", "gpt"]
    ok(manifest, metrics, 3)
    first = prepared_rows(axolotl_env, run_dir, tiny_model, ())[0]
    question, answer = rows[0]["messages"][0]["content"], rows[0]["messages"][1]["content"]
    assert f"<|user|>\n{question}<|end|>" in first["text"], first
    assert f"<|assistant|>\n<think>add them up</think>{answer}<|end|>" in first["text"], first
    assert "add them up" in first["trained"] and answer in first["trained"] and question not in first["trained"]


def implicit_pairs(n: int, *, system: bool = True) -> list[dict]:
    """Preference pairs as whole conversations (every other one opens with a system turn), no prompt column."""
    rows = [json.loads(line) for line in (EXAMPLE_DATA / "pref_train.jsonl").open()][:n]
    out = []
    for i, r in enumerate(rows):
        prompt = [{"role": "system", "content": "Answer briefly."}] if i % 2 and system else []
        prompt.append({"role": "user", "content": r["prompt"]})
        out.append(
            {
                "good": [*prompt, {"role": "assistant", "content": r["chosen"]}],
                "bad": [*prompt, {"role": "assistant", "content": r["rejected"]}],
            }
        )
    return out


def test_dpo_prompt_in_answers(ptsdk, example_job, tiny_model, tmp_path, axolotl_env) -> None:
    """DPO on CPU from records whose chosen/rejected (renamed good/bad) are whole conversations sharing their prompt
    turns: Axolotl's chat_template.argilla_chat splits them. The prepared rows hold the shared turns as the prompt
    (system turn included, ending in the generation prompt) and each last turn as the answer."""
    pairs = implicit_pairs(32)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pairs))
    job = example_job(
        "dpo.yaml",
        "dpo-implicit",
        data={
            "train": {"path": str(data)},
            "columns": {"chosen": "good", "rejected": "bad"},
            "prompt_in_answers": True,
            "max_length": 96,
        },
        training={"max_steps": 2, "shuffle": False},
    )
    run_dir = tmp_path / "run"
    manifest, metrics = run(ptsdk, job, run_dir)
    config = yaml.safe_load((run_dir / "axolotl_config.yaml").read_text())
    assert config["datasets"][0] == {
        "path": str(data),
        "split": "train",
        "type": "chat_template.argilla_chat",
        "field_chosen": "good",
        "field_rejected": "bad",
    }
    ok(manifest, metrics, 2)
    prepared = prepared_rows(axolotl_env, run_dir, tiny_model, ("prompt", "chosen", "rejected"))
    for pair, row in zip(pairs, prepared, strict=False):
        *turns, good = pair["good"]
        shown = "".join(f"<|{t['role']}|>\n{t['content']}<|end|>\n" for t in turns) + "<|assistant|>\n"
        assert row["prompt"] == shown, row
        assert row["chosen"].startswith(good["content"]) and row["rejected"].startswith(pair["bad"][-1]["content"])
    assert any("<|system|>" in row["prompt"] for row in prepared)


def test_message_settings_pass_axolotl_validator(example_job, axolotl_env, tmp_path) -> None:
    """Axolotl's validator and preprocess on the mappings no CPU run above covers: IPO and SimPO take the implicit
    prompt through the same DPO loader, ORPO through its own chat_template.argilla (which fails loudly on a system
    turn, as the translation's note says), ShareGPT SFT with LoRA and an eval file. And what ptsdk refuses, Axolotl
    drops: a DPO dataset entry's message_property_mappings and roles are not DPODataset fields."""
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in implicit_pairs(16)))
    plain = tmp_path / "plain_pairs.jsonl"
    rows = implicit_pairs(16, system=False)
    plain.write_text("".join(json.dumps({"chosen": r["good"], "rejected": r["bad"]}) + "\n" for r in rows))
    system = tmp_path / "system_pairs.jsonl"
    system.write_text(
        "".join(json.dumps({"chosen": r["good"], "rejected": r["bad"]}) + "\n" for r in implicit_pairs(16))
    )
    chat = tmp_path / "sharegpt.jsonl"
    chat.write_text(
        "".join(
            json.dumps({"conversations": [{"from": "human", "value": "2 + 2?"}, {"from": "gpt", "value": "4"}]}) + "\n"
            for _ in range(16)
        )
    )
    implicit = {"train": {"path": str(data)}, "columns": {"chosen": "good", "rejected": "bad"}, "max_length": 96}
    jobs = {
        "ipo": example_job("dpo.yaml", "ipo", method={"name": "ipo"}, data={**implicit, "prompt_in_answers": True}),
        "simpo": example_job(
            "dpo.yaml", "simpo", method={"name": "simpo"}, data={**implicit, "prompt_in_answers": True}
        ),
        "orpo": example_job(
            "orpo.yaml",
            "orpo",
            data={"train": {"path": str(plain)}, "prompt_in_answers": True, "max_length": 96},
        ),
        "orpo-system-turn": example_job(
            "orpo.yaml",
            "orpo-system-turn",
            data={"train": {"path": str(system)}, "prompt_in_answers": True, "max_length": 96},
        ),
        "sft-sharegpt-eval": example_job(
            "sft_chat.yaml",
            "sft-sharegpt-eval",
            data={
                "train": {"path": str(chat)},
                "eval": {"path": str(chat)},
                "format": "messages",
                "columns": {"messages": "conversations"},
                "message_keys": {"role": "from", "content": "value"},
                "role_names": {"human": "user", "gpt": "assistant"},
                "max_length": 64,
            },
        ),
    }
    results = validate_many(axolotl_env, jobs)
    assert "preprocess: AssertionError: invalid number of turns" in results["orpo-system-turn"]["errors"]
    assert {n: r["errors"] for n, r in results.items() if not r["ok"] and n != "orpo-system-turn"} == {}
    assert all(r["unknown_keys"] == [] for r in results.values())
    # Refused: DPO with mapped message keys. Written anyway, Axolotl's schema has no place for the mappings.
    from ptsdk.spec.load import load_job

    backend = AxolotlBackend()
    job = load_job(
        example_job(
            "dpo.yaml", "dpo-keys", data={**implicit, "prompt_in_answers": True, "message_keys": {"role": "from"}}
        )
    )
    assert any(p.startswith("data.message_keys: Axolotl 0.19's dpo") for p in backend.static_problems(job))
    plan = backend.translate(job)
    write_plan(plan, tmp_path / "dpo-keys")
    config = yaml.safe_load((tmp_path / "dpo-keys" / "axolotl_config.yaml").read_text())
    config["datasets"][0].update(
        message_property_mappings={"role": "from", "content": "content"}, roles={"user": ["u"]}
    )
    (tmp_path / "dpo-keys" / "axolotl_config.yaml").write_text(yaml.safe_dump(config))
    (result,) = backend.run_check([backend.check_request(plan, tmp_path / "dpo-keys", preprocess=False)])
    assert result["unknown_keys"] == ["datasets.0.message_property_mappings", "datasets.0.roles"], result


def test_vlm_sft(ptsdk, example_job, tmp_path, axolotl_env, tiny_vlm) -> None:
    """Image records through Axolotl's own multimodal collator on CPU: the records are rewritten with each image
    as an absolute {type: image, path} part where the spec places it (string contents: before the first user
    turn's text), the loss falls, and the saved model's vision tower moved."""
    job = example_job("vlm_sft.yaml", model={"name_or_path": str(tiny_vlm)}, method={"name": "sft", "loss_on": "all"})
    manifest, metrics = run(ptsdk, job, tmp_path / "run")
    train = ok(manifest, metrics, 6)
    assert train[-1]["loss"] < train[0]["loss"] - 0.5, [m["loss"] for m in train]
    rows = [json.loads(line) for line in (tmp_path / "run" / "data" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 16
    for row in rows:
        (image, text) = row["messages"][0]["content"]
        assert image["type"] == "image" and Path(image["path"]).is_absolute() and Path(image["path"]).is_file()
        assert text == {"type": "text", "text": "What color is it?"}
    data = Path(__file__).parents[2] / "examples" / "data"
    assert_vlm_learned(axolotl_env, tmp_path / "run" / "model", tiny_vlm, data / "images" / "00_red.png")


def test_vlm_loss_on_completion_is_refused_by_axolotl_multimodal_path(example_job, axolotl_env, tiny_vlm) -> None:
    """Axolotl's multimodal collator masks by role markers it knows for named model families only; for the tiny
    LLaVA it would train on every token, so the native check (Axolotl's own strategy, built as its trainer builds
    it) refuses loss_on: completion, and Axolotl's own role_boundaries override fails as it would in its trainer."""
    backend = AxolotlBackend()
    requests = []
    for name, options in (
        ("completion", {}),
        (
            "boundaries",
            {"axolotl": {"role_boundaries": [{"role": "assistant", "start": "<|assistant|>\n", "end": "<|end|>"}]}},
        ),
    ):
        job, _ = load_checked(
            example_job("vlm_sft.yaml", model={"name_or_path": str(tiny_vlm)}, backend_options=options), "axolotl"
        )
        plan = backend.translate(job)
        folder = Path(tempfile.mkdtemp(prefix=f"ptsdk-vlm-{name}-"))
        write_plan(plan, folder)
        requests.append(backend.check_request(plan, folder, preprocess=False))
    completion, boundaries = backend.run_check(requests)
    assert any(
        e.startswith("method.loss_on: completion: Axolotl's multimodal collator has no role markers")
        for e in completion["errors"]
    ), completion
    assert any(e.startswith("backend_options.axolotl.role_boundaries: ") for e in boundaries["errors"]), boundaries


def test_warm_start_trains_as_a_cold_start(example_job, tmp_path) -> None:
    """Its first command, ptsdk's starting adapter, goes to the warm interpreter; training starts as always."""
    assert_warm_start_matches_cold("axolotl", example_job("sft_lora.yaml", training={"max_steps": 2}), tmp_path)
