"""A deep-merged backend_options passthrough still passes the framework's own validator (issue #12)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from ptsdk.backends.axolotl.backend import AxolotlBackend
from ptsdk.backends.trl.backend import TRLBackend
from ptsdk.pipeline import load_checked, native_check
from ptsdk.rundir import write_plan


@pytest.mark.trl
def test_trl_accepts_a_merged_fsdp_config(example_job, trl_env) -> None:
    """fsdp_config belongs to distributed.strategy: ptsdk_override lets one key in, merged beside ptsdk's."""
    job_path = example_job(
        "sft_full.yaml",
        distributed={"device": "gpu", "gpus_per_node": 2, "strategy": "fsdp"},
        training={"precision": "bf16", "micro_batch_size": 4},
        backend_options={
            "trl": {
                "fsdp_config": {"cpu_ram_efficient_loading": True},
                "logging_first_step": True,
                "bf16": True,  # ptsdk's own value
                "ptsdk_override": ["fsdp_config.cpu_ram_efficient_loading"],
            }
        },
    )
    job, _ = load_checked(job_path, "trl")
    plan = TRLBackend().translate(job)
    config = yaml.safe_load(plan.file("trl_config.yaml").content or "")
    assert config["fsdp_config"] == {"version": 2, "cpu_ram_efficient_loading": True}
    assert config["fsdp"].startswith("full_shard") and config["logging_first_step"] is True
    native_check(TRLBackend(), plan)


@pytest.mark.axolotl
def test_axolotl_accepts_a_merged_trl_section(example_job, axolotl_env) -> None:
    """The issue's case: a `trl:` section merges into ptsdk's GRPO section, which Axolotl still validates."""
    job_path = example_job(
        "grpo.yaml",
        backend_options={
            "axolotl": {
                "trl": {"top_p": 0.9, "log_completions": False, "num_generations": 8, "temperature": 0.7},
                "ptsdk_override": ["trl.temperature"],
            }
        },
    )
    job, _ = load_checked(job_path, "axolotl")
    backend = AxolotlBackend()
    plan = backend.translate(job)
    trl = yaml.safe_load(plan.file("axolotl_config.yaml").content or "")["trl"]
    assert trl["top_p"] == 0.9 and trl["temperature"] == 0.7 and trl["num_generations"] == 8
    assert trl["reward_funcs"] == ["reward_rewards.correct", "reward_rewards.digits"] and trl["loss_type"] == "grpo"
    with tempfile.TemporaryDirectory() as tmp:
        write_plan(plan, Path(tmp))
        (result,) = backend.run_check([backend.check_request(plan, Path(tmp), preprocess=False)])
    assert result["ok"], result.get("errors")
    assert not result.get("unknown_keys")
