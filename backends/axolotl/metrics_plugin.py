"""Axolotl plugin written into each ptsdk run directory: ptsdk's JSONL metrics callback, the tokenized
data's fingerprint, what the model trains (logs/model.json), a count of real (non-padding) tokens (Axolotl's own
count includes padding), and what ptsdk owns of the optimization (its data order and loss normalization:
ptsdk_runtime.own_the_optimization).

Enabled by `plugins: [ptsdk_axolotl_metrics.JsonlMetricsPlugin]` with the run directory on PYTHONPATH.
"""

from __future__ import annotations

from typing import Any

from axolotl.integrations.base import BasePlugin
from ptsdk_runtime import (
    count_tokens_in_loss,
    jsonl_metrics_callback,
    model_card_without_trackio,
    note_model,
    note_rank,
    own_the_optimization,
    reports_to,
    tracking_callback,
    trackio_takes_what_transformers_passes,
    write_data_fingerprint,
)  # copied beside this file


class JsonlMetricsPlugin(BasePlugin):
    def __init__(self) -> None:
        super().__init__()
        self.callback = jsonl_metrics_callback(count_tokens=True)

    def add_callbacks_pre_trainer(self, cfg: Any, model: Any) -> list[Any]:
        return [self.callback, tracking_callback()]  # the run's name and the job in the trackers (report_to)

    def post_trainer_create(self, cfg: Any, trainer: Any) -> None:
        if trainer.args.process_index == 0:
            write_data_fingerprint(trainer.train_dataset)
            note_model(trainer.model)  # logs/model.json: a quantized base shows its bitsandbytes layers
        count_tokens_in_loss(trainer, self.callback)
        own_the_optimization(trainer)  # ptsdk's data order and loss normalization, as the plan's environment says
        if "trackio" in reports_to(trainer.args):
            trackio_takes_what_transformers_passes()  # Axolotl's pinned transformers and trackio disagree
        model_card_without_trackio(trainer)
        note_rank(trainer.args)
