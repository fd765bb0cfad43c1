"""vERL: capabilities declared from vERL 0.9.1 (no translation yet)."""

from __future__ import annotations

from ptsdk.backends.declared import DeclaredBackend
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins import hookimpl

D = Verified.declared


class VerlBackend(DeclaredBackend):
    name = "verl"
    framework = "verl"
    description = "vERL: Ray-based RL post-training with vLLM/SGLang rollouts (PPO, GRPO, RLOO, REINFORCE++)."
    verified_with = {"verl": "0.9.1"}
    install_hint = "torch first, `pip install verl==0.9.1`, then fastapi uvicorn pyzmq msgspec cachetools TransferQueue"
    capabilities = (
        *caps("method", "sft grpo ppo rloo reinforce_pp", D),
        *caps("loss", "grpo:grpo grpo:dr_grpo", D, note="algorithm.adv_estimator + actor loss_agg_mode"),
        *caps("adapter", "full lora", D),
        *caps("strategy", "fsdp", D),
        *caps("topology", "multi_node", D, note="Ray cluster (+ray_kwargs.ray_init.address)"),
        *caps("topology", "ray_cluster", D, note="+ray_kwargs.ray_init.address"),
        *caps("parallel", "tensor pipeline", D, note="Megatron engine"),
        *caps("reward", "functions model", D, note="custom_reward_function.path/name: compute_score(...)"),
        *caps("rollout", "vllm sglang", D),
    )


@hookimpl
def ptsdk_register_backends(register):  # type: ignore[no-untyped-def]
    register(VerlBackend)
