"""Axolotl plugin written into each ptsdk run directory: every logged metrics dict as one JSON line.

Enabled by `plugins: [ptsdk_axolotl_metrics.JsonlMetricsPlugin]` with the run directory on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import time

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

LOG = os.path.join("logs", "axolotl_log.jsonl")


class JsonlMetrics(TrainerCallback):
    def __init__(self) -> None:
        self.t0 = time.time()
        self.tokens = 0  # non-padding training tokens, all processes (TRL's num_tokens)

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.t0 = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, "wall_time_s": time.time() - self.t0}
        if not any(k.startswith("eval_") for k in logs) and "train_runtime" not in logs:
            record["num_tokens"] = self.tokens
        for key, value in logs.items():
            try:
                record[key] = value if isinstance(value, (int, bool)) else float(value)
            except (TypeError, ValueError):
                record[key] = str(value)
        os.makedirs(os.path.dirname(LOG), exist_ok=True)
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")


class JsonlMetricsPlugin(BasePlugin):
    def __init__(self) -> None:
        super().__init__()
        self.callback = JsonlMetrics()

    def add_callbacks_pre_trainer(self, cfg, model):  # type: ignore[no-untyped-def]
        return [self.callback]

    def post_trainer_create(self, cfg, trainer):  # type: ignore[no-untyped-def]
        """Fingerprint the tokenized data; count real (non-padding) tokens per training batch, as TRL does
        (Axolotl's own count includes padding)."""
        import torch
        import torch.distributed as dist

        if trainer.args.process_index == 0:
            from ptsdk_fingerprint import write_data_fingerprint  # copied into the run directory by ptsdk

            write_data_fingerprint(trainer.train_dataset, os.path.join("logs", "tokenized_data.json"))

        original, callback = trainer.compute_loss, self.callback

        def compute_loss(model, inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
            if model.training:
                # attention_mask (SFT), chosen_/rejected_attention_mask (preference), prompt_/completion_mask (GRPO)
                masks = [v for k, v in inputs.items() if k.endswith("mask") and torch.is_tensor(v)]
                ids = [v for k, v in inputs.items() if k.endswith("input_ids") and torch.is_tensor(v)]
                count = sum(int(m.sum()) for m in masks) if masks else sum(int(t.numel()) for t in ids)
                if dist.is_available() and dist.is_initialized():
                    device = (masks or ids)[0].device if (masks or ids) else "cpu"
                    total = torch.tensor(count, device=device)
                    dist.all_reduce(total)
                    count = int(total)
                callback.tokens += count
            return original(model, inputs, *args, **kwargs)

        trainer.compute_loss = compute_loss
