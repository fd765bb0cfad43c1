"""Axolotl: capabilities declared from Axolotl 0.19 (translation tracked in issue #5)."""

from __future__ import annotations

from ptsdk.backends.declared import DeclaredBackend
from ptsdk.matrix.capability import Verified, caps
from ptsdk.plugins import hookimpl

D = Verified.declared


class AxolotlBackend(DeclaredBackend):
    name = "axolotl"
    framework = "axolotl"
    description = "Axolotl: YAML-driven fine-tuning on top of transformers and TRL."
    verified_with = {"axolotl": "0.19.0"}
    install_hint = "torch first, then `pip install axolotl==0.19.0` (about 4 GB)"
    tracking_issue = "issue #5"
    capabilities = (
        *caps("method", "sft dpo ipo orpo simpo kto grpo", D),
        *caps("loss", "dpo:sigmoid grpo:grpo grpo:dr_grpo grpo:dapo grpo:bnpo", D),
        *caps("adapter", "full lora qlora", D),
        *caps("strategy", "ddp fsdp deepspeed_zero1 deepspeed_zero2 deepspeed_zero3", D),
        *caps("topology", "multi_node", D, note="launcher args after `--` (torchrun rendezvous)"),
        *caps("device", "cpu", D, note="single process only: FSDP and multi-process DDP hard-code cuda"),
        *caps("reward", "functions", D, note="trl.reward_funcs as import paths"),
        *caps("feature", "packing", D, note="sample_packing"),
    )


@hookimpl
def ptsdk_register_backends(register):  # type: ignore[no-untyped-def]
    register(AxolotlBackend)
