"""The corpus entries written with their upstream launcher (issue 12): `deepspeed --module`, `torchrun`,
`accelerate launch --config_file` (the config written beside the script), the TRL CLI, `ray job submit`
and `srun ... bash -c`. The launched form imports to the same job as the bare command, except what the
launcher says about processes, nodes, strategy and the cluster, which lands in `distributed`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ptsdk.errors import PtsdkError
from ptsdk.plugins.manager import get_backends
from ptsdk.spec import validate_job
from roundtrip import Entry, corpus, write_launched, write_native

LAUNCHED = [e for fw in ("trl", "axolotl", "verl", "openrlhf") for e in corpus(fw) if e.raw.get("launcher")]

# What each launcher says, as the imported job's `distributed` must hold it (only the fields named).
EXPECTED: dict[str, dict[str, Any]] = {
    "grpo_cli_zero2": {"strategy": "deepspeed", "zero_stage": 2, "gpus_per_node": 8},  # TRL's zero2 profile
    "rloo_cli_4proc": {"gpus_per_node": 4, "nodes": 1},
    "sft_gpt_oss_20b_zero3": {"strategy": "deepspeed", "zero_stage": 3, "gpus_per_node": 8},  # the config file
    "dpo_llama3_8b_slurm_multinode": {"gpus_per_node": 8, "strategy": "deepspeed"},  # torchrun inside srun
    "ppo_llama3_8b_ray_slurm_multinode": {"ray_address": "http://localhost:8265"},  # ray job submit inside srun
    "ppo_llama3_8b_reward_fn": {"ray_address": "http://127.0.0.1:8265"},
    "sft_engine_fsdp_qwen2_5_0_5b": {"gpus_per_node": 1, "nodes": 1},
    "sft_engine_lora_sp2_qwen2_5_0_5b": {"gpus_per_node": 4, "nodes": 1},
}


def test_the_corpus_has_launched_entries_of_every_kind() -> None:
    commands = {str(e.raw["launcher"]["command"]).split()[0] for e in LAUNCHED}
    assert {"deepspeed", "torchrun", "accelerate", "trl", "ray", "srun"} <= commands
    assert len(LAUNCHED) >= 12


def _import(entry: Entry, path: Path) -> dict[str, Any] | str:
    try:
        result = get_backends()[entry.framework]().import_native(path)
    except PtsdkError as exc:  # a clear refusal, the same for both forms
        return "refused: " + str(exc).split(": ", 1)[-1][:60]
    return validate_job(result.job).model_dump(mode="json")


@pytest.mark.parametrize("entry", LAUNCHED, ids=lambda e: f"{e.framework}/{e.name}")
def test_launched_form_imports_to_the_same_job_plus_its_launcher(entry: Entry, tmp_path: Path) -> None:
    launched = write_launched(entry, tmp_path / "launched")
    assert launched is not None
    plain = _import(entry, write_native(entry, tmp_path / "plain"))
    job = _import(entry, launched)
    if isinstance(plain, str):
        assert job == plain  # refused for the same reason (a fragment, a method ptsdk has no name for)
        return
    assert isinstance(job, dict), job
    for section in set(plain) | set(job):
        if section not in ("distributed", "training"):
            assert job.get(section) == plain.get(section), section
    # A framework that states a per-device batch (TRL) gets a global batch that follows the launcher's process
    # count; one that states the global batch (vERL, OpenRLHF) keeps it.
    t, u = dict(job["training"]), dict(plain["training"])
    world = job["distributed"]["nodes"] * job["distributed"]["gpus_per_node"]
    plain_world = plain["distributed"]["nodes"] * plain["distributed"]["gpus_per_node"]
    batch, plain_batch = t.pop("global_batch_size"), u.pop("global_batch_size")
    assert batch in (plain_batch, plain_batch * world // plain_world)
    assert t == u
    expected = EXPECTED.get(entry.name, {})
    assert {k: job["distributed"][k] for k in expected} == expected
