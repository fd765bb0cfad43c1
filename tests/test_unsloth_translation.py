"""The Unsloth translation without Unsloth: what each job setting becomes in train_unsloth.py's config, and what
ptsdk refuses before launch (the capability matrix, or UnslothBackend.static_problems for what Unsloth's CPU
backend would silently change: unsloth_zoo 2026.10.9 cpu/trainer.py, cpu/loader.py).
tests/backends/test_unsloth.py runs Unsloth itself on these translations."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, minimal_job
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.testing import BackendContract
from ptsdk.spec import Job
from ptsdk.spec.load import validate_job
from ptsdk_unsloth.backend import CONFIG, RUNNER, UnslothBackend

CPU = {"device": "cpu"}


def job(**overrides: Any) -> Job:
    return validate_job(minimal_job(**overrides))


def translate(j: Job) -> tuple[Plan, dict[str, Any]]:
    plan = UnslothBackend().translate(j)
    return plan, yaml.safe_load(plan.file(CONFIG).content or "")


def refusals(j: Job) -> list[str]:
    return feasibility(j, {"unsloth": UnslothBackend})["unsloth"].reasons()


class TestUnslothContract(BackendContract):
    backend = UnslothBackend
    jobs = sorted((EXAMPLES / "jobs").glob("*.yaml"))


def test_lora_sft_on_cpu() -> None:
    plan, cfg = translate(
        job(
            adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
            model={"name_or_path": "/m", "dtype": "float32"},
            data={"train": {"path": "/d/train.jsonl"}, "eval": {"path": "/d/eval.jsonl"}, "max_length": 64},
            training={"global_batch_size": 8, "micro_batch_size": 4, "max_steps": 10, "precision": "fp32"},
            distributed=CPU,
        )
    )
    assert plan.entrypoint == [RUNNER] and plan.args == ["--config", CONFIG] and plan.launcher.kind == "python"
    assert plan.env["UNSLOTH_FORCE_CPU"] == "1" and plan.env["CUDA_VISIBLE_DEVICES"] == ""
    assert {f.path for f in plan.files} >= {RUNNER, "ptsdk_runtime.py", CONFIG}
    assert cfg["model_name_or_path"] == "/m" and cfg["load_dtype"] == "float32"
    assert (cfg["load_in_4bit"], cfg["full_finetuning"]) == (False, False)
    assert (cfg["lora_r"], cfg["lora_alpha"], cfg["lora_dropout"]) == (8, 16, 0.0)
    assert cfg["lora_target_modules"] == ["q_proj", "v_proj"]
    assert cfg["train_path"] == "/d/train.jsonl" and cfg["eval_path"] == "/d/eval.jsonl"
    assert cfg["max_seq_length"] == cfg["max_length"] == 64
    assert cfg["per_device_train_batch_size"] == 4 and cfg["gradient_accumulation_steps"] == 2
    assert cfg["max_steps"] == 10 and "num_train_epochs" not in cfg
    assert (cfg["use_cpu"], cfg["bf16"], cfg["fp16"]) == (True, False, False)
    assert cfg["optim"] == "adamw_torch" and cfg["output_dir"] == "checkpoints"
    assert cfg["use_gradient_checkpointing"] == "false" and cfg["seed"] == cfg["data_seed"] == 42
    assert plan.effective["adapter_init"] == "Unsloth's get_peft_model (seed 42)"


def test_full_sft_and_all_linear_targets() -> None:
    _, cfg = translate(job(distributed=CPU, training={"precision": "fp32", "epochs": 2}))
    assert cfg["full_finetuning"] is True and "lora_r" not in cfg and cfg["num_train_epochs"] == 2
    plan, cfg = translate(job(adapter={"type": "lora"}, distributed=CPU, training={"precision": "fp32"}))
    assert cfg["lora_target_modules"] is None  # all-linear: Unsloth's own q/k/v/o/gate/up/down list
    assert any("Unsloth's default targets" in n.message for n in plan.notes if n.field == "adapter.target_modules")


def test_loss_mask_and_gradient_checkpointing() -> None:
    _, cfg = translate(job(method={"name": "sft", "loss_on": "completion"}, training={"gradient_checkpointing": True}))
    assert cfg["completion_only_loss"] is True and "assistant_only_loss" not in cfg
    assert cfg["use_gradient_checkpointing"] == "unsloth"
    _, cfg = translate(
        job(method={"name": "sft", "loss_on": "all"}, data={"train": {"path": "org/chat"}, "format": "messages"})
    )
    assert cfg["assistant_only_loss"] is False


def test_qlora_loads_4bit_and_8bit_is_refused() -> None:
    qlora = {"type": "qlora", "r": 8}
    _, cfg = translate(job(adapter=qlora, model={"name_or_path": "m", "quantization": "4bit"}))
    assert cfg["load_in_4bit"] is True and cfg["full_finetuning"] is False and cfg["lora_r"] == 8
    reasons = refusals(job(adapter={"type": "lora"}, model={"name_or_path": "m", "quantization": "8bit"}))
    assert any(r.startswith("model.quantization: ptsdk translates Unsloth's 4-bit") for r in reasons), reasons


def test_gpu_job_leaves_unsloths_gpu_path() -> None:
    plan, cfg = translate(job(training={"precision": "bf16"}))
    assert "UNSLOTH_FORCE_CPU" not in plan.env and "use_cpu" not in cfg and cfg["bf16"] is True


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"distributed": {"device": "cpu", "gpus_per_node": 2}}, "distributed.strategy"),
        ({"distributed": {"strategy": "fsdp", "gpus_per_node": 2}}, "distributed.strategy"),
        ({"distributed": {"strategy": "deepspeed", "zero_stage": 2, "gpus_per_node": 2}}, "distributed.strategy"),
        ({"distributed": {"nodes": 2, "master_addr": "h"}}, "distributed.nodes"),
        ({"method": {"name": "dpo"}, "data": {"train": {"path": "org/p"}}}, "method.name"),
        ({"method": {"name": "grpo", "rewards": ["r.py:f"]}, "data": {"train": {"path": "org/p"}}}, "method.name"),
        ({"training": {"packing": True}}, "training.packing"),
        ({"output": {"report_to": ["tensorboard"]}}, "output.report_to"),
    ],
)
def test_matrix_refuses_what_unsloth_cannot_run(overrides: dict[str, Any], field: str) -> None:
    """Multi-GPU (open-source Unsloth trains on one device), methods other than SFT (the CPU backend runs SFTTrainer
    only: unsloth/_cpu_init.py), packing (the CPU backend turns it off: cpu/trainer.py:66-75) and trackers: not
    declared, so refused naming the field."""
    reasons = refusals(job(**overrides))
    assert reasons and any(r.startswith(f"{field}: unsloth cannot run") for r in reasons), reasons


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"training": {"optimizer": "adamw_8bit", "precision": "fp32"}, "distributed": CPU}, "training.optimizer"),
        ({"model": {"name_or_path": "m", "dtype": "float16"}, "distributed": CPU}, "model.dtype"),
        ({"model": {"name_or_path": "m", "attn_implementation": "sdpa"}}, "model.attn_implementation"),
        ({"model": {"name_or_path": "m", "trust_remote_code": True}}, "model.trust_remote_code"),
        ({"adapter": {"type": "lora", "init_path": "/a"}}, "adapter.init_path"),
    ],
)
def test_static_refusals_name_the_field(overrides: dict[str, Any], field: str) -> None:
    """Settings Unsloth would change silently are refused before launch, as `field: reason; fix`."""
    reasons = refusals(job(**overrides))
    assert any(r.startswith(f"{field}: ") for r in reasons), reasons


def test_cpu_notes_say_what_unsloth_changes() -> None:
    plan, _ = translate(job(distributed=CPU))
    assert any("fused" in n.message for n in plan.notes if n.field == "training.optimizer")
    assert any("fp32" in n.message for n in plan.notes if n.field == "training.precision")
    assert plan.effective["optimizer"] == "adamw_torch_fused"


def test_passthrough_reaches_the_config_but_not_owned_keys() -> None:
    _, cfg = translate(job(backend_options={"unsloth": {"logging_first_step": True}}))
    assert cfg["logging_first_step"] is True
    reasons = refusals(job(backend_options={"unsloth": {"load_in_4bit": True}}))
    assert any("model.quantization" in r for r in reasons), reasons


def test_cli_refuses_before_launch_with_exit_2(ptsdk, write_job, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ptsdk run` refuses a two-process CPU job and a DPO job for unsloth before anything starts: exit 2, the
    field named, the backends that can run it listed, no traceback and no run directory."""
    ddp = write_job(minimal_job(distributed={"device": "cpu", "gpus_per_node": 2}, training={"precision": "fp32"}))
    r = ptsdk("run", str(ddp), "--backend", "unsloth", "--run-dir", str(tmp_path / "run"))
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert "distributed.strategy: unsloth cannot run strategy 'ddp'; backends that can:" in r.err
    assert not (tmp_path / "run").exists()
    dpo = write_job(minimal_job(method={"name": "dpo"}, distributed={"device": "cpu"}), "dpo.yaml")
    r = ptsdk("validate", str(dpo), "--backend", "unsloth")
    assert r.code == 2 and "method.name: unsloth cannot run method 'dpo'" in r.err, r.err
