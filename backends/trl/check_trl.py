#!/usr/bin/env python
"""TRL's own validation of a ptsdk translation, run in the TRL environment.

stdin: {"config": "trl_config.yaml", "workdir": "...", "launcher": [argv of torchrun args] | null}
stdout (last line): {"ok": bool, "errors": [...], "versions": {...}}
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import io
import json
import os
import sys


def main() -> None:
    request = json.load(sys.stdin)
    os.chdir(request["workdir"])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    errors: list[str] = []
    notes: list[str] = []
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            import torch
            import train_trl

            argv = ["--config", request["config"]]
            if not torch.cuda.is_available():
                # TrainingArguments refuses bf16/GPU settings on a machine without a GPU. That is a
                # verdict on this machine, not on the config: check everything else as if on CPU.
                argv += ["--use_cpu", "true"]
                notes.append("no GPU here: checked with use_cpu forced on (hardware checks skipped)")
            script, training, model, _ = train_trl.parse(argv)
            if getattr(training, "hf_deepspeed_config", None) is not None:
                # What transformers checks when DeepSpeed starts: every value the DeepSpeed config sets
                # must agree with the trainer's (batch sizes, accumulation, clipping, precision).
                steps = training.max_steps if training.max_steps > 0 else 1000
                training.hf_deepspeed_config.trainer_config_finalize(training, None, steps)
            for ref in script.reward_funcs or []:
                train_trl.load_reward(ref)
    except SystemExit as exc:
        text = stderr.getvalue().strip().splitlines()
        errors.append((text[-1] if text else "") or f"TRL's parser exited with {exc.code}")
    except Exception as exc:  # the framework's verdict, whatever form it takes
        errors.append(f"{exc.__class__.__name__}: {exc}")
    if request.get("launcher"):
        try:
            from torch.distributed.run import get_args_parser

            with contextlib.redirect_stderr(stderr):
                get_args_parser().parse_args(request["launcher"])
        except SystemExit:
            errors.append("torchrun rejected the launcher arguments: " + stderr.getvalue().strip().splitlines()[-1])
    versions = {d: md.version(d) for d in ("trl", "transformers", "torch", "peft", "accelerate", "datasets")}
    print(json.dumps({"ok": not errors, "errors": errors, "notes": notes, "versions": versions}))


if __name__ == "__main__":
    main()
