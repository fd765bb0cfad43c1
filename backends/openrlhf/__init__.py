"""OpenRLHF: capabilities declared from OpenRLHF 0.11.2 (no translation yet)."""

from __future__ import annotations

from ptsdk.backends.declared import DeclaredBackend
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins import hookimpl

D = Verified.declared


class OpenRLHFBackend(DeclaredBackend):
    name = "openrlhf"
    framework = "openrlhf"
    description = "OpenRLHF: Ray + DeepSpeed + vLLM RLHF (SFT, DPO, RM, PPO, REINFORCE++, GRPO)."
    verified_with = {"openrlhf": "0.11.2"}
    install_hint = "DS_BUILD_OPS=0 pip install deepspeed; pip install --no-deps openrlhf==0.11.2; then its requirements"
    capabilities = (
        *caps("method", "sft dpo ipo ppo rloo reinforce_pp grpo", D),
        *caps("loss", "dpo:sigmoid grpo:grpo grpo:dr_grpo", D, note="--algo.advantage.estimator group_norm / dr_grpo"),
        *caps("adapter", "full lora qlora", D),
        *caps("strategy", "deepspeed_zero0 deepspeed_zero1 deepspeed_zero2 deepspeed_zero3", D),
        *caps("topology", "multi_node ray_cluster", D),
        *caps("reward", "functions model", D, note="--reward.remote_url with a .py defining reward_func"),
        *caps("rollout", "vllm", D),
        *caps("feature", "packing", D, note="--data.packing_samples"),
    )


@hookimpl
def ptsdk_register_backends(register):  # type: ignore[no-untyped-def]
    register(OpenRLHFBackend)
