#!/usr/bin/env python
"""Copy the trained weights of vERL's last checkpoint to model/ (a Plan `finalize` command).

    python verl_export.py checkpoints model

vERL saves ``<checkpoints>/global_step_N/`` (SFT) or ``<checkpoints>/global_step_N/actor/`` (RL), with
the full Hugging Face model under ``huggingface/`` when ``save_contents`` includes ``hf_model`` (ptsdk
sets it). The last step is the one vERL's tracker file names.
"""

from __future__ import annotations

import os
import shutil
import sys


def last_checkpoint(root: str) -> str:
    with open(os.path.join(root, "latest_checkpointed_iteration.txt")) as f:
        return os.path.join(root, f"global_step_{int(f.read().strip())}")


def main() -> None:
    root, target = sys.argv[1], sys.argv[2]
    step = last_checkpoint(root)
    for candidate in (os.path.join(step, "huggingface"), os.path.join(step, "actor", "huggingface")):
        if os.path.isdir(candidate) and any(name.endswith(".safetensors") for name in os.listdir(candidate)):
            shutil.copytree(candidate, target, dirs_exist_ok=True)
            print(f"verl export: {candidate} -> {target}")
            return
    sys.exit(f"verl export: no Hugging Face weights under {step} (checkpoint.save_contents needs hf_model)")


if __name__ == "__main__":
    main()
