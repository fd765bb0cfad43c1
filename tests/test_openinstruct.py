"""OpenInstruct (git-only) without OpenInstruct: the command lines ptsdk writes for finetune.py and
dpo_tune_cache.py, checked against their argument dataclasses as transcribed at the pinned commit
(distributions/openinstruct/ptsdk_openinstruct/schema.py), and the jobs refused before anything launches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_model, minimal_job
from gpu_jobs import gpu_copy, gpu_jobs
from ptsdk.errors import PtsdkError
from ptsdk.matrix import Verified
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.testing import BackendContract
from ptsdk.spec import load_job, validate_job
from ptsdk_openinstruct.backend import OpenInstructBackend
from ptsdk_openinstruct.cli import command_line_problems, parse_command_line
from ptsdk_openinstruct.schema import COMMIT, DpoTuneCacheArgs, FinetuneArgs, GrpoFastArgs


class TestOpenInstructContract(BackendContract):
    backend = OpenInstructBackend
    jobs = gpu_jobs()  # type: ignore[assignment]


def gpu_job(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "1+1=", "completion": "2"}\n')
    job = minimal_job(
        model={"name_or_path": str(fake_model(tmp_path / "model"))},
        data={"train": {"path": str(data)}},
        distributed={"device": "gpu"},
    )
    job.update(overrides)
    return job


def translate(job: dict[str, Any]) -> Plan:
    return OpenInstructBackend().translate(validate_job(job))


def flags(plan: Plan) -> dict[str, Any]:
    values, problems = parse_command_line(
        plan.args, FinetuneArgs if "finetune" in plan.entrypoint[-1] else DpoTuneCacheArgs
    )
    assert problems == []
    return values


def refusals(job: dict[str, Any]) -> list[str]:
    verdict = feasibility(validate_job(job), {"openinstruct": OpenInstructBackend})["openinstruct"]
    assert not verdict.ok
    return [str(r) for r in verdict.reasons()]


# --- translations ---------------------------------------------------------------------------------------------


def test_sft_lora_runs_finetune_with_lora_flags(tmp_path: Path) -> None:
    job = gpu_job(
        tmp_path,
        adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        training={"global_batch_size": 8, "micro_batch_size": 4, "learning_rate": 2e-4, "max_steps": 30},
    )
    plan = translate(job)
    assert plan.entrypoint == ["-m", "open_instruct.finetune"]
    f = flags(plan)
    assert f["use_lora"] is True and "use_qlora" not in f
    assert (f["lora_rank"], f["lora_alpha"], f["lora_dropout"]) == ("8", "16", "0.0")
    assert f["dataset_mixer_list"] == ["data/train.jsonl", "1.0"]
    assert (f["per_device_train_batch_size"], f["gradient_accumulation_steps"]) == ("4", "2")
    assert (f["max_train_steps"], f["learning_rate"], f["clip_grad_norm"]) == ("30", "0.0002", "1.0")
    assert f["push_to_hub"] is False and f["try_launch_beaker_eval_jobs"] is False
    assert plan.env["ACCELERATE_MIXED_PRECISION"] == "bf16"  # the job's default precision
    assert plan.launcher.kind == "python"
    assert plan.prepare[0].argv[1:] == ["prepare_openinstruct.py", "openinstruct_data.json"]


def test_sft_example_chat_job_keeps_messages_and_epochs(tmp_path: Path) -> None:
    plan = OpenInstructBackend().translate(load_job(gpu_copy("sft_chat.yaml", tmp_path), check_files=False))
    f = flags(plan)
    assert '"format": "messages"' in plan.file("openinstruct_data.json").content  # type: ignore[operator]
    assert f["max_seq_length"] == "96" and f["max_train_steps"] == "5"


def test_qlora_and_bf16_and_two_gpus(tmp_path: Path) -> None:
    job = gpu_job(
        tmp_path,
        adapter={"type": "qlora"},
        model={"name_or_path": str(fake_model(tmp_path / "m")), "quantization": "4bit"},
        training={"precision": "bf16", "global_batch_size": 8, "micro_batch_size": 2, "epochs": 2},
        distributed={"device": "gpu", "gpus_per_node": 2},
    )
    plan = translate(job)
    f = flags(plan)
    assert f["use_qlora"] is True and f["num_train_epochs"] == "2" and f["gradient_accumulation_steps"] == "2"
    assert plan.env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert plan.launcher.kind == "torchrun" and plan.launcher.nproc_per_node == 2


def test_dpo_example_runs_dpo_tune_cache_with_its_own_flag_names(tmp_path: Path) -> None:
    plan = OpenInstructBackend().translate(load_job(gpu_copy("dpo.yaml", tmp_path), check_files=False))
    assert plan.entrypoint == ["-m", "open_instruct.dpo_tune_cache"]
    f = flags(plan)
    # DPOExperimentConfig names differ from finetune.py's: mixer_list, num_epochs, max_grad_norm, local_cache_dir
    assert f["mixer_list"] == ["data/train.jsonl", "1.0"] and "dataset_mixer_list" not in f
    assert (f["loss_type"], f["beta"], f["max_train_steps"]) == ("dpo", "0.1", "12")
    assert f["use_lora"] is True and f["lora_rank"] == "8"
    assert '"format": "preference"' in plan.file("openinstruct_data.json").content  # type: ignore[operator]


def test_simpo_and_length_normalized_dpo(tmp_path: Path) -> None:
    pref = tmp_path / "pref.jsonl"
    pref.write_text('{"prompt": "1+1=", "chosen": "2", "rejected": "3"}\n')
    data = {"train": {"path": str(pref)}}
    simpo = flags(translate(gpu_job(tmp_path, method={"name": "simpo", "beta": 2.0, "gamma": 0.5}, data=data)))
    assert (simpo["loss_type"], simpo["beta"], simpo["gamma_beta_ratio"]) == ("simpo", "2.0", "0.25")
    norm = flags(translate(gpu_job(tmp_path, method={"name": "dpo", "loss_type": "sigmoid_norm"}, data=data)))
    assert norm["loss_type"] == "dpo_norm"


def test_passthrough_flag_lands_and_is_checked(tmp_path: Path) -> None:
    plan = translate(gpu_job(tmp_path, backend_options={"openinstruct": {"use_liger_kernel": True}}))
    assert flags(plan)["use_liger_kernel"] is True
    with pytest.raises(PtsdkError) as err:
        translate(gpu_job(tmp_path, backend_options={"openinstruct": {"use_liger_kernals": True}}))
    assert "--use_liger_kernals: not an argument of this script" in err.value.lines


# --- refusals -------------------------------------------------------------------------------------------------


def test_grpo_is_refused_for_its_reward_functions(tmp_path: Path) -> None:
    job = gpu_job(tmp_path, method={"name": "grpo", "rewards": ["m:f"], "loss_type": "dapo"})
    assert any(r.startswith("method.rewards:") for r in refusals(job))


def test_cpu_eval_hub_data_and_fsdp_are_refused(tmp_path: Path) -> None:
    assert any(r.startswith("distributed.device:") for r in refusals(gpu_job(tmp_path, distributed={"device": "cpu"})))
    ev = gpu_job(tmp_path)
    ev["data"]["eval"] = {"path": ev["data"]["train"]["path"]}
    assert any(r.startswith("data.eval:") and "no evaluation loop" in r for r in refusals(ev))
    hub = gpu_job(tmp_path, data={"train": {"path": "org/dataset"}})
    assert any(r.startswith("data.train.path:") for r in refusals(hub))
    fsdp = gpu_job(tmp_path, distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"})
    assert any(r.startswith("distributed.strategy:") for r in refusals(fsdp))
    targets = gpu_job(tmp_path, adapter={"type": "lora", "target_modules": ["q_proj"]})
    assert any(r.startswith("adapter.target_modules:") for r in refusals(targets))


def test_env_create_and_run_say_how_to_install_by_hand(ptsdk, tmp_path: Path, write_job, monkeypatch) -> None:
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PTSDK_OPENINSTRUCT_PYTHON", raising=False)
    created = ptsdk("env", "create", "openinstruct")
    assert created.code == 2 and "Traceback" not in created.err
    assert f"git -C open-instruct checkout {COMMIT}" in created.err and "PTSDK_OPENINSTRUCT_PYTHON" in created.err
    ran = ptsdk("run", str(write_job(gpu_job(tmp_path))), "--backend", "openinstruct")
    assert ran.code == 2 and "Traceback" not in ran.err
    assert "github.com/allenai/open-instruct" in ran.err and "PTSDK_OPENINSTRUCT_PYTHON" in ran.err


# --- the transcribed schema -----------------------------------------------------------------------------------


def test_schema_rejects_a_wrong_key_a_wrong_type_and_a_wrong_choice() -> None:
    base = ["--model_name_or_path", "m", "--mixer_list", "d.jsonl", "1.0"]
    assert command_line_problems(base, DpoTuneCacheArgs) == []
    assert command_line_problems(["--dataset_mixer_list", "d.jsonl", "1.0"], DpoTuneCacheArgs)[0].startswith(
        "--dataset_mixer_list: not an argument"
    )
    assert any(
        "learning_rate" in p for p in command_line_problems([*base, "--learning_rate", "fast"], DpoTuneCacheArgs)
    )
    assert any("loss_type" in p for p in command_line_problems([*base, "--loss_type", "ipo"], DpoTuneCacheArgs))
    assert any("lr_scheduler_type" in p for p in command_line_problems(["--lr_scheduler_type", "wsd"], FinetuneArgs))
    assert any("use_lora" in p for p in command_line_problems(["--use_lora", "maybe"], FinetuneArgs))
    assert command_line_problems(["--no_push_to_hub"], FinetuneArgs) == []  # HfArgumentParser's --no_ for True bools
    assert (
        "model_name_or_path" in GrpoFastArgs.model_fields
        and "num_samples_per_prompt_rollout" in GrpoFastArgs.model_fields
    )


def test_every_capability_is_declared_and_names_its_source() -> None:
    assert OpenInstructBackend.schema_source == f"github.com/allenai/open-instruct@{COMMIT}"
    for cap in OpenInstructBackend.capabilities:
        assert cap.verified is Verified.declared and cap.note


def test_prepare_writes_openinstruct_columns(tmp_path: Path) -> None:
    """prepare_openinstruct.py (run before launch, standard library only) gives the SFT transform a messages list and
    the preference transform whole conversations, the prompt turns first."""
    from ptsdk_openinstruct.backend import HERE, PREPARE

    pref = tmp_path / "pref.jsonl"
    pref.write_text('{"prompt": "1+1=", "chosen": "2", "rejected": "3"}\n')
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text('{"instruction": "Add", "input": "1+1", "output": "2"}\n')
    for source, fmt in ((pref, "preference"), (alpaca, "instruction")):
        spec = tmp_path / f"{fmt}.json"
        spec.write_text(json.dumps({"format": fmt, "files": [[str(source), str(tmp_path / f"{fmt}.out.jsonl")]]}))
        subprocess.run([sys.executable, str(HERE / PREPARE), str(spec)], check=True)
    out = json.loads((tmp_path / "preference.out.jsonl").read_text())
    assert out["chosen"] == [{"role": "user", "content": "1+1="}, {"role": "assistant", "content": "2"}]
    assert out["rejected"][-1] == {"role": "assistant", "content": "3"}
    sft = json.loads((tmp_path / "instruction.out.jsonl").read_text())["messages"]
    assert "### Input:\n1+1" in sft[0]["content"] and sft[1] == {"role": "assistant", "content": "2"}


def test_deepspeed_for_dpo_only(tmp_path: Path) -> None:
    """dpo_tune_cache.py builds its DeepSpeed plugin from --zero_stage (dpo_tune_cache.py:129-137); finetune.py reads
    DeepSpeed from an accelerate launch config, which ptsdk does not write."""
    plan = OpenInstructBackend().translate(
        load_job(
            gpu_copy(
                "openrlhf_dpo.yaml",
                tmp_path,
                distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "deepspeed", "zero_stage": 3},
            ),
            check_files=False,
        )
    )
    assert flags(plan)["zero_stage"] == "3" and plan.launcher.kind == "torchrun"
    sft = gpu_job(tmp_path, distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "deepspeed", "zero_stage": 2})
    sft["training"] = {"global_batch_size": 8, "micro_batch_size": 2}
    assert any(r.startswith("distributed.strategy:") and "--zero_stage" in r for r in refusals(sft))


@pytest.mark.skipif(
    not os.environ.get("PTSDK_OPENINSTRUCT_SOURCE"), reason="PTSDK_OPENINSTRUCT_SOURCE: a git clone of open-instruct"
)
def test_schema_is_the_transcription_of_its_commit() -> None:
    """transcribe.py on a clone at schema.COMMIT writes schema.py exactly (after ruff format)."""
    repo = os.environ["PTSDK_OPENINSTRUCT_SOURCE"]
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    if head.stdout.strip() != COMMIT:
        pytest.skip(f"{repo} is not at {COMMIT}")
    here = Path(__file__).resolve().parents[1] / "distributions" / "openinstruct"
    text = subprocess.run(
        [sys.executable, str(here / "transcribe.py"), repo], capture_output=True, text=True, check=True
    ).stdout
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", "schema.py", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert formatted == (here / "ptsdk_openinstruct" / "schema.py").read_text()
