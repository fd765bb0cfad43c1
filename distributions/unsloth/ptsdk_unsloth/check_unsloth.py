"""Unsloth's own parsing of a ptsdk translation, run by ptsdk's check harness in the Unsloth environment.

request: Backend.check_request plus ``env`` (the plan's environment: UNSLOTH_FORCE_CPU for a CPU job), set before
Unsloth is imported. The config goes through train_unsloth.parse, exactly what a run does: TRL's TrlParser on the
runner's ScriptArgs and TRL's SFTConfig after Unsloth has patched them (unknown keys and bad values are errors).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

VERSIONS = ("unsloth", "unsloth_zoo", "trl", "transformers", "torch", "peft")


def check(request: dict[str, Any]) -> dict[str, Any]:
    for key, value in (request.get("env") or {}).items():
        if key.startswith("UNSLOTH_"):
            os.environ[key] = value
    runner = importlib.import_module("train_unsloth")  # beside this script: its parse() is what a run uses
    _, training = runner.parse(["--config", request["config"]])
    notes = [f"SFTConfig parsed: optim {training.optim}, bf16 {training.bf16}, use_cpu {training.use_cpu}"]
    return {"notes": notes, "effective": {"optim": str(getattr(training.optim, "value", training.optim))}}
