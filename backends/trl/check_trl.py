"""TRL's own validation of a ptsdk translation, run by ptsdk's check harness in the TRL environment.

request: Backend.check_request (workdir, config = trl_config.yaml, launcher, ...); the harness
checks the torchrun arguments, captures output and turns TRL's parser errors into error lines.
"""

from __future__ import annotations

from typing import Any

VERSIONS = ("trl", "transformers", "torch", "peft", "accelerate", "datasets")


def check(request: dict[str, Any]) -> dict[str, Any]:
    import torch
    import train_trl  # the runner beside this script: its parse() is exactly what a run uses

    notes = []
    argv = ["--config", request["config"]]
    if not torch.cuda.is_available():
        # TrainingArguments refuses bf16/GPU settings on a machine without a GPU. That is a
        # verdict on this machine, not on the config: check everything else as if on CPU.
        argv += ["--use_cpu", "true"]
        notes.append("no GPU here: checked with use_cpu forced on (hardware checks skipped)")
    script, training, _, _ = train_trl.parse(argv)
    if getattr(training, "hf_deepspeed_config", None) is not None:
        # What transformers checks when DeepSpeed starts: every value the DeepSpeed config sets
        # must agree with the trainer's (batch sizes, accumulation, clipping, precision).
        steps = training.max_steps if training.max_steps > 0 else 1000
        training.hf_deepspeed_config.trainer_config_finalize(training, None, steps)
    for ref in script.reward_funcs or []:
        train_trl.load_reward(ref)
    return {"notes": notes}
