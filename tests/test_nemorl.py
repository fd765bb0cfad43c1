"""NeMo RL (git-only) without NeMo RL: the YAML ptsdk writes (inheriting NeMo RL's example configs through `defaults`),
composed as NeMo RL composes it and checked against its MasterConfig classes as transcribed at the pinned commit
(distributions/nemorl/ptsdk_nemorl/schema.py), and the jobs refused before anything launches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import fake_model, minimal_job
from gpu_jobs import gpu_copy, gpu_jobs
from ptsdk.errors import PtsdkError
from ptsdk.matrix import Verified
from ptsdk.matrix.check import feasibility
from ptsdk.plugins.backend import Plan
from ptsdk.plugins.testing import BackendContract
from ptsdk.spec import load_job, validate_job
from ptsdk_nemorl import config as nemo_config
from ptsdk_nemorl.backend import CONFIG, HERE, RUNNER, NeMoRLBackend
from ptsdk_nemorl.schema import COMMIT


class TestNeMoRLContract(BackendContract):
    backend = NeMoRLBackend
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


def native(plan: Plan) -> dict[str, Any]:
    return dict(yaml.safe_load(plan.file(CONFIG).content or ""))


def example(name: str, tmp_path: Path, **changes: dict[str, object]) -> Plan:
    return NeMoRLBackend().translate(load_job(gpu_copy(name, tmp_path, **changes), check_files=False))


def refusals(job: dict[str, Any]) -> list[str]:
    verdict = feasibility(validate_job(job), {"nemorl": NeMoRLBackend})["nemorl"]
    assert not verdict.ok
    return [str(r) for r in verdict.reasons()]


def test_sft_example_inherits_the_sft_example_config(tmp_path: Path) -> None:
    plan = example("sft_full.yaml", tmp_path)
    cfg = native(plan)
    assert cfg["defaults"] == "nemorl_base_sft.yaml"
    assert plan.file("nemorl_base_sft.yaml").content == (HERE / "base_configs" / "sft.yaml").read_text()
    assert (plan.entrypoint, plan.args) == ([RUNNER, "sft"], ["--config", CONFIG])
    p = cfg["policy"]
    assert (p["train_global_batch_size"], p["train_micro_batch_size"], p["max_total_sequence_length"]) == (8, 8, 64)
    assert (
        p["precision"] == "float32" and p["optimizer"]["kwargs"]["lr"] == 0.001 and "lora_cfg" not in p["dtensor_cfg"]
    )
    assert cfg["sft"]["max_num_steps"] == 5 and cfg["sft"]["max_num_epochs"] >= 10**9  # the job's steps bind
    assert cfg["data"]["train"] == {
        "dataset_name": "ResponseDataset",
        "data_path": str((Path("examples/data/sft_train.jsonl")).resolve()),
        "input_key": "prompt",
        "output_key": "completion",
    }
    assert cfg["data"]["validation"] is None and cfg["cluster"] == {"gpus_per_node": 1, "num_nodes": 1}
    assert p["tokenizer"]["chat_template"] == "default"  # the tokenizer's own (null is NeMo RL's passthrough)


def test_composed_config_is_the_base_with_ptsdk_settings(tmp_path: Path) -> None:
    """config.load merges `defaults` as nemo_rl/utils/config.py does: ptsdk's keys win, the rest is the base's."""
    from ptsdk.rundir import write_plan

    plan = example("sft_chat.yaml", tmp_path)
    write_plan(plan, tmp_path / "run")
    composed = nemo_config.resolved(nemo_config.load(tmp_path / "run" / CONFIG))
    assert composed["policy"]["train_micro_batch_size"] == native(plan)["policy"]["train_micro_batch_size"]
    assert composed["data"]["max_input_seq_length"] == 96  # ${policy.max_total_sequence_length}, resolved
    assert composed["policy"]["dtensor_cfg"]["lora_cfg"]["enabled"] is True  # the job's LoRA over the base's
    assert composed["checkpointing"]["metric_name"] == "val:val_loss"  # the base's own
    assert "input_key" not in composed["data"]["train"]  # messages records: ResponseDataset reads them as they are


def test_lora_two_nodes_and_a_chat_template(tmp_path: Path) -> None:
    job = gpu_job(
        tmp_path,
        adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        distributed={"device": "gpu", "nodes": 2, "gpus_per_node": 4},
        training={"global_batch_size": 16, "micro_batch_size": 2, "epochs": 2, "precision": "bf16"},
    )
    job["model"]["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    cfg = native(NeMoRLBackend().translate(validate_job(job)))
    assert cfg["policy"]["tokenizer"]["chat_template"] == job["model"]["chat_template"]
    assert cfg["policy"]["dtensor_cfg"]["lora_cfg"] == {
        "enabled": True,
        "dim": 8,
        "alpha": 16,
        "dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "match_all_linear": False,
    }
    assert cfg["cluster"] == {"gpus_per_node": 4, "num_nodes": 2} and cfg["policy"]["precision"] == "bfloat16"
    assert cfg["sft"]["max_num_epochs"] == 2 and cfg["sft"]["max_num_steps"] >= 10**9


def test_dpo_example_uses_the_binary_preference_dataset(tmp_path: Path) -> None:
    plan = example("dpo.yaml", tmp_path)
    cfg = native(plan)
    assert cfg["defaults"] == "nemorl_base_dpo.yaml" and plan.entrypoint == [RUNNER, "dpo"]
    assert cfg["data"]["train"]["dataset_name"] == "BinaryPreferenceDataset"
    assert cfg["dpo"]["reference_policy_kl_penalty"] == 0.1 and cfg["dpo"]["preference_average_log_probs"] is False
    norm = example("dpo.yaml", tmp_path, method={"loss_type": "sigmoid_norm"})
    assert native(norm)["dpo"]["preference_average_log_probs"] is True


def test_the_base_configs_own_undeclared_keys_are_reported_not_blamed_on_ptsdk(tmp_path: Path) -> None:
    """NeMo RL's examples/configs/sft.yaml sets policy.offload_optimizer_for_logprob, which its PolicyConfig does
    not declare (NeMo RL's TypedDicts ignore unknown keys): a note, not a refusal."""
    plan = example("sft_full.yaml", tmp_path)
    inherited = " ".join(n.message for n in plan.notes if n.field == "defaults")
    assert "policy.offload_optimizer_for_logprob" in inherited


def test_the_transcribed_schema_rejects_a_wrong_key_and_a_wrong_type(tmp_path: Path) -> None:
    typo = gpu_job(tmp_path, backend_options={"nemorl": {"policy": {"train_micro_batch_sise": 2}}})
    with pytest.raises(PtsdkError) as err:
        NeMoRLBackend().translate(validate_job(typo))
    assert "policy.train_micro_batch_sise: Extra inputs are not permitted" in err.value.lines
    wrong = gpu_job(tmp_path, backend_options={"nemorl": {"sft": {"val_batches": "many"}}})
    with pytest.raises(PtsdkError) as err:
        NeMoRLBackend().translate(validate_job(wrong))
    assert any(line.startswith("sft.val_batches:") for line in err.value.lines)
    ok = gpu_job(tmp_path, backend_options={"nemorl": {"sft": {"val_batches": 4}}})
    assert native(NeMoRLBackend().translate(validate_job(ok)))["sft"]["val_batches"] == 4


def test_refusals(tmp_path: Path) -> None:
    grpo = gpu_job(tmp_path, method={"name": "grpo", "rewards": ["m:f"], "num_generations": 4})
    grpo["training"] = {"global_batch_size": 8, "micro_batch_size": 8}
    assert any(r.startswith("method.rewards:") for r in refusals(grpo))
    assert any(r.startswith("distributed.device:") for r in refusals(gpu_job(tmp_path, distributed={"device": "cpu"})))
    ev = gpu_job(tmp_path)
    ev["data"]["eval"] = {"path": ev["data"]["train"]["path"]}
    assert any(r.startswith("data.eval:") for r in refusals(ev))
    assert any(r.startswith("data.train.path:") for r in refusals(gpu_job(tmp_path, data={"train": {"path": "org/d"}})))
    assert any(
        r.startswith("adapter.type:")
        for r in refusals(
            gpu_job(tmp_path, adapter={"type": "qlora"}, model={"name_or_path": "m", "quantization": "4bit"})
        )
    )


def test_env_create_and_run_say_how_to_install_by_hand(ptsdk, tmp_path: Path, write_job, monkeypatch) -> None:
    monkeypatch.setenv("PTSDK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PTSDK_NEMORL_PYTHON", raising=False)
    created = ptsdk("env", "create", "nemorl")
    assert created.code == 2 and "Traceback" not in created.err
    assert f"git -C nemo-rl checkout {COMMIT}" in created.err and "PTSDK_NEMORL_PYTHON" in created.err
    ran = ptsdk("run", str(write_job(gpu_job(tmp_path))), "--backend", "nemorl")
    assert ran.code == 2 and "Traceback" not in ran.err
    assert "github.com/NVIDIA-NeMo/RL" in ran.err and "PTSDK_NEMORL_PYTHON" in ran.err


def test_every_capability_is_declared_and_names_its_source() -> None:
    assert NeMoRLBackend.schema_source == f"github.com/NVIDIA-NeMo/RL@{COMMIT}"
    assert all(c.verified is Verified.declared and c.note for c in NeMoRLBackend.capabilities)


@pytest.mark.skipif(not os.environ.get("PTSDK_NEMORL_SOURCE"), reason="PTSDK_NEMORL_SOURCE: a git clone of NeMo RL")
def test_schema_is_the_transcription_of_its_commit() -> None:
    """transcribe.py on a clone at schema.COMMIT writes schema.py exactly (after ruff format)."""
    repo = os.environ["PTSDK_NEMORL_SOURCE"]
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    if head.stdout.strip() != COMMIT:
        pytest.skip(f"{repo} is not at {COMMIT}")
    here = Path(__file__).resolve().parents[1] / "distributions" / "nemorl"
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
    assert formatted == (here / "ptsdk_nemorl" / "schema.py").read_text()
    for name in ("sft", "dpo"):  # the shipped bases are the commit's examples/configs, under a two-line header
        shipped = (here / "ptsdk_nemorl" / "base_configs" / f"{name}.yaml").read_text().split("\n", 2)[2]
        upstream = subprocess.run(
            ["git", "-C", repo, "show", f"HEAD:examples/configs/{name}.yaml"], capture_output=True, text=True
        ).stdout
        assert shipped == upstream, name
